//! XES (IEEE 1849-2016) writer: one `<trace>` per case, one `<event>` per stored event, with
//! the standard Concept, Time, Lifecycle and Organizational extensions declared.

use std::io::Write;

use chrono::{DateTime, FixedOffset};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};

use super::{AttrValue, format_time};

/// A whole event log.
#[derive(Debug, Clone, Default)]
pub struct XesLog {
    /// The log's `concept:name`.
    pub name: String,
    /// One trace per case.
    pub traces: Vec<XesTrace>,
}

/// One case.
#[derive(Debug, Clone)]
pub struct XesTrace {
    /// The case id (`concept:name` of the trace).
    pub name: String,
    /// Further trace attributes (channel, kind, focus area, locality, ...).
    pub attributes: Vec<(String, AttrValue)>,
    /// The events in stream order.
    pub events: Vec<XesEvent>,
}

/// One event of a trace.
#[derive(Debug, Clone)]
pub struct XesEvent {
    /// The activity (`concept:name`).
    pub activity: String,
    /// When it happened, with the district's UTC offset (`time:timestamp`).
    pub timestamp: DateTime<FixedOffset>,
    /// `lifecycle:transition` (standard lifecycle model: `complete` for a finished activity).
    pub lifecycle: String,
    /// The acting unit (`org:resource`).
    pub resource: String,
    /// Further event attributes (stage, version, event id, hash, ...).
    pub attributes: Vec<(String, AttrValue)>,
}

const EXTENSIONS: [(&str, &str, &str); 4] = [
    (
        "Concept",
        "concept",
        "http://www.xes-standard.org/concept.xesext",
    ),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    (
        "Lifecycle",
        "lifecycle",
        "http://www.xes-standard.org/lifecycle.xesext",
    ),
    (
        "Organizational",
        "org",
        "http://www.xes-standard.org/org.xesext",
    ),
];

/// Writes `log` as XES to `out`.
pub fn write_xes<W: Write>(log: &XesLog, out: W) -> std::io::Result<()> {
    let mut w = Writer::new_with_indent(out, b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("log");
    root.push_attribute(("xes.version", "1849-2016"));
    root.push_attribute(("xes.features", ""));
    root.push_attribute(("xmlns", "http://www.xes-standard.org/"));
    w.write_event(Event::Start(root))?;
    for (name, prefix, uri) in EXTENSIONS {
        w.create_element("extension")
            .with_attributes([("name", name), ("prefix", prefix), ("uri", uri)])
            .write_empty()?;
    }
    // Globals declare the attributes every trace / event carries, as the standard asks for
    // attributes that classifiers rely on.
    w.create_element("global")
        .with_attribute(("scope", "trace"))
        .write_inner_content(|w| {
            attribute(w, "concept:name", &AttrValue::from("__INVALID__"))?;
            Ok(())
        })?;
    w.create_element("global")
        .with_attribute(("scope", "event"))
        .write_inner_content(|w| {
            attribute(w, "concept:name", &AttrValue::from("__INVALID__"))?;
            attribute(w, "time:timestamp", &AttrValue::Date(epoch()))?;
            attribute(w, "lifecycle:transition", &AttrValue::from("complete"))?;
            attribute(w, "org:resource", &AttrValue::from("__INVALID__"))?;
            Ok(())
        })?;
    w.create_element("classifier")
        .with_attributes([("name", "Activity"), ("keys", "concept:name")])
        .write_empty()?;
    w.create_element("classifier")
        .with_attributes([
            ("name", "Activity and resource"),
            ("keys", "concept:name org:resource"),
        ])
        .write_empty()?;
    attribute(&mut w, "concept:name", &AttrValue::String(log.name.clone()))?;
    for trace in &log.traces {
        w.write_event(Event::Start(BytesStart::new("trace")))?;
        attribute(
            &mut w,
            "concept:name",
            &AttrValue::String(trace.name.clone()),
        )?;
        for (key, value) in &trace.attributes {
            attribute(&mut w, key, value)?;
        }
        for event in &trace.events {
            w.write_event(Event::Start(BytesStart::new("event")))?;
            attribute(
                &mut w,
                "concept:name",
                &AttrValue::String(event.activity.clone()),
            )?;
            attribute(&mut w, "time:timestamp", &AttrValue::Date(event.timestamp))?;
            attribute(
                &mut w,
                "lifecycle:transition",
                &AttrValue::String(event.lifecycle.clone()),
            )?;
            attribute(
                &mut w,
                "org:resource",
                &AttrValue::String(event.resource.clone()),
            )?;
            for (key, value) in &event.attributes {
                attribute(&mut w, key, value)?;
            }
            w.write_event(Event::End(BytesEnd::new("event")))?;
        }
        w.write_event(Event::End(BytesEnd::new("trace")))?;
    }
    w.write_event(Event::End(BytesEnd::new("log")))?;
    let mut inner = w.into_inner();
    inner.write_all(b"\n")?;
    inner.flush()
}

fn attribute<W: Write>(w: &mut Writer<W>, key: &str, value: &AttrValue) -> std::io::Result<()> {
    let text = value.to_text();
    w.create_element(value.xes_tag())
        .with_attributes([("key", key), ("value", text.as_str())])
        .write_empty()?;
    Ok(())
}

fn epoch() -> DateTime<FixedOffset> {
    DateTime::UNIX_EPOCH.fixed_offset()
}

/// Formats a time as XES writes it (exposed for tests and callers building expectations).
pub fn xes_time(time: &DateTime<FixedOffset>) -> String {
    format_time(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;

    fn sample() -> XesLog {
        let offset = FixedOffset::east_opt(8 * 3600).expect("valid offset");
        let t = DateTime::parse_from_rfc3339("2025-03-03T09:00:00+08:00")
            .expect("valid time")
            .with_timezone(&offset);
        XesLog {
            name: "test <log> & more".into(),
            traces: vec![XesTrace {
                name: "case-1".into(),
                attributes: vec![("channel".into(), AttrValue::from("hotline"))],
                events: vec![XesEvent {
                    activity: "CaseReported".into(),
                    timestamp: t,
                    lifecycle: "complete".into(),
                    resource: "vil-wenhuagong".into(),
                    attributes: vec![("version".into(), AttrValue::Int(1))],
                }],
            }],
        }
    }

    #[test]
    fn xes_parses_back_with_offset_timestamps_and_escaped_text() {
        let mut out = Vec::new();
        write_xes(&sample(), &mut out).expect("writes to memory");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("2025-03-03T09:00:00.000+08:00"), "{text}");
        let mut reader = Reader::from_str(&text);
        let (mut traces, mut events, mut names) = (0, 0, Vec::new());
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) if e.name().as_ref() == "trace" => traces += 1,
                Event::Start(e) if e.name().as_ref() == "event" => events += 1,
                Event::Empty(e) if e.name().as_ref() == "string" => {
                    for a in e.attributes() {
                        let a = a.expect("attribute");
                        if a.key.as_ref() == "value" {
                            names.push(
                                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                    .expect("unescape")
                                    .into_owned(),
                            );
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!((traces, events), (1, 1));
        assert!(names.contains(&"test <log> & more".to_string()));
    }
}
