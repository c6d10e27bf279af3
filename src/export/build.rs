//! Fills the neutral export models from the event store: one XES trace per case, and the
//! OCEL 2.0 objects (case, unit, village, department, rectification plan, reporter handle)
//! with qualified event-to-object relations.

use std::collections::BTreeMap;
use std::io::Write;

use caseflow_domain::{
    Calendar, Case, CaseEvent, CaseId, CaseNumber, CaseState, Organisation, ResponsibleParty,
    evolve,
};
use caseflow_projections::case_stream_id;
use caseflow_store::RecordedEvent;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::{
    AttrValue, OcelEvent, OcelLog, OcelObject, XesEvent, XesLog, XesTrace, write_ocel2, write_xes,
};
use crate::engine::{Engine, decode};
use crate::error::EngineError;
use crate::progress::{Progress, Silent};

/// Counts of what an export wrote (so callers and tests can compare with the store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Cases (XES traces, OCEL case objects).
    pub cases: u64,
    /// Events.
    pub events: u64,
    /// OCEL objects of every type (0 for XES).
    pub objects: u64,
}

/// The snake_case serde name of a domain enum value (`Channel::Hotline` -> `hotline`).
fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn party_object(p: &ResponsibleParty) -> String {
    match p {
        ResponsibleParty::Unit(u) => format!("unit:{u}"),
        ResponsibleParty::Department(d) => format!("department:{d}"),
    }
}

impl Engine {
    /// Builds the XES model of the whole store: one trace per case.
    pub async fn xes_log(&self) -> Result<XesLog, EngineError> {
        self.xes_log_with(&Silent).await
    }

    /// [`Engine::xes_log`], reporting the cases done.
    pub async fn xes_log_with(&self, progress: &dyn Progress) -> Result<XesLog, EngineError> {
        let calendar = &self.district().calendar;
        let mut log = XesLog {
            name: format!("caseflow: {}", self.district().org.info().name),
            traces: Vec::new(),
        };
        let case_ids = self.case_ids().await?;
        let numbers = self.case_numbers(&case_ids).await?;
        progress.total(case_ids.len() as u64);
        for (done, case_id) in case_ids.into_iter().enumerate() {
            progress.done(done as u64);
            let records = self.read_stream_all(&case_stream_id(case_id)).await?;
            let mut state = CaseState::default();
            let mut events = Vec::with_capacity(records.len());
            for r in &records {
                let event = decode(r)?;
                evolve(&mut state, &event);
                events.push(XesEvent {
                    activity: r.event_type.clone(),
                    timestamp: calendar.to_local(event.at()),
                    lifecycle: "complete".to_owned(),
                    resource: event.actor().unit.to_string(),
                    attributes: vec![
                        (
                            "org:role".to_owned(),
                            AttrValue::String(event.actor().role.to_string()),
                        ),
                        (
                            "caseflow:stage".to_owned(),
                            AttrValue::String(state.stage().as_str().to_owned()),
                        ),
                        (
                            "caseflow:version".to_owned(),
                            AttrValue::Int(i64::try_from(r.version).unwrap_or(i64::MAX)),
                        ),
                        (
                            "caseflow:event_id".to_owned(),
                            AttrValue::String(r.event_id.to_string()),
                        ),
                        (
                            "caseflow:recorded_at".to_owned(),
                            AttrValue::Date(calendar.to_local(r.recorded_at)),
                        ),
                        (
                            "caseflow:hash".to_owned(),
                            AttrValue::String(hex::encode(r.hash)),
                        ),
                    ],
                });
            }
            let mut attributes = Vec::new();
            if let Some(number) = numbers.get(&case_id) {
                attributes.push((
                    "caseflow:number".to_owned(),
                    AttrValue::String(number.to_string()),
                ));
            }
            if let Some(case) = state.case() {
                attributes.push((
                    "channel".to_owned(),
                    AttrValue::String(name_of(&case.channel)),
                ));
                attributes.push(("kind".to_owned(), AttrValue::String(name_of(&case.kind))));
                attributes.push((
                    "focus_area".to_owned(),
                    AttrValue::String(name_of(&case.focus_area)),
                ));
                attributes.push((
                    "locality".to_owned(),
                    AttrValue::String(case.locality.to_string()),
                ));
                if let Some(v) = &case.village {
                    attributes.push(("village".to_owned(), AttrValue::String(v.to_string())));
                }
                attributes.push(("zone".to_owned(), AttrValue::String(case.zone.to_string())));
                if let Some(c) = case.category() {
                    attributes.push(("category".to_owned(), AttrValue::String(name_of(&c))));
                }
                attributes.push((
                    "stage".to_owned(),
                    AttrValue::String(state.stage().as_str().to_owned()),
                ));
            }
            log.traces.push(XesTrace {
                name: case_id.to_string(),
                attributes,
                events,
            });
        }
        Ok(log)
    }

