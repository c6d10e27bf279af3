//! The history generator itself: it must reach every stage and end, or the other tests
//! would prove little.

mod support;

use std::collections::BTreeSet;

use caseflow_domain::Stage;
use support::{HistoryGen, seeded};

#[test]
fn generated_histories_reach_every_stage_and_end() {
    let mut g = HistoryGen::new(1);
    let decided = g.run(3000, seeded(7));
    assert_eq!(decided.len(), 3000);
    let stages: BTreeSet<Stage> = g.states.values().map(|s| s.stage()).collect();
    for stage in [
        Stage::Intake,
        Stage::Classification,
        Stage::Handling,
        Stage::Rectification,
        Stage::Review,
        Stage::Closed,
        Stage::Declined,
        Stage::Transferred,
    ] {
        assert!(
            stages.contains(&stage),
            "no case ended at {stage}: {stages:?}"
        );
    }
    let types: BTreeSet<&str> = decided
        .iter()
        .flat_map(|d| d.events.iter().map(|e| e.event_type()))
        .collect();
    for t in [
        "CaseReopened",
        "CaseUrged",
        "FollowUpVisitRecorded",
        "SatisfactionRecorded",
        "VerificationTeamFormed",
        "JointConsultationRecorded",
        "DisciplineRecorded",
        "RectificationPlanSubmitted",
        "ConsultationAnswered",
    ] {
        assert!(
            types.contains(t),
            "the generator never produced {t}: {types:?}"
        );
    }
}
