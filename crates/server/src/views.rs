//! What the JSON API returns: machine names (the domain's snake_case), the labels people
//! read in the requested language, unit names next to ids, and times both in UTC and in
//! district time. Never a reporter's contact: a case shows the opaque reporter handle and
//! whether the reporter gave a name.

use std::collections::BTreeMap;

use caseflow::domain::{
    Assignee, CaseId, CaseNumber, CaseState, Label, Lang, NextCommand, Organisation, Reporter,
    UnitId,
};
use caseflow::projections::{CaseTimeline, TodoItem};
use caseflow::{District, TodoPage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The serde (machine) name of a domain value, e.g. `decide_intake`.
pub fn machine_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A unit's display name, or its id when the district does not know it.
pub fn unit_name(org: &Organisation, unit: &UnitId) -> String {
    org.unit(unit)
        .map_or_else(|| unit.to_string(), |u| u.name.clone())
}

/// The display name of an assignee (a unit or a partner department).
pub fn assignee_name(org: &Organisation, assignee: &Assignee) -> String {
    match assignee {
        Assignee::Unit(u) => unit_name(org, u),
        Assignee::Department(d) => org
            .department(d)
            .map_or_else(|| d.to_string(), |d| d.name.clone()),
    }
}

/// A time in district time, `YYYY-MM-DD HH:MM+08:00`.
pub fn local_time(district: &District, t: DateTime<Utc>) -> String {
    district
        .calendar
        .to_local(t)
        .format("%Y-%m-%d %H:%M%:z")
        .to_string()
}

/// One line of a to-do list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TodoItemView {
    /// The case (UUID).
    pub case_id: String,
    /// The case's human number (`2026-0042`), once the read models have numbered it.
    pub case_number: Option<String>,
    /// The case's summary.
    pub title: String,
    /// The case's stage (machine name).
    pub stage: String,
    /// The stage's label.
    pub stage_label: String,
    /// The case's kind.
    pub kind: String,
    /// The kind's label.
    pub kind_label: String,
    /// What to do (machine name).
    pub action: String,
    /// What to do, to read.
    pub action_label: String,
    /// Whose list it is on (unit or department id).
    pub assignee: String,
    /// That unit's or department's name.
    pub assignee_name: String,
    /// By when, UTC (absent when no time limit runs).
    pub due_at: Option<DateTime<Utc>>,
    /// By when, in district time.
    pub due_local: Option<String>,
    /// Whether the due time has passed.
    pub overdue: bool,
    /// `normal`, `high` or `urgent`.
    pub priority: String,
    /// The priority's label.
    pub priority_label: String,
    /// The case's town or street.
    pub locality: String,
    /// Its name.
    pub locality_name: String,
    /// The case's village or community, if known.
    pub village: Option<String>,
    /// Its name.
    pub village_name: Option<String>,
}

impl TodoItemView {
    /// The view of one item.
    pub fn of(item: &TodoItem, numbers: &CaseNumbers, district: &District, lang: Lang) -> Self {
        let org = &district.org;
        let card = &item.case;
        TodoItemView {
            case_id: card.case_id.to_string(),
            case_number: numbers.get(&card.case_id).map(ToString::to_string),
            title: card.title.clone(),
            stage: card.stage.as_str().to_owned(),
            stage_label: card.stage.label(lang).to_owned(),
            kind: machine_name(&card.kind),
            kind_label: card.kind.label(lang).to_owned(),
            action: machine_name(&item.action),
            action_label: item.action.label(lang).to_owned(),
            assignee: item.assignee.to_string(),
            assignee_name: assignee_name(org, &item.assignee),
            due_at: item.due_at,
            due_local: item.due_at.map(|t| local_time(district, t)),
            overdue: item.overdue,
            priority: machine_name(&item.priority),
            priority_label: item.priority.label(lang).to_owned(),
            locality: card.place.locality.to_string(),
            locality_name: unit_name(org, &card.place.locality),
            village: card.place.village.as_ref().map(ToString::to_string),
            village_name: card.place.village.as_ref().map(|v| unit_name(org, v)),
        }
    }
}