    /// Writes the whole store as XES (IEEE 1849) to `out`.
    pub async fn export_xes<W: Write>(&self, out: W) -> Result<ExportSummary, EngineError> {
        self.export_xes_with(out, &Silent).await
    }

    /// [`Engine::export_xes`], reporting the cases done.
    pub async fn export_xes_with<W: Write>(
        &self,
        out: W,
        progress: &dyn Progress,
    ) -> Result<ExportSummary, EngineError> {
        let log = self.xes_log_with(progress).await?;
        write_xes(&log, out).map_err(|source| EngineError::Io {
            what: "cannot write the XES export".to_owned(),
            source,
        })?;
        Ok(ExportSummary {
            cases: log.traces.len() as u64,
            events: log.traces.iter().map(|t| t.events.len() as u64).sum(),
            objects: 0,
        })
    }

    /// Builds the OCEL 2.0 model of the whole store.
    pub async fn ocel_log(&self) -> Result<OcelLog, EngineError> {
        self.ocel_log_with(&Silent).await
    }

    /// [`Engine::ocel_log`], reporting the cases done.
    pub async fn ocel_log_with(&self, progress: &dyn Progress) -> Result<OcelLog, EngineError> {
        let district = self.district();
        let mut builder = OcelBuilder::new(&district.org, &district.calendar);
        let case_ids = self.case_ids().await?;
        builder.numbers = self.case_numbers(&case_ids).await?;
        progress.total(case_ids.len() as u64);
        for (done, case_id) in case_ids.into_iter().enumerate() {
            progress.done(done as u64);
            let records = self.read_stream_all(&case_stream_id(case_id)).await?;
            let mut case = OcelCase::new(case_id);
            for r in &records {
                let event = decode(r)?;
                evolve(&mut case.state, &event);
                builder.event(&mut case, r, &event);
            }
            builder.case_object(case);
        }
        Ok(builder.finish())
    }

    /// Writes the whole store as OCEL 2.0 JSON to `out`.
    pub async fn export_ocel2<W: Write>(&self, out: W) -> Result<ExportSummary, EngineError> {
        self.export_ocel2_with(out, &Silent).await
    }

    /// [`Engine::export_ocel2`], reporting the cases done.
    pub async fn export_ocel2_with<W: Write>(
        &self,
        out: W,
        progress: &dyn Progress,
    ) -> Result<ExportSummary, EngineError> {
        let log = self.ocel_log_with(progress).await?;
        write_ocel2(&log, out).map_err(|source| EngineError::Io {
            what: "cannot write the OCEL 2.0 export".to_owned(),
            source,
        })?;
        Ok(ExportSummary {
            cases: log
                .objects
                .iter()
                .filter(|o| o.object_type == "case")
                .count() as u64,
            events: log.events.len() as u64,
            objects: log.objects.len() as u64,
        })
    }
}

/// One case while its stream is read: its folded state and how many plans it had.
struct OcelCase {
    case_id: CaseId,
    key: String,
    state: CaseState,
    plans: u32,
}

impl OcelCase {
    fn new(case_id: CaseId) -> Self {
        OcelCase {
            case_id,
            key: format!("case:{case_id}"),
            state: CaseState::default(),
            plans: 0,
        }
    }

    fn plan_key(&self) -> String {
        format!("plan:{}:{}", self.case_id, self.plans)
    }
}

/// Accumulates the OCEL objects and events of the whole store, case by case.
struct OcelBuilder<'d> {
    org: &'d Organisation,
    calendar: &'d Calendar,
    epoch: DateTime<FixedOffset>,
    objects: BTreeMap<String, OcelObject>,
    events: Vec<(u64, OcelEvent)>,
    numbers: BTreeMap<CaseId, CaseNumber>,
}

type Relations = Vec<(String, String)>;

fn relation(key: impl Into<String>, qualifier: &str) -> (String, String) {
    (key.into(), qualifier.to_owned())
}

impl<'d> OcelBuilder<'d> {
    fn new(org: &'d Organisation, calendar: &'d Calendar) -> Self {
        OcelBuilder {
            org,
            calendar,
            epoch: calendar.to_local(DateTime::<Utc>::UNIX_EPOCH),
            objects: BTreeMap::new(),
            events: Vec::new(),
            numbers: BTreeMap::new(),
        }
    }

