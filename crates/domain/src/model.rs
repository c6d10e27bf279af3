//! The vocabulary shared by commands, events and the case state: channels, kinds, categories,
//! dispositions, findings, outcomes, the acting unit and its role, and the protected reporter.

use std::fmt;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::ids::{DepartmentId, UnitId};
use crate::org::Level;

/// How a case reached the commission (DOMAIN.md, "What comes in").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The photo-report app for "four winds" misconduct (四风随手拍).
    PhotoReportApp,
    /// The mini-program for supervising petty village power (基层小微权力监督一点通).
    PettyPowerMiniProgram,
    /// The petition reception window (信访接待窗口).
    PetitionWindow,
    /// The reporting hotline (举报电话).
    Hotline,
    /// The mailbox (信箱).
    Mailbox,
    /// A hearing with residents (听证会).
    Hearing,
    /// A forum with residents (座谈会).
    Forum,
    /// An informal "bench meeting" with residents (板凳会).
    BenchMeeting,
    /// An on-site visit during a follow-up review (下沉走访).
    OnSiteVisit,
    /// A special rectification campaign (专项整治).
    SpecialCampaign,
    /// A clue transferred from a partner department (线索移送).
    DepartmentTransfer,
}

/// The three families of channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelGroup {
    /// App and mini-program.
    Online,
    /// Window, hotline, mailbox and meetings with residents.
    Offline,
    /// Found by the commission itself: visits, campaigns, transfers from departments.
    OwnFinding,
}

impl Channel {
    /// Every channel, in a stable order (useful for tests and simulations).
    pub const ALL: [Channel; 11] = [
        Channel::PhotoReportApp,
        Channel::PettyPowerMiniProgram,
        Channel::PetitionWindow,
        Channel::Hotline,
        Channel::Mailbox,
        Channel::Hearing,
        Channel::Forum,
        Channel::BenchMeeting,
        Channel::OnSiteVisit,
        Channel::SpecialCampaign,
        Channel::DepartmentTransfer,
    ];

    /// The family this channel belongs to.
    pub fn group(self) -> ChannelGroup {
        match self {
            Channel::PhotoReportApp | Channel::PettyPowerMiniProgram => ChannelGroup::Online,
            Channel::PetitionWindow
            | Channel::Hotline
            | Channel::Mailbox
            | Channel::Hearing
            | Channel::Forum
            | Channel::BenchMeeting => ChannelGroup::Offline,
            Channel::OnSiteVisit | Channel::SpecialCampaign | Channel::DepartmentTransfer => {
                ChannelGroup::OwnFinding
            }
        }
    }

    /// A stable snake_case name (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PhotoReportApp => "photo_report_app",
            Channel::PettyPowerMiniProgram => "petty_power_mini_program",
            Channel::PetitionWindow => "petition_window",
            Channel::Hotline => "hotline",
            Channel::Mailbox => "mailbox",
            Channel::Hearing => "hearing",
            Channel::Forum => "forum",
            Channel::BenchMeeting => "bench_meeting",
            Channel::OnSiteVisit => "on_site_visit",
            Channel::SpecialCampaign => "special_campaign",
            Channel::DepartmentTransfer => "department_transfer",
        }
    }
}

/// What the resident (or the commission) brought in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A complaint (投诉).
    Complaint,
    /// A consultation request (咨询).
    Consultation,
    /// A suggestion (意见建议).
    Suggestion,
    /// A problem clue (问题线索).
    ProblemClue,
}

impl CaseKind {
    /// Every kind, in a stable order.
    pub const ALL: [CaseKind; 4] = [
        CaseKind::Complaint,
        CaseKind::Consultation,
        CaseKind::Suggestion,
        CaseKind::ProblemClue,
    ];
}

/// The category given at classification; it decides the path through handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A discipline clue: disposition, verification, findings, discipline.
    DisciplineClue,
    /// A mass demand (群众诉求): answered by the responsible department or locality.
    MassDemand,
    /// A consultation: answered.
    Consultation,
}

