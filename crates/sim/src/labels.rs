//! Labels for reports in the district's language (Chinese first, the English name after), for
//! the domain's stages, levels, time limits, kinds and channels. Presentation only: the values
//! themselves are the domain's.

use caseflow::domain::{CaseKind, Channel, DeadlineKind, Level, Stage};

/// `受理 intake`, ...
pub fn stage(s: Stage) -> &'static str {
    match s {
        Stage::None => "— none",
        Stage::Intake => "受理 intake",
        Stage::Classification => "分类研判 classification",
        Stage::Handling => "处置核查 handling",
        Stage::Rectification => "整改 rectification",
        Stage::Review => "回头看 review",
        Stage::Closed => "办结 closed",
        Stage::Declined => "不予受理 declined",
        Stage::Merged => "合并 merged",
        Stage::Transferred => "移交 transferred",
    }
}

/// `室 room`, ...
pub fn level(l: Level) -> &'static str {
    match l {
        Level::Room => "室 room",
        Level::Team => "组 team",
        Level::Locality => "地 locality",
        Level::Village => "村 village",
    }
}

/// The time limit a deadline stands for.
pub fn deadline(k: DeadlineKind) -> &'static str {
    match k {
        DeadlineKind::IntakeDecision => "受理决定 intake decision",
        DeadlineKind::Classification => "分类研判 classification",
        DeadlineKind::Handling => "办理 handling",
        DeadlineKind::HoldReview => "暂存复议 hold review",
        DeadlineKind::RectificationPlan => "整改方案 rectification plan",
        DeadlineKind::Rectification => "整改时限 rectification",
        DeadlineKind::Review => "回头看 review",
    }
}

/// `投诉 complaint`, ...
pub fn kind(k: CaseKind) -> &'static str {
    match k {
        CaseKind::Complaint => "投诉 complaint",
        CaseKind::Consultation => "咨询 consultation",
        CaseKind::Suggestion => "意见建议 suggestion",
        CaseKind::ProblemClue => "问题线索 problem clue",
    }
}

/// `举报电话 hotline`, ...
pub fn channel(c: Channel) -> &'static str {
    match c {
        Channel::PhotoReportApp => "四风随手拍 photo app",
        Channel::PettyPowerMiniProgram => "小微权力一点通 mini-program",
        Channel::PetitionWindow => "信访窗口 petition window",
        Channel::Hotline => "举报电话 hotline",
        Channel::Mailbox => "信箱 mailbox",
        Channel::Hearing => "听证会 hearing",
        Channel::Forum => "座谈会 forum",
        Channel::BenchMeeting => "板凳会 bench meeting",
        Channel::OnSiteVisit => "下沉走访 on-site visit",
        Channel::SpecialCampaign => "专项整治 campaign",
        Channel::DepartmentTransfer => "线索移送 department transfer",
    }
}