    /// Declares a unit object (once) and returns its key.
    fn unit(&mut self, id: &str) -> String {
        let key = format!("unit:{id}");
        if self.objects.contains_key(&key) {
            return key;
        }
        let mut attributes = Vec::new();
        let mut relationships = Vec::new();
        if let Some(unit) = self.org.unit(&id.into()) {
            let text =
                |name: &str, value: String| (name.to_owned(), self.epoch, AttrValue::String(value));
            attributes.push(text("name", unit.name.clone()));
            attributes.push(text("level", unit.level.to_string()));
            attributes.push(text("zone", unit.zone.to_string()));
            if let Some(loc) = &unit.locality {
                relationships.push(relation(format!("unit:{loc}"), "belongs to locality"));
            }
        }
        self.declare(&key, "unit", attributes, relationships);
        key
    }

    fn declare(
        &mut self,
        key: &str,
        object_type: &str,
        attributes: Vec<(String, DateTime<FixedOffset>, AttrValue)>,
        relationships: Relations,
    ) {
        self.objects
            .entry(key.to_owned())
            .or_insert_with(|| OcelObject {
                id: key.to_owned(),
                object_type: object_type.to_owned(),
                attributes,
                relationships,
            });
    }

    /// Adds one event with its relations to the objects it touches.
    fn event(&mut self, case: &mut OcelCase, r: &RecordedEvent, event: &CaseEvent) {
        let at = self.calendar.to_local(event.at());
        let mut rel: Relations = vec![relation(case.key.clone(), "case")];
        let actor = self.unit(event.actor().unit.as_str());
        rel.push(relation(actor, "actor"));
        if case.state.case().is_none() {
            return;
        }
        if r.event_type == "RectificationPlanSubmitted" {
            case.plans += 1;
        }
        rel.extend(self.relations_of(case, &r.event_type, at));
        rel.dedup();
        let stage = case.state.stage().as_str().to_owned();
        self.events.push((
            r.position,
            OcelEvent {
                id: r.event_id.to_string(),
                event_type: r.event_type.clone(),
                time: at,
                attributes: vec![
                    ("stage".to_owned(), AttrValue::String(stage)),
                    (
                        "version".to_owned(),
                        AttrValue::Int(i64::try_from(r.version).unwrap_or(i64::MAX)),
                    ),
                    (
                        "role".to_owned(),
                        AttrValue::String(event.actor().role.to_string()),
                    ),
                    ("hash".to_owned(), AttrValue::String(hex::encode(r.hash))),
                ],
                relationships: rel,
            },
        ));
    }

