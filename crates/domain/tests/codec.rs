//! Event encoding: stable names, JSON round trips, and typed decoding errors.

mod support;

use caseflow_domain::*;
use support::*;

#[test]
fn every_event_of_a_full_lifecycle_round_trips_through_json() {
    let mut steps = clue_visit_scheduled();
    steps.push((leader("loc-zhongshan"), visit(VisitResult::Held)));
    steps.push((vil(), satisfied(Satisfaction::Satisfied)));
    steps.push((room1(), close_case(CaseOutcome::Rectified)));
    let g = Gwt::new().given(steps);
    for e in &g.events {
        let bytes = e.to_json();
        let back = CaseEvent::decode_current(e.event_type(), e.schema_version(), &bytes).unwrap();
        assert_eq!(&back, e);
        assert!(CaseEvent::EVENT_TYPES.contains(&e.event_type()));
    }
}

/// Every stored event type name and the schema version this release writes, written out by
/// hand: stored names are a file format. Changing a line here means old stores stop
/// decoding (a name) or need an upcaster (a version).
const STORED_NAMES: &[(&str, u32)] = &[
    // 2: the reporter may be sealed (reporter protection); v1 upcasts unchanged.
    ("CaseReported", 2),
    ("CaseAccepted", 1),
    ("CaseDeclined", 1),
    ("CaseMerged", 1),
    ("CaseTransferred", 1),
    ("CaseClassified", 1),
    ("JointConsultationRecorded", 1),
    ("CaseRouted", 1),
    ("DispositionChosen", 1),
    ("VerificationTeamFormed", 1),
    ("FindingsRecorded", 1),
    ("DisciplineRecorded", 1),
    ("ConsultationAnswered", 1),
    ("RectificationOrdered", 1),
    ("RectificationPlanSubmitted", 1),
    ("RectificationProgressReported", 1),
    ("RectificationCompleted", 1),
    ("CaseUrged", 1),
    ("FollowUpVisitScheduled", 1),
    ("FollowUpVisitRecorded", 1),
    ("SatisfactionRecorded", 1),
    ("CaseReopened", 1),
    ("CaseClosed", 1),
    ("ReporterContactRevealed", 1),
    ("ReporterContactErased", 1),
];

#[test]
fn every_stored_event_type_name_and_schema_version_is_pinned() {
    assert_eq!(CaseEvent::SCHEMA_VERSIONS, STORED_NAMES);
    let names: Vec<&str> = STORED_NAMES.iter().map(|(name, _)| *name).collect();
    assert_eq!(CaseEvent::EVENT_TYPES, names.as_slice());
    for (name, version) in STORED_NAMES {
        assert_eq!(
            CaseEvent::current_schema_version(name),
            Some(*version),
            "{name}"
        );
    }
    assert_eq!(CaseEvent::current_schema_version("caseReported"), None);
    assert_eq!(Command::NAMES.len(), 25);
}

#[test]
fn each_event_writes_its_pinned_name_and_version_and_the_same_serde_tag() {
    let mut steps = clue_visit_scheduled();
    steps.push((leader("loc-zhongshan"), visit(VisitResult::Held)));
    steps.push((vil(), satisfied(Satisfaction::Satisfied)));
    steps.push((room1(), close_case(CaseOutcome::Rectified)));
    let g = Gwt::new().given(steps);
    assert!(g.events.len() > 10);
    for e in &g.events {
        let pinned = STORED_NAMES
            .iter()
            .find(|(name, _)| *name == e.event_type())
            .unwrap_or_else(|| panic!("{} is not pinned", e.event_type()));
        assert_eq!(e.schema_version(), pinned.1);
        // The tagged form (`{"type": ...}`) carries the same stored name.
        let tagged = serde_json::to_value(e).unwrap();
        assert_eq!(tagged["type"], e.event_type());
    }
}

#[test]
fn decoding_reports_unknown_types_versions_and_bad_payloads() {
    assert_eq!(
        CaseEvent::decode_current("CaseExploded", 1, b"{}"),
        Err(DecodeError::UnknownEventType {
            event_type: "CaseExploded".into()
        })
    );
    assert_eq!(
        CaseEvent::decode_current("CaseClosed", 9, b"{}"),
        Err(DecodeError::UnsupportedSchemaVersion {
            event_type: "CaseClosed".into(),
            schema_version: 9
        })
    );
    assert!(matches!(
        CaseEvent::decode_current("CaseClosed", 1, b"{\"case_id\": 3}"),
        Err(DecodeError::InvalidPayload { .. })
    ));
    assert!(matches!(
        CaseEvent::decode_current_value("CaseClosed", 1, serde_json::json!({"case_id": 3})),
        Err(DecodeError::InvalidPayload { .. })
    ));
    assert_eq!(
        CaseEvent::decode_current_value("CaseExploded", 1, serde_json::json!({})),
        Err(DecodeError::UnknownEventType {
            event_type: "CaseExploded".into()
        })
    );
}

#[test]
fn commands_serialize_with_a_type_tag() {
    let c = accept();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"type\":\"AcceptCase\""), "{json}");
    let back: Command = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}
