//! What people read: the labels of the domain's values in the district's language. The staff
//! who act on the to-do lists read Chinese, so zh-CN is the first language; English is the
//! second (for engineers, auditors from outside, and the project's own docs). Every output —
//! the CLI's tables, the workbench, reports — takes its labels from here, so a stage is called
//! the same thing everywhere.
//!
//! The stable snake_case names (`as_str`, the serde names) stay the machine vocabulary: JSON,
//! exports and logs keep them.

use serde::{Deserialize, Serialize};

use crate::command::CommandKind;
use crate::model::{
    CaseKind, CaseOutcome, Category, Channel, ChannelGroup, DeadlineKind, DeclineReason,
    DisciplineMeasure, Disposition, Finding, FocusArea, Role, Satisfaction, Severity, VisitResult,
};
use crate::obligations::{Action, Priority};
use crate::org::Level;
use crate::state::Stage;

/// A language labels are given in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    /// Simplified Chinese, the language of the district's staff.
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// Parses a language tag: `zh-CN` (also `zh`, `zh-Hans`) or `en` (also `en-US`, `en-GB`).
    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        match tag.as_str() {
            "zh" | "zh-cn" | "zh-hans" | "zh-hans-cn" => Some(Lang::ZhCn),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// A value people read a label of.
pub trait Label {
    /// The label in `lang`.
    fn label(&self, lang: Lang) -> &'static str;
}

/// Implements [`Label`] from a table of `variant => (zh-CN, en)`.
macro_rules! labels {
    ($ty:ty { $($variant:pat => ($zh:literal, $en:literal)),* $(,)? }) => {
        impl Label for $ty {
            fn label(&self, lang: Lang) -> &'static str {
                let (zh, en) = match self {
                    $($variant => ($zh, $en),)*
                };
                match lang {
                    Lang::ZhCn => zh,
                    Lang::En => en,
                }
            }
        }
    };
}

labels!(Stage {
    Stage::None => ("未登记", "not reported"),
    Stage::Intake => ("受理", "intake"),
    Stage::Classification => ("分类研判", "classification"),
    Stage::Handling => ("处置核查", "handling"),
    Stage::Rectification => ("整改", "rectification"),
    Stage::Review => ("回头看", "review"),
    Stage::Closed => ("已办结", "closed"),
    Stage::Declined => ("不予受理", "declined"),
    Stage::Merged => ("已合并", "merged"),
    Stage::Transferred => ("已移交", "transferred"),
});

labels!(Action {
    Action::DecideIntake => ("受理决定", "decide intake"),
    Action::Classify => ("分类研判", "classify"),
    Action::HoldJointConsultation => ("联席会商", "hold joint consultation"),
    Action::Route => ("分级交办", "route"),
    Action::ChooseDisposition => ("确定处置方式", "choose disposition"),
    Action::ReviewHeldClue => ("复查暂存线索", "review held clue"),
    Action::FormVerificationTeam => ("组建核查组", "form verification team"),
    Action::Verify => ("参与核查", "verify"),
    Action::RecordFindings => ("认定核查结果", "record findings"),
    Action::AnswerConsultation => ("答复咨询", "answer consultation"),
    Action::OrderRectification => ("下达整改", "order rectification"),
    Action::SubmitRectificationPlan => ("报送整改方案", "submit rectification plan"),
    Action::CarryOutRectification => ("落实整改", "carry out rectification"),
    Action::SuperviseRectification => ("督促整改", "supervise rectification"),
    Action::ScheduleFollowUpVisit => ("安排回访", "schedule follow-up visit"),
    Action::VisitOnSite => ("实地回访", "visit on site"),
    Action::AskSatisfaction => ("征询满意度", "ask satisfaction"),
    Action::Reopen => ("重新办理", "reopen"),
    Action::Close => ("办结", "close"),
});

labels!(Priority {
    Priority::Normal => ("一般", "normal"),
    Priority::High => ("较急", "high"),
    Priority::Urgent => ("紧急", "urgent"),
});