    /// The objects an event of this type relates to, beyond its case and actor.
    fn relations_of(
        &mut self,
        c: &OcelCase,
        event_type: &str,
        at: DateTime<FixedOffset>,
    ) -> Relations {
        let Some(case) = c.state.case() else {
            return Vec::new();
        };
        match event_type {
            "CaseReported" => self.reported(case, at),
            "CaseRouted" => match &case.route {
                Some(route) => {
                    let mut rel = vec![relation(self.unit(route.lead_unit.as_str()), "lead unit")];
                    rel.extend(
                        route
                            .responsible
                            .iter()
                            .map(|p| relation(party_object(p), "responsible")),
                    );
                    rel
                }
                None => Vec::new(),
            },
            "VerificationTeamFormed" => match &case.verification_team {
                Some(team) => {
                    let mut rel = vec![relation(self.unit(team.leader.as_str()), "team leader")];
                    for m in &team.members {
                        rel.push(relation(self.unit(m.as_str()), "team member"));
                    }
                    rel
                }
                None => Vec::new(),
            },
            "RectificationOrdered" => case
                .rectification
                .iter()
                .map(|r| relation(party_object(&r.responsible), "responsible"))
                .collect(),
            "RectificationPlanSubmitted" => self.plan(c, at),
            "RectificationProgressReported" | "RectificationCompleted" if c.plans > 0 => {
                vec![relation(c.plan_key(), "plan")]
            }
            "FollowUpVisitScheduled" => case
                .scheduled_visit
                .as_ref()
                .map(|v| vec![relation(self.unit(v.visitor.as_str()), "visitor")])
                .unwrap_or_default(),
            "CaseMerged" => case
                .merged_into
                .map(|into| vec![relation(format!("case:{into}"), "merged into")])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// A report relates to the locality, the village and the reporter's opaque handle.
    fn reported(&mut self, case: &Case, at: DateTime<FixedOffset>) -> Relations {
        let mut rel = vec![relation(self.unit(case.locality.as_str()), "locality")];
        if let Some(v) = &case.village {
            let key = format!("village:{v}");
            let attributes = self
                .org
                .unit(v)
                .map(|u| {
                    vec![(
                        "name".to_owned(),
                        self.epoch,
                        AttrValue::String(u.name.clone()),
                    )]
                })
                .unwrap_or_default();
            let in_locality = vec![relation(format!("unit:{}", case.locality), "in locality")];
            self.declare(&key, "village", attributes, in_locality);
            rel.push(relation(key, "place"));
        }
        let reporter = format!("reporter:{}", case.reporter_handle);
        let anonymous = vec![(
            "anonymous".to_owned(),
            at,
            AttrValue::Bool(case.reporter.is_anonymous()),
        )];
        self.declare(&reporter, "reporter", anonymous, Vec::new());
        rel.push(relation(reporter, "reported by"));
        rel
    }

    /// A submitted plan becomes an object of its own.
    fn plan(&mut self, c: &OcelCase, at: DateTime<FixedOffset>) -> Relations {
        let Some(rect) = c.state.case().and_then(|case| case.rectification.as_ref()) else {
            return Vec::new();
        };
        let key = c.plan_key();
        let mut attributes = vec![(
            "measures".to_owned(),
            at,
            AttrValue::Int(rect.measures.len() as i64),
        )];
        if let Some(deadline) = rect.deadline {
            attributes.push((
                "deadline".to_owned(),
                at,
                AttrValue::Date(self.calendar.to_local(deadline)),
            ));
        }
        let relationships = vec![
            relation(c.key.clone(), "for case"),
            relation(party_object(&rect.responsible), "responsible"),
        ];
        self.objects.insert(
            key.clone(),
            OcelObject {
                id: key.clone(),
                object_type: "rectification plan".to_owned(),
                attributes,
                relationships,
            },
        );
        vec![relation(key, "plan")]
    }

    /// The case object, with its facts as they stood at the end of its stream.
    fn case_object(&mut self, c: OcelCase) {
        let Some(case) = c.state.case() else { return };
        let reported = self.calendar.to_local(case.reported_at);
        let mut relationships = vec![relation(
            format!("reporter:{}", case.reporter_handle),
            "reported by",
        )];
        if let Some(v) = &case.village {
            relationships.push(relation(format!("village:{v}"), "located in"));
        }
        if let Some(lead) = case.lead_unit() {
            relationships.push(relation(format!("unit:{lead}"), "led by"));
        }
        if let Some(into) = case.merged_into {
            relationships.push(relation(format!("case:{into}"), "duplicate of"));
        }
        let text = |name: &str, at, value: String| (name.to_owned(), at, AttrValue::String(value));
        let mut attributes = vec![
            text("channel", reported, name_of(&case.channel)),
            text("kind", reported, name_of(&case.kind)),
            text("focus_area", reported, name_of(&case.focus_area)),
            text("locality", reported, case.locality.to_string()),
            text(
                "stage",
                self.calendar.to_local(case.last_event_at),
                c.state.stage().as_str().to_owned(),
            ),
        ];
        if let Some(category) = case.category() {
            attributes.push(text("category", reported, name_of(&category)));
        }
        if let Some(number) = self.numbers.get(&c.case_id) {
            attributes.push(text("number", reported, number.to_string()));
        }
        self.objects.insert(
            c.key.clone(),
            OcelObject {
                id: c.key,
                object_type: "case".to_owned(),
                attributes,
                relationships,
            },
        );
    }

    /// Departments and units that are only referenced become objects too, so every relation
    /// points at a declared object; events go in log order.
    fn finish(mut self) -> OcelLog {
        let referenced: Vec<String> = self
            .events
            .iter()
            .flat_map(|(_, e)| e.relationships.iter().map(|(id, _)| id.clone()))
            .chain(
                self.objects
                    .values()
                    .flat_map(|o| o.relationships.iter().map(|(id, _)| id.clone())),
            )
            .collect();
        for id in referenced {
            if self.objects.contains_key(&id) {
                continue;
            }
            if let Some(dept) = id.strip_prefix("department:") {
                let name = self
                    .org
                    .department(&dept.into())
                    .map(|d| d.name.clone())
                    .unwrap_or_default();
                let attributes = vec![("name".to_owned(), self.epoch, AttrValue::String(name))];
                self.declare(&id, "department", attributes, Vec::new());
            } else if let Some(unit) = id.strip_prefix("unit:") {
                self.unit(unit);
            }
        }
        self.events.sort_by_key(|(position, _)| *position);
        OcelLog {
            objects: self.objects.into_values().collect(),
            events: self.events.into_iter().map(|(_, e)| e).collect(),
        }
    }
}