/// The focus areas (重点领域) of DOMAIN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FocusArea {
    /// Education and medical care.
    EducationAndMedicalCare,
    /// Elderly care and social security.
    ElderlyCareAndSocialSecurity,
    /// Employment and school enrolment.
    EmploymentAndSchoolEnrolment,
    /// Living environment.
    LivingEnvironment,
    /// Rural revitalisation.
    RuralRevitalisation,
    /// Contracting of village collective resources.
    VillageCollectiveResources,
    /// Management of small engineering projects.
    SmallEngineeringProjects,
    /// People's livelihood in general.
    LivelihoodGeneral,
}

impl FocusArea {
    /// Every focus area, in a stable order.
    pub const ALL: [FocusArea; 8] = [
        FocusArea::EducationAndMedicalCare,
        FocusArea::ElderlyCareAndSocialSecurity,
        FocusArea::EmploymentAndSchoolEnrolment,
        FocusArea::LivingEnvironment,
        FocusArea::RuralRevitalisation,
        FocusArea::VillageCollectiveResources,
        FocusArea::SmallEngineeringProjects,
        FocusArea::LivelihoodGeneral,
    ];
}

/// How serious the matter is; it picks time limits and whether a joint consultation is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Ordinary (一般).
    Ordinary,
    /// Serious (较重).
    Serious,
    /// Grave, a "hard" clue (重大): a clue of this severity needs a joint consultation before
    /// it is routed; a mass demand of this severity gets the short time limit.
    Grave,
}

/// The four dispositions of a discipline clue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Talk or letter inquiry (谈话函询).
    TalkOrLetterInquiry,
    /// Preliminary verification (初步核实).
    PreliminaryVerification,
    /// Hold for later (暂存待查).
    HoldForLater,
    /// Close without action (予以了结).
    CloseWithoutAction,
}

/// The result of verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Substantiated (属实).
    Substantiated,
    /// Partly substantiated (部分属实).
    PartlySubstantiated,
    /// Not substantiated (不属实).
    NotSubstantiated,
}

impl Finding {
    /// Whether anything was found that may be disciplined or rectified.
    pub fn is_substantiated(self) -> bool {
        matches!(self, Finding::Substantiated | Finding::PartlySubstantiated)
    }
}

/// Measures taken against a named person (处理处分), mildest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisciplineMeasure {
    /// Criticism and education (批评教育).
    CriticismAndEducation,
    /// Admonishment (诫勉).
    Admonishment,
    /// Warning (警告).
    Warning,
    /// Serious warning (严重警告).
    SeriousWarning,
    /// Removal from post (撤销职务).
    RemovalFromPost,
    /// Expulsion (开除).
    Expulsion,
    /// Transfer to the judicial organs (移送司法机关).
    TransferToJudiciary,
}

/// One disciplined person. One clue can concern several people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisciplinedPerson {
    /// The person's name.
    pub name: String,
    /// The person's position, e.g. "村委会主任".
    pub position: String,
    /// The measure taken.
    pub measure: DisciplineMeasure,
}

/// Who answers for a problem: a unit of the commission's network (a locality or village) or a
/// functional department. A department acts in the engine through the team stationed in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum ResponsibleParty {
    /// A unit (usually a locality or village).
    Unit(UnitId),
    /// A functional department.
    Department(DepartmentId),
}

impl fmt::Display for ResponsibleParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponsibleParty::Unit(u) => write!(f, "{u}"),
            ResponsibleParty::Department(d) => write!(f, "{d}"),
        }
    }
}

/// Why a report is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// Outside the commission's remit and no other authority to transfer to.
    OutsideRemit,
    /// Too little information to act on, and the reporter cannot be asked.
    InsufficientInformation,
    /// Already decided by a final ruling.
    AlreadyDecided,
}

/// The result of a follow-up visit (回头看).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitResult {
    /// The rectification held.
    Held,
    /// The rectification did not hold.
    Failed,
}