labels!(Channel {
    Channel::PhotoReportApp => ("四风随手拍", "photo-report app"),
    Channel::PettyPowerMiniProgram => ("小微权力监督一点通", "petty-power mini-program"),
    Channel::PetitionWindow => ("信访接待窗口", "petition window"),
    Channel::Hotline => ("举报电话", "hotline"),
    Channel::Mailbox => ("信箱", "mailbox"),
    Channel::Hearing => ("听证会", "hearing"),
    Channel::Forum => ("座谈会", "forum"),
    Channel::BenchMeeting => ("板凳会", "bench meeting"),
    Channel::OnSiteVisit => ("下沉走访", "on-site visit"),
    Channel::SpecialCampaign => ("专项整治", "special campaign"),
    Channel::DepartmentTransfer => ("部门移送", "department transfer"),
});

labels!(ChannelGroup {
    ChannelGroup::Online => ("线上", "online"),
    ChannelGroup::Offline => ("线下", "offline"),
    ChannelGroup::OwnFinding => ("主动发现", "own finding"),
});

labels!(CaseKind {
    CaseKind::Complaint => ("投诉", "complaint"),
    CaseKind::Consultation => ("咨询", "consultation"),
    CaseKind::Suggestion => ("意见建议", "suggestion"),
    CaseKind::ProblemClue => ("问题线索", "problem clue"),
});

labels!(Category {
    Category::DisciplineClue => ("违纪线索", "discipline clue"),
    Category::MassDemand => ("群众诉求", "mass demand"),
    Category::Consultation => ("咨询", "consultation"),
});

labels!(FocusArea {
    FocusArea::EducationAndMedicalCare => ("教育医疗", "education and medical care"),
    FocusArea::ElderlyCareAndSocialSecurity => ("养老社保", "elderly care and social security"),
    FocusArea::EmploymentAndSchoolEnrolment => ("就业入学", "employment and school enrolment"),
    FocusArea::LivingEnvironment => ("人居环境", "living environment"),
    FocusArea::RuralRevitalisation => ("乡村振兴", "rural revitalisation"),
    FocusArea::VillageCollectiveResources => ("村集体资源发包", "village collective resources"),
    FocusArea::SmallEngineeringProjects => ("小型工程项目", "small engineering projects"),
    FocusArea::LivelihoodGeneral => ("民生领域", "people's livelihood"),
});

labels!(Severity {
    Severity::Ordinary => ("一般", "ordinary"),
    Severity::Serious => ("较重", "serious"),
    Severity::Grave => ("重大", "grave"),
});

labels!(Disposition {
    Disposition::TalkOrLetterInquiry => ("谈话函询", "talk or letter inquiry"),
    Disposition::PreliminaryVerification => ("初步核实", "preliminary verification"),
    Disposition::HoldForLater => ("暂存待查", "hold for later"),
    Disposition::CloseWithoutAction => ("予以了结", "close without action"),
});

labels!(Finding {
    Finding::Substantiated => ("属实", "substantiated"),
    Finding::PartlySubstantiated => ("部分属实", "partly substantiated"),
    Finding::NotSubstantiated => ("不属实", "not substantiated"),
});

labels!(DisciplineMeasure {
    DisciplineMeasure::CriticismAndEducation => ("批评教育", "criticism and education"),
    DisciplineMeasure::Admonishment => ("诫勉", "admonishment"),
    DisciplineMeasure::Warning => ("警告", "warning"),
    DisciplineMeasure::SeriousWarning => ("严重警告", "serious warning"),
    DisciplineMeasure::RemovalFromPost => ("撤销职务", "removal from post"),
    DisciplineMeasure::Expulsion => ("开除", "expulsion"),
    DisciplineMeasure::TransferToJudiciary => ("移送司法机关", "transfer to the judiciary"),
});

labels!(DeclineReason {
    DeclineReason::OutsideRemit => ("不属于受理范围", "outside the remit"),
    DeclineReason::InsufficientInformation => ("信息不足", "insufficient information"),
    DeclineReason::AlreadyDecided => ("已有处理结论", "already decided"),
});

labels!(VisitResult {
    VisitResult::Held => ("整改到位", "rectification held"),
    VisitResult::Failed => ("整改未到位", "rectification did not hold"),
});

labels!(Satisfaction {
    Satisfaction::Satisfied => ("满意", "satisfied"),
    Satisfaction::BasicallySatisfied => ("基本满意", "basically satisfied"),
    Satisfaction::Unsatisfied => ("不满意", "unsatisfied"),
});

