//! A progress bar on the terminal for the engine's long operations: drawn on standard error
//! only when it is a terminal (indicatif hides itself otherwise), and not at all with `--json`,
//! so pipes and scripts see exactly the output they ask for.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// An indicatif bar behind the engine's [`caseflow::Progress`].
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar labelled `what` (e.g. "rebuilding"), hidden when `quiet`.
    pub fn new(what: &'static str, quiet: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(
            None,
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        Bar(bar)
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl caseflow::Progress for Bar {
    fn total(&self, total: u64) {
        self.0.set_length(total);
    }

    fn done(&self, done: u64) {
        self.0.set_position(done);
    }
}
