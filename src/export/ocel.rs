//! OCEL 2.0 JSON writer. The format's object and event type declarations (with their
//! attribute names and types) are derived from the objects and events themselves, so they can
//! never disagree with the data.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::{AttrValue, format_time};

/// An object-centric event log.
#[derive(Debug, Clone, Default)]
pub struct OcelLog {
    /// All objects (cases, units, villages, rectification plans, reporter handles).
    pub objects: Vec<OcelObject>,
    /// All events, in global order.
    pub events: Vec<OcelEvent>,
}

/// One object.
#[derive(Debug, Clone)]
pub struct OcelObject {
    /// Unique id across all objects.
    pub id: String,
    /// Object type name (e.g. `case`).
    pub object_type: String,
    /// Attribute values, each valid from the given time.
    pub attributes: Vec<(String, DateTime<FixedOffset>, AttrValue)>,
    /// Object-to-object relations: (target object id, qualifier).
    pub relationships: Vec<(String, String)>,
}

/// One event.
#[derive(Debug, Clone)]
pub struct OcelEvent {
    /// Unique event id.
    pub id: String,
    /// Event type name (the activity).
    pub event_type: String,
    /// When it happened.
    pub time: DateTime<FixedOffset>,
    /// Event attributes.
    pub attributes: Vec<(String, AttrValue)>,
    /// Event-to-object relations: (object id, qualifier).
    pub relationships: Vec<(String, String)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    object_types: Vec<TypeDecl>,
    event_types: Vec<TypeDecl>,
    objects: Vec<ObjectOut<'a>>,
    events: Vec<EventOut<'a>>,
}

#[derive(Serialize)]
struct TypeDecl {
    name: String,
    attributes: Vec<AttrDecl>,
}

#[derive(Serialize)]
struct AttrDecl {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct ObjectOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    attributes: Vec<ObjectAttrOut<'a>>,
    relationships: Vec<RelOut<'a>>,
}

#[derive(Serialize)]
struct ObjectAttrOut<'a> {
    name: &'a str,
    time: String,
    value: String,
}

#[derive(Serialize)]
struct EventOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    time: String,
    attributes: Vec<EventAttrOut<'a>>,
    relationships: Vec<RelOut<'a>>,
}

#[derive(Serialize)]
struct EventAttrOut<'a> {
    name: &'a str,
    value: String,
}

fn rels(r: &[(String, String)]) -> Vec<RelOut<'_>> {
    r.iter()
        .map(|(object_id, qualifier)| RelOut {
            object_id,
            qualifier,
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RelOut<'a> {
    object_id: &'a str,
    qualifier: &'a str,
}

fn declarations<'a>(
    items: impl Iterator<Item = (&'a str, Vec<(&'a str, &'static str)>)>,
) -> Vec<TypeDecl> {
    let mut types: BTreeMap<&str, BTreeMap<&str, &'static str>> = BTreeMap::new();
    for (name, attributes) in items {
        let entry = types.entry(name).or_default();
        for (attr, kind) in attributes {
            entry.entry(attr).or_insert(kind);
        }
    }
    types
        .into_iter()
        .map(|(name, attrs)| TypeDecl {
            name: name.to_owned(),
            attributes: attrs
                .into_iter()
                .map(|(name, kind)| AttrDecl {
                    name: name.to_owned(),
                    kind,
                })
                .collect(),
        })
        .collect()
}

/// Writes `log` as OCEL 2.0 JSON to `out`.
pub fn write_ocel2<W: Write>(log: &OcelLog, out: W) -> std::io::Result<()> {
    let object_types = declarations(log.objects.iter().map(|o| {
        (
            o.object_type.as_str(),
            o.attributes
                .iter()
                .map(|(n, _, v)| (n.as_str(), v.ocel_type()))
                .collect(),
        )
    }));
    let event_types = declarations(log.events.iter().map(|e| {
        (
            e.event_type.as_str(),
            e.attributes
                .iter()
                .map(|(n, v)| (n.as_str(), v.ocel_type()))
                .collect(),
        )
    }));
    let document = Document {
        object_types,
        event_types,
        objects: log
            .objects
            .iter()
            .map(|o| ObjectOut {
                id: &o.id,
                kind: &o.object_type,
                attributes: o
                    .attributes
                    .iter()
                    .map(|(name, time, value)| ObjectAttrOut {
                        name,
                        time: format_time(time),
                        value: value.to_text(),
                    })
                    .collect(),
                relationships: rels(&o.relationships),
            })
            .collect(),
        events: log
            .events
            .iter()
            .map(|e| EventOut {
                id: &e.id,
                kind: &e.event_type,
                time: format_time(&e.time),
                attributes: e
                    .attributes
                    .iter()
                    .map(|(name, value)| EventAttrOut {
                        name,
                        value: value.to_text(),
                    })
                    .collect(),
                relationships: rels(&e.relationships),
            })
            .collect(),
    };
    let mut out = out;
    serde_json::to_writer_pretty(&mut out, &document).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocel_declares_every_type_and_attribute_it_uses() {
        let t = DateTime::parse_from_rfc3339("2025-03-03T09:00:00+08:00").expect("valid time");
        let log = OcelLog {
            objects: vec![OcelObject {
                id: "case:1".into(),
                object_type: "case".into(),
                attributes: vec![("channel".into(), t, AttrValue::from("hotline"))],
                relationships: vec![("unit:room-1".into(), "led by".into())],
            }],
            events: vec![OcelEvent {
                id: "e1".into(),
                event_type: "CaseReported".into(),
                time: t,
                attributes: vec![("version".into(), AttrValue::Int(1))],
                relationships: vec![("case:1".into(), "case".into())],
            }],
        };
        let mut out = Vec::new();
        write_ocel2(&log, &mut out).expect("writes");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["objectTypes"][0]["name"], "case");
        assert_eq!(v["objectTypes"][0]["attributes"][0]["type"], "string");
        assert_eq!(v["eventTypes"][0]["attributes"][0]["type"], "integer");
        assert_eq!(v["events"][0]["relationships"][0]["objectId"], "case:1");
        assert_eq!(v["events"][0]["time"], "2025-03-03T09:00:00.000+08:00");
    }
}