/// The reporter's (or the residents') satisfaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// Satisfied (满意).
    Satisfied,
    /// Basically satisfied (基本满意).
    BasicallySatisfied,
    /// Unsatisfied (不满意): the case must be reopened before it may close.
    Unsatisfied,
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    /// Problem confirmed, rectified and the rectification held.
    Rectified,
    /// Consultation answered.
    Answered,
    /// The matter was not substantiated.
    NotSubstantiated,
    /// The clue was closed without action (予以了结).
    ClosedWithoutAction,
}

/// The deadlines (time limits) a case can have open. At most one of each kind is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Accept, decline, merge or transfer a reported case.
    IntakeDecision,
    /// Classify and route an accepted case.
    Classification,
    /// Handle a routed case: findings, or the answer to a consultation.
    Handling,
    /// Decide again on a clue held for later.
    HoldReview,
    /// The responsible party submits its rectification plan.
    RectificationPlan,
    /// The responsible party completes the rectification by the plan's deadline.
    Rectification,
    /// Follow-up visit and satisfaction after rectification.
    Review,
}

impl DeadlineKind {
    /// Every deadline kind, in a stable order.
    pub const ALL: [DeadlineKind; 7] = [
        DeadlineKind::IntakeDecision,
        DeadlineKind::Classification,
        DeadlineKind::Handling,
        DeadlineKind::HoldReview,
        DeadlineKind::RectificationPlan,
        DeadlineKind::Rectification,
        DeadlineKind::Review,
    ];
}

/// The role of the person acting for a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The head of a room, team or locality commission; takes the decisions (分级, 处置, 处分).
    Leader,
    /// A case officer of a room, team or locality commission.
    CaseOfficer,
    /// A village or community information officer (信息员); only valid at village level.
    InformationOfficer,
    /// The engine's deadline watcher, urging a missed time limit on a unit's behalf by the
    /// rule (自动督办): not a person. It may issue `UrgeOverdue` and nothing else, wherever
    /// the unit it acts for may urge; the record then says the rule urged, not a leader.
    Watcher,
}

impl Role {
    /// Whether this role exists at this level.
    pub fn valid_at(self, level: Level) -> bool {
        match self {
            Role::InformationOfficer => level == Level::Village,
            Role::Leader | Role::CaseOfficer | Role::Watcher => level != Level::Village,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leader => "leader",
            Role::CaseOfficer => "case_officer",
            Role::InformationOfficer => "information_officer",
            Role::Watcher => "watcher",
        })
    }
}

/// Who issues a command: a unit and the role of the person acting for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The acting unit.
    pub unit: UnitId,
    /// The role of the person acting for it.
    pub role: Role,
}

impl Actor {
    /// Builds an actor.
    pub fn new(unit: impl Into<UnitId>, role: Role) -> Self {
        Actor {
            unit: unit.into(),
            role,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.unit, self.role)
    }
}

/// A reporter's contact details. They are stored with the case (so the commission can call
/// back) but never shown in clear by `Debug` or `Display`: logs, panics and error messages
/// cannot leak them. Only [`crate::ReporterHandle`] may appear in projections and exports.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedContact {
    name: String,
    phone: String,
}

impl ProtectedContact {
    /// Wraps a reporter's name and phone number.
    pub fn new(name: impl Into<String>, phone: impl Into<String>) -> Self {
        ProtectedContact {
            name: name.into(),
            phone: phone.into(),
        }
    }

    /// The reporter's name. Call only where the contact is needed (calling back).
    pub fn expose_name(&self) -> &str {
        &self.name
    }

    /// The reporter's phone. Call only where the contact is needed (calling back).
    pub fn expose_phone(&self) -> &str {
        &self.phone
    }
}

impl fmt::Debug for ProtectedContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProtectedContact(<redacted>)")
    }
}

impl fmt::Display for ProtectedContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<protected contact>")
    }
}