/// The human numbers of the cases a view shows.
pub type CaseNumbers = BTreeMap<CaseId, CaseNumber>;

/// Whose list a page is of, and when it was judged.
#[derive(Debug, Clone)]
pub struct ListHead {
    /// A unit, zone, level or department id.
    pub list: String,
    /// Its name.
    pub name: String,
    /// The time the list was judged at.
    pub now: DateTime<Utc>,
}

/// One page of a to-do list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TodoPageView {
    /// Whose list: a unit, zone, level or department id.
    pub list: String,
    /// Its name.
    pub name: String,
    /// The time the list was judged at (overdue = due before this).
    pub now: DateTime<Utc>,
    /// Items on the whole list.
    pub total: u64,
    /// Overdue items on the whole list.
    pub overdue: u64,
    /// Items skipped.
    pub offset: usize,
    /// Most items returned.
    pub limit: usize,
    /// The items, overdue first, then by due time.
    pub items: Vec<TodoItemView>,
}

impl TodoPageView {
    /// A page of a list the engine served as a page.
    pub fn from_page(
        head: ListHead,
        page: &TodoPage,
        numbers: &CaseNumbers,
        window: (usize, usize),
        district: &District,
        lang: Lang,
    ) -> Self {
        TodoPageView {
            list: head.list,
            name: head.name,
            now: head.now,
            total: page.counts.total,
            overdue: page.counts.overdue,
            offset: window.0,
            limit: window.1,
            items: page
                .items
                .iter()
                .map(|i| TodoItemView::of(i, numbers, district, lang))
                .collect(),
        }
    }

    /// A page cut from a whole merged list (zone, level, department).
    pub fn from_items(
        head: ListHead,
        items: &[TodoItem],
        numbers: &CaseNumbers,
        window: (usize, usize),
        district: &District,
        lang: Lang,
    ) -> Self {
        TodoPageView {
            list: head.list,
            name: head.name,
            now: head.now,
            total: items.len() as u64,
            overdue: items.iter().filter(|i| i.overdue).count() as u64,
            offset: window.0,
            limit: window.1,
            items: items
                .iter()
                .skip(window.0)
                .take(window.1)
                .map(|i| TodoItemView::of(i, numbers, district, lang))
                .collect(),
        }
    }
}

/// A command the reader may issue now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextCommandView {
    /// The command's name, e.g. `AcceptCase`.
    pub kind: String,
    /// Its label.
    pub label: String,
    /// The to-do duties it discharges (machine names).
    pub discharges: Vec<String>,
    /// A command the domain accepts now, ready to send (adjust its fields); absent for
    /// `MergeCase`, whose target only the caller can choose.
    #[schema(value_type = Option<Object>)]
    pub draft: Option<serde_json::Value>,
}

impl NextCommandView {
    /// The view of one next command.
    pub fn of(next: &NextCommand, lang: Lang) -> Self {
        NextCommandView {
            kind: next.kind.name().to_owned(),
            label: next.kind.label(lang).to_owned(),
            discharges: next.discharges.iter().map(machine_name).collect(),
            draft: next
                .draft
                .as_ref()
                .and_then(|d| serde_json::to_value(d).ok()),
        }
    }
}

/// Someone a case waits on now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HolderView {
    /// Unit or department id.
    pub assignee: String,
    /// Its name.
    pub name: String,
    /// What it must do.
    pub action: String,
    /// To read.
    pub action_label: String,
    /// By when (UTC).
    pub due_at: Option<DateTime<Utc>>,
    /// By when, district time.
    pub due_local: Option<String>,
}

/// A case as the reader may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseView {
    /// The case (UUID).
    pub case_id: String,
    /// The case's human number (`2026-0042`), once the read models have numbered it.
    pub case_number: Option<String>,
    /// Events so far.
    pub version: u64,
    /// The stage.
    pub stage: String,
    /// Its label.
    pub stage_label: String,
    /// The case's kind label.
    pub kind_label: String,
    /// The town or street's name.
    pub locality_name: String,
    /// The village's name, if any.
    pub village_name: Option<String>,
    /// The lead unit's name, once routed.
    pub lead_unit_name: Option<String>,
    /// The opaque reporter handle (never the contact).
    pub reporter_handle: String,
    /// Whether the reporter gave a name (which only the reveal path can show).
    pub reporter_named: bool,
    /// The case's record as the domain folds it, with the reporter's contact removed.
    #[schema(value_type = Object)]
    pub case: serde_json::Value,
    /// Who it waits on now.
    pub holders: Vec<HolderView>,
    /// The commands the reader may issue now.
    pub next_commands: Vec<NextCommandView>,
}