labels!(CaseOutcome {
    CaseOutcome::Rectified => ("整改办结", "rectified"),
    CaseOutcome::Answered => ("答复办结", "answered"),
    CaseOutcome::NotSubstantiated => ("查无实据", "not substantiated"),
    CaseOutcome::ClosedWithoutAction => ("予以了结", "closed without action"),
});

labels!(DeadlineKind {
    DeadlineKind::IntakeDecision => ("受理时限", "intake decision"),
    DeadlineKind::Classification => ("研判交办时限", "classification"),
    DeadlineKind::Handling => ("办理时限", "handling"),
    DeadlineKind::HoldReview => ("暂存复查时限", "hold review"),
    DeadlineKind::RectificationPlan => ("整改方案时限", "rectification plan"),
    DeadlineKind::Rectification => ("整改时限", "rectification"),
    DeadlineKind::Review => ("回头看时限", "review"),
});

labels!(Role {
    Role::Leader => ("负责人", "leader"),
    Role::CaseOfficer => ("承办人", "case officer"),
    Role::InformationOfficer => ("信息员", "information officer"),
    Role::Watcher => ("自动督办", "deadline watcher"),
});

labels!(Level {
    Level::Room => ("室", "room"),
    Level::Team => ("组", "team"),
    Level::Locality => ("地", "locality"),
    Level::Village => ("村", "village"),
});

labels!(CommandKind {
    CommandKind::ReportCase => ("登记", "report"),
    CommandKind::AcceptCase => ("受理", "accept"),
    CommandKind::DeclineCase => ("不予受理", "decline"),
    CommandKind::MergeCase => ("合并重复件", "merge as duplicate"),
    CommandKind::TransferCase => ("移交", "transfer"),
    CommandKind::ClassifyCase => ("分类研判", "classify"),
    CommandKind::RecordJointConsultation => ("记录联席会商", "record joint consultation"),
    CommandKind::RouteCase => ("分级交办", "route"),
    CommandKind::ChooseDisposition => ("确定处置方式", "choose disposition"),
    CommandKind::FormVerificationTeam => ("组建核查组", "form verification team"),
    CommandKind::RecordFindings => ("认定核查结果", "record findings"),
    CommandKind::RecordDiscipline => ("记录处理处分", "record discipline"),
    CommandKind::AnswerConsultation => ("答复咨询", "answer consultation"),
    CommandKind::OrderRectification => ("下达整改", "order rectification"),
    CommandKind::SubmitRectificationPlan => ("报送整改方案", "submit rectification plan"),
    CommandKind::ReportRectificationProgress => ("报告整改进展", "report progress"),
    CommandKind::CompleteRectification => ("整改完成", "complete rectification"),
    CommandKind::UrgeOverdue => ("督办", "urge"),
    CommandKind::ScheduleFollowUpVisit => ("安排回访", "schedule follow-up visit"),
    CommandKind::RecordFollowUpVisit => ("记录回访", "record follow-up visit"),
    CommandKind::RecordSatisfaction => ("记录满意度", "record satisfaction"),
    CommandKind::ReopenCase => ("重新办理", "reopen"),
    CommandKind::CloseCase => ("办结", "close"),
    CommandKind::RevealReporterContact => ("查阅反映人联系方式", "reveal reporter contact"),
    CommandKind::EraseReporterContact => ("删除反映人联系方式", "erase reporter contact"),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_action_and_command_has_a_label_in_both_languages_and_no_two_collide() {
        let stages = Stage::ALL;
        for lang in [Lang::ZhCn, Lang::En] {
            let mut seen = std::collections::BTreeSet::new();
            for s in stages {
                assert!(!s.label(lang).is_empty());
                assert!(
                    seen.insert(s.label(lang)),
                    "two stages read {}",
                    s.label(lang)
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for k in CommandKind::ALL {
                assert!(
                    seen.insert(k.label(lang)),
                    "two commands read {}",
                    k.label(lang)
                );
            }
        }
    }

    #[test]
    fn language_tags_parse_case_insensitively_and_round_trip() {
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("ZH"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("en-GB"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        for lang in [Lang::ZhCn, Lang::En] {
            assert_eq!(Lang::parse(lang.tag()), Some(lang));
        }
    }
}