/// A reporter's contact as the log stores it: encrypted by the engine with the reporter's
/// data key. To the domain it is opaque data: the domain never encrypts, decrypts or looks
/// inside it (that would need keys, randomness and IO). The format is the engine's
/// (docs/design.md, "Reporter contacts"): `key_id` names the data key in the key store.
///
/// Two stored forms. Format 1 (the first release) is an object with `nonce` and
/// `ciphertext` in lowercase hex. Later formats leave `nonce` empty (the engine keeps it
/// inside `ciphertext`) and are stored as the one string `<format>.<key_id>.<ciphertext>`,
/// about half the bytes to hash and write. Both forms decode, and a format-1 value is
/// written back as an object, as it was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedContact {
    /// The format of the sealed value (the engine's; 1 is XChaCha20-Poly1305 over the
    /// contact's JSON, 2 over length-prefixed fields, 3 AES-256-GCM over the same fields;
    /// each bound to the case and the reporter handle).
    pub format: u32,
    /// The data key's id in the key store.
    pub key_id: String,
    /// The AEAD nonce, hex (format 1); empty in the compact form.
    pub nonce: String,
    /// The AEAD ciphertext with its tag: hex (format 1), or the engine's text without `.`
    /// in the compact form.
    pub ciphertext: String,
}

/// The object form (format 1), borrowed for writing.
#[derive(Serialize)]
#[serde(rename = "SealedContact")]
struct SealedFieldsRef<'a> {
    format: u32,
    key_id: &'a str,
    nonce: &'a str,
    ciphertext: &'a str,
}

#[derive(Deserialize)]
struct SealedFields {
    format: u32,
    key_id: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SealedWire {
    Compact(String),
    Fields(SealedFields),
}

impl SealedContact {
    /// Whether this value is written as the one compact string (it can be read back as
    /// the same value).
    fn is_compact(&self) -> bool {
        self.nonce.is_empty()
            && self.format != 1
            && !self.key_id.is_empty()
            && !self.key_id.contains('.')
            && !self.ciphertext.contains('.')
    }

    fn from_compact(text: &str) -> Option<SealedContact> {
        let mut parts = text.splitn(3, '.');
        let format: u32 = parts.next()?.parse().ok()?;
        let key_id = parts.next()?;
        let ciphertext = parts.next()?;
        if format == 1 || key_id.is_empty() || ciphertext.contains('.') {
            return None;
        }
        Some(SealedContact {
            format,
            key_id: key_id.to_owned(),
            nonce: String::new(),
            ciphertext: ciphertext.to_owned(),
        })
    }
}

impl Serialize for SealedContact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_compact() {
            serializer.collect_str(&format_args!(
                "{}.{}.{}",
                self.format, self.key_id, self.ciphertext
            ))
        } else {
            SealedFieldsRef {
                format: self.format,
                key_id: &self.key_id,
                nonce: &self.nonce,
                ciphertext: &self.ciphertext,
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for SealedContact {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match SealedWire::deserialize(deserializer)? {
            SealedWire::Compact(text) => SealedContact::from_compact(&text).ok_or_else(|| {
                serde::de::Error::custom("a sealed contact string is not <format>.<key>.<data>")
            }),
            SealedWire::Fields(f) => Ok(SealedContact {
                format: f.format,
                key_id: f.key_id,
                nonce: f.nonce,
                ciphertext: f.ciphertext,
            }),
        }
    }
}

/// Who reported a case.
///
/// A command names the reporter as given ([`Reporter::Named`] in clear, or anonymous); the
/// engine seals a named contact before anything is stored, so an event written by this
/// release holds [`Reporter::Sealed`]. A `Named` reporter in an event comes from a store
/// written before contacts were encrypted (schema version 1 of `CaseReported`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "contact", rename_all = "snake_case")]
pub enum Reporter {
    /// The reporter did not give a name.
    Anonymous,
    /// The reporter gave a contact, in clear: in a command, or in an old (v1) event.
    Named(ProtectedContact),
    /// The reporter gave a contact, stored encrypted (opaque to the domain).
    Sealed(SealedContact),
}

impl Reporter {
    /// Whether the reporter is anonymous.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Reporter::Anonymous)
    }
}

/// The record that a reporter's contact was erased (crypto-shredded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactErasure {
    /// When the erasure was decided.
    pub at: DateTime<Utc>,
    /// Who decided it.
    pub by: Actor,
    /// Why.
    pub reason: String,
    /// The legal basis.
    pub legal_basis: String,
}