/// The case's record without the reporter's contact.
pub fn redacted_case(state: &CaseState) -> serde_json::Value {
    let Some(case) = state.case() else {
        return serde_json::Value::Null;
    };
    let mut value = serde_json::to_value(case).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        let named = !matches!(case.reporter, Reporter::Anonymous);
        object.insert(
            "reporter".to_owned(),
            serde_json::json!({ "named": named, "contact": "withheld" }),
        );
    }
    value
}

/// A case's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineView {
    /// The case.
    pub case_id: String,
    /// Every event.
    pub entries: Vec<TimelineEntryView>,
    /// Each stay in a stage.
    pub stages: Vec<StageStayView>,
}

/// One event of a timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntryView {
    /// Stream version.
    pub version: u64,
    /// Global position.
    pub position: u64,
    /// Event type, e.g. `CaseAccepted`.
    pub event_type: String,
    /// `unit/role` as recorded.
    pub actor: String,
    /// The acting unit's name.
    pub actor_name: String,
    /// Business time (UTC).
    pub at: DateTime<Utc>,
    /// Business time, district time.
    pub at_local: String,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Stage before.
    pub stage_before: String,
    /// Stage after.
    pub stage_after: String,
    /// Stage after, to read.
    pub stage_after_label: String,
}

/// A stay in one stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageStayView {
    /// The stage.
    pub stage: String,
    /// To read.
    pub label: String,
    /// Entered (UTC).
    pub entered_at: DateTime<Utc>,
    /// Left, if it did.
    pub left_at: Option<DateTime<Utc>>,
    /// How long, in seconds (up to now for the current stage).
    pub duration_seconds: i64,
}

impl TimelineView {
    /// The view of a projection timeline.
    pub fn of(timeline: &CaseTimeline, district: &District, lang: Lang) -> Self {
        let org = &district.org;
        TimelineView {
            case_id: timeline.case_id.to_string(),
            entries: timeline
                .entries
                .iter()
                .map(|e| {
                    let unit = e.actor.split('/').next().unwrap_or_default();
                    TimelineEntryView {
                        version: e.version,
                        position: e.position,
                        event_type: e.event_type.to_string(),
                        actor: e.actor.to_string(),
                        actor_name: unit_name(org, &UnitId::from(unit)),
                        at: e.at,
                        at_local: local_time(district, e.at),
                        recorded_at: e.recorded_at,
                        stage_before: e.stage_before.as_str().to_owned(),
                        stage_after: e.stage_after.as_str().to_owned(),
                        stage_after_label: e.stage_after.label(lang).to_owned(),
                    }
                })
                .collect(),
            stages: timeline
                .spans
                .iter()
                .map(|s| StageStayView {
                    stage: s.stage.as_str().to_owned(),
                    label: s.stage.label(lang).to_owned(),
                    entered_at: s.entered_at,
                    left_at: s.left_at,
                    duration_seconds: s.duration.num_seconds(),
                })
                .collect(),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandResult {
    /// The command id (the idempotency key).
    pub command_id: String,
    /// The case.
    pub case_id: String,
    /// True when this is the stored result of an earlier request with the same key: nothing
    /// was written this time.
    pub replayed: bool,
    /// The case's version after the command.
    pub version: u64,
    /// The types of the events written (payloads are read through the case and timeline).
    pub events: Vec<String>,
    /// The case's stage after the command.
    pub stage: String,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeView {
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// `staff`, `auditor` or `admin`.
    pub kind: String,
    /// For staff: the unit.
    pub unit: Option<String>,
    /// Its name.
    pub unit_name: Option<String>,
    /// For staff: the role.
    pub role: Option<String>,
}
