// The workbench's only script: when the live feed reports a change of a case this page
// shows (or any change, on a list page), offer to reload. Everything works without it.
(function () {
  var banner = document.querySelector(".live");
  if (!banner || !window.EventSource) { return; }
  var watched = banner.getAttribute("data-case");
  var source = new EventSource("/api/v1/events");
  function show() { banner.classList.add("show"); }
  source.addEventListener("change", function (e) {
    try {
      var change = JSON.parse(e.data);
      if (!watched || change.case_id === watched) { show(); }
    } catch (err) { show(); }
  });
  source.addEventListener("resync", show);
})();
