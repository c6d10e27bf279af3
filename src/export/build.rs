//! Fills the neutral export models from the event store: one XES trace per case, and the
//! OCEL 2.0 objects (case, unit, village, department, rectification plan, reporter handle)
//! with qualified event-to-object relations.

use std::collections::BTreeMap;
use std::io::Write;

use caseflow_domain::{CaseState, Organisation, ResponsibleParty, evolve};
use caseflow_projections::case_stream_id;
use chrono::{DateTime, FixedOffset, Offset, Utc};
use serde::Serialize;

use super::{
    AttrValue, OcelEvent, OcelLog, OcelObject, XesEvent, XesLog, XesTrace, write_ocel2, write_xes,
};
use crate::engine::{Engine, decode};
use crate::error::EngineError;

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

fn local(offset: FixedOffset, t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&offset)
}

fn party_object(p: &ResponsibleParty) -> String {
    match p {
        ResponsibleParty::Unit(u) => format!("unit:{u}"),
        ResponsibleParty::Department(d) => format!("department:{d}"),
    }
}

impl Engine {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.district().calendar.utc_offset_minutes * 60)
            .unwrap_or_else(|| Utc.fix())
    }

    /// Builds the XES model of the whole store: one trace per case.
    pub async fn xes_log(&self) -> Result<XesLog, EngineError> {
        let offset = self.offset();
        let mut log = XesLog {
            name: format!("caseflow: {}", self.district().org.info().name),
            traces: Vec::new(),
        };
        for case_id in self.case_ids().await? {
            let records = self.read_stream_all(&case_stream_id(case_id)).await?;
            let mut state = CaseState::default();
            let mut events = Vec::with_capacity(records.len());
            for r in &records {
                let event = decode(r)?;
                evolve(&mut state, &event);
                events.push(XesEvent {
                    activity: r.event_type.clone(),
                    timestamp: local(offset, event.at()),
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
                            AttrValue::Date(local(offset, r.recorded_at)),
                        ),
                        (
                            "caseflow:hash".to_owned(),
                            AttrValue::String(hex::encode(r.hash)),
                        ),
                    ],
                });
            }
            let mut attributes = Vec::new();
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
        let log = self.xes_log().await?;
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
        let offset = self.offset();
        let org: &Organisation = &self.district().org;
        let mut objects: BTreeMap<String, OcelObject> = BTreeMap::new();
        let mut events: Vec<(u64, OcelEvent)> = Vec::new();
        let epoch = DateTime::<Utc>::UNIX_EPOCH.with_timezone(&offset);
        let ensure_unit = |objects: &mut BTreeMap<String, OcelObject>, id: &str| -> String {
            let key = format!("unit:{id}");
            objects.entry(key.clone()).or_insert_with(|| {
                let mut attributes = Vec::new();
                let mut relationships = Vec::new();
                if let Some(unit) = org.unit(&id.into()) {
                    attributes.push((
                        "name".to_owned(),
                        epoch,
                        AttrValue::String(unit.name.clone()),
                    ));
                    attributes.push((
                        "level".to_owned(),
                        epoch,
                        AttrValue::String(unit.level.to_string()),
                    ));
                    attributes.push((
                        "zone".to_owned(),
                        epoch,
                        AttrValue::String(unit.zone.to_string()),
                    ));
                    if let Some(loc) = &unit.locality {
                        relationships
                            .push((format!("unit:{loc}"), "belongs to locality".to_owned()));
                    }
                }
                OcelObject {
                    id: key.clone(),
                    object_type: "unit".to_owned(),
                    attributes,
                    relationships,
                }
            });
            key
        };
        for case_id in self.case_ids().await? {
            let records = self.read_stream_all(&case_stream_id(case_id)).await?;
            let case_key = format!("case:{case_id}");
            let mut state = CaseState::default();
            let mut plans = 0u32;
            for r in &records {
                let event = decode(r)?;
                evolve(&mut state, &event);
                let at = local(offset, event.at());
                let mut rel: Vec<(String, String)> = vec![(case_key.clone(), "case".to_owned())];
                let actor_key = ensure_unit(&mut objects, event.actor().unit.as_str());
                rel.push((actor_key, "actor".to_owned()));
                let Some(case) = state.case() else { continue };
                match r.event_type.as_str() {
                    "CaseReported" => {
                        let loc = ensure_unit(&mut objects, case.locality.as_str());
                        rel.push((loc, "locality".to_owned()));
                        if let Some(v) = &case.village {
                            let key = format!("village:{v}");
                            objects.entry(key.clone()).or_insert_with(|| OcelObject {
                                id: key.clone(),
                                object_type: "village".to_owned(),
                                attributes: org
                                    .unit(v)
                                    .map(|u| {
                                        vec![(
                                            "name".to_owned(),
                                            epoch,
                                            AttrValue::String(u.name.clone()),
                                        )]
                                    })
                                    .unwrap_or_default(),
                                relationships: vec![(
                                    format!("unit:{}", case.locality),
                                    "in locality".to_owned(),
                                )],
                            });
                            rel.push((key, "place".to_owned()));
                        }
                        let reporter = format!("reporter:{}", case.reporter_handle);
                        objects
                            .entry(reporter.clone())
                            .or_insert_with(|| OcelObject {
                                id: reporter.clone(),
                                object_type: "reporter".to_owned(),
                                attributes: vec![(
                                    "anonymous".to_owned(),
                                    at,
                                    AttrValue::Bool(case.reporter.is_anonymous()),
                                )],
                                relationships: Vec::new(),
                            });
                        rel.push((reporter, "reported by".to_owned()));
                    }
                    "CaseRouted" => {
                        if let Some(route) = &case.route {
                            let lead = ensure_unit(&mut objects, route.lead_unit.as_str());
                            rel.push((lead, "lead unit".to_owned()));
                            for p in &route.responsible {
                                rel.push((party_object(p), "responsible".to_owned()));
                            }
                        }
                    }
                    "VerificationTeamFormed" => {
                        if let Some(team) = &case.verification_team {
                            let leader = ensure_unit(&mut objects, team.leader.as_str());
                            rel.push((leader, "team leader".to_owned()));
                            for m in &team.members {
                                let key = ensure_unit(&mut objects, m.as_str());
                                rel.push((key, "team member".to_owned()));
                            }
                        }
                    }
                    "RectificationOrdered" => {
                        if let Some(rect) = &case.rectification {
                            rel.push((party_object(&rect.responsible), "responsible".to_owned()));
                        }
                    }
                    "RectificationPlanSubmitted" => {
                        plans += 1;
                        if let Some(rect) = &case.rectification {
                            let key = format!("plan:{case_id}:{plans}");
                            let mut attributes = vec![(
                                "measures".to_owned(),
                                at,
                                AttrValue::Int(rect.measures.len() as i64),
                            )];
                            if let Some(deadline) = rect.deadline {
                                attributes.push((
                                    "deadline".to_owned(),
                                    at,
                                    AttrValue::Date(local(offset, deadline)),
                                ));
                            }
                            objects.insert(
                                key.clone(),
                                OcelObject {
                                    id: key.clone(),
                                    object_type: "rectification plan".to_owned(),
                                    attributes,
                                    relationships: vec![
                                        (case_key.clone(), "for case".to_owned()),
                                        (party_object(&rect.responsible), "responsible".to_owned()),
                                    ],
                                },
                            );
                            rel.push((key, "plan".to_owned()));
                        }
                    }
                    "RectificationProgressReported" | "RectificationCompleted" if plans > 0 => {
                        rel.push((format!("plan:{case_id}:{plans}"), "plan".to_owned()));
                    }
                    "FollowUpVisitScheduled" => {
                        if let Some(visit) = &case.scheduled_visit {
                            let key = ensure_unit(&mut objects, visit.visitor.as_str());
                            rel.push((key, "visitor".to_owned()));
                        }
                    }
                    "CaseMerged" => {
                        if let Some(into) = case.merged_into {
                            rel.push((format!("case:{into}"), "merged into".to_owned()));
                        }
                    }
                    _ => {}
                }
                rel.dedup();
                events.push((
                    r.position,
                    OcelEvent {
                        id: r.event_id.to_string(),
                        event_type: r.event_type.clone(),
                        time: at,
                        attributes: vec![
                            (
                                "stage".to_owned(),
                                AttrValue::String(state.stage().as_str().to_owned()),
                            ),
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
            if let Some(case) = state.case() {
                let reported = local(offset, case.reported_at);
                let mut relationships = vec![(
                    format!("reporter:{}", case.reporter_handle),
                    "reported by".to_owned(),
                )];
                if let Some(v) = &case.village {
                    relationships.push((format!("village:{v}"), "located in".to_owned()));
                }
                if let Some(lead) = case.lead_unit() {
                    relationships.push((format!("unit:{lead}"), "led by".to_owned()));
                }
                if let Some(into) = case.merged_into {
                    relationships.push((format!("case:{into}"), "duplicate of".to_owned()));
                }
                let mut attributes = vec![
                    (
                        "channel".to_owned(),
                        reported,
                        AttrValue::String(name_of(&case.channel)),
                    ),
                    (
                        "kind".to_owned(),
                        reported,
                        AttrValue::String(name_of(&case.kind)),
                    ),
                    (
                        "focus_area".to_owned(),
                        reported,
                        AttrValue::String(name_of(&case.focus_area)),
                    ),
                    (
                        "locality".to_owned(),
                        reported,
                        AttrValue::String(case.locality.to_string()),
                    ),
                    (
                        "stage".to_owned(),
                        local(offset, case.last_event_at),
                        AttrValue::String(state.stage().as_str().to_owned()),
                    ),
                ];
                if let Some(c) = case.category() {
                    attributes.push((
                        "category".to_owned(),
                        reported,
                        AttrValue::String(name_of(&c)),
                    ));
                }
                objects.insert(
                    case_key.clone(),
                    OcelObject {
                        id: case_key,
                        object_type: "case".to_owned(),
                        attributes,
                        relationships,
                    },
                );
            }
        }
        // Departments named as responsible parties become objects too, so every relation
        // points at a declared object.
        let referenced: Vec<String> = events
            .iter()
            .flat_map(|(_, e)| e.relationships.iter().map(|(id, _)| id.clone()))
            .chain(
                objects
                    .values()
                    .flat_map(|o| o.relationships.iter().map(|(id, _)| id.clone())),
            )
            .collect();
        for id in referenced {
            if objects.contains_key(&id) {
                continue;
            }
            if let Some(dept) = id.strip_prefix("department:") {
                let name = org
                    .department(&dept.into())
                    .map(|d| d.name.clone())
                    .unwrap_or_default();
                objects.insert(
                    id.clone(),
                    OcelObject {
                        id: id.clone(),
                        object_type: "department".to_owned(),
                        attributes: vec![("name".to_owned(), epoch, AttrValue::String(name))],
                        relationships: Vec::new(),
                    },
                );
            } else if let Some(unit) = id.strip_prefix("unit:") {
                ensure_unit(&mut objects, unit);
            }
        }
        events.sort_by_key(|(position, _)| *position);
        Ok(OcelLog {
            objects: objects.into_values().collect(),
            events: events.into_iter().map(|(_, e)| e).collect(),
        })
    }

    /// Writes the whole store as OCEL 2.0 JSON to `out`.
    pub async fn export_ocel2<W: Write>(&self, out: W) -> Result<ExportSummary, EngineError> {
        let log = self.ocel_log().await?;
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
