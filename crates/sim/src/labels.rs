//! Labels for reports: the district's language first, the English after (`受理 intake`), for
//! the domain's stages, levels, time limits, kinds and channels. The words are the domain's
//! own labels (`caseflow_domain::Label`); this only joins the two languages for a chart axis.

use caseflow::domain::{CaseKind, Channel, DeadlineKind, Label, Lang, Level, Stage};

/// `<zh-CN label> <English label>`.
fn both(value: &impl Label) -> String {
    format!("{} {}", value.label(Lang::ZhCn), value.label(Lang::En))
}

/// `受理 intake`, ...
pub fn stage(s: Stage) -> String {
    both(&s)
}

/// `室 room`, ...
pub fn level(l: Level) -> String {
    both(&l)
}

/// The time limit a deadline stands for.
pub fn deadline(k: DeadlineKind) -> String {
    both(&k)
}

/// `投诉 complaint`, ...
pub fn kind(k: CaseKind) -> String {
    both(&k)
}

/// `举报电话 hotline`, ...
pub fn channel(c: Channel) -> String {
    both(&c)
}
