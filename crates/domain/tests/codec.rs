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
        let back = CaseEvent::from_json(e.event_type(), e.schema_version(), &bytes).unwrap();
        assert_eq!(&back, e);
        assert!(CaseEvent::EVENT_TYPES.contains(&e.event_type()));
    }
}

#[test]
fn event_type_names_are_stable() {
    assert_eq!(CaseEvent::EVENT_TYPES.len(), 23);
    assert_eq!(CaseEvent::EVENT_TYPES[0], "CaseReported");
    assert!(CaseEvent::EVENT_TYPES.contains(&"CaseUrged"));
    assert!(CaseEvent::EVENT_TYPES.contains(&"CaseReopened"));
    assert_eq!(Command::NAMES.len(), 23);
}

#[test]
fn decoding_reports_unknown_types_versions_and_bad_payloads() {
    assert_eq!(
        CaseEvent::from_json("CaseExploded", 1, b"{}"),
        Err(DecodeError::UnknownEventType {
            event_type: "CaseExploded".into()
        })
    );
    assert_eq!(
        CaseEvent::from_json("CaseClosed", 9, b"{}"),
        Err(DecodeError::UnsupportedSchemaVersion {
            event_type: "CaseClosed".into(),
            schema_version: 9
        })
    );
    assert!(matches!(
        CaseEvent::from_json("CaseClosed", 1, b"{\"case_id\": 3}"),
        Err(DecodeError::InvalidPayload { .. })
    ));
}

#[test]
fn commands_serialize_with_a_type_tag() {
    let c = accept();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"type\":\"AcceptCase\""), "{json}");
    let back: Command = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}
