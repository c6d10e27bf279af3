//! Loading a district: the sample district's shape, and one small broken file per validation
//! error.

use caseflow_domain::*;

fn err(text: &str) -> OrgError {
    match Organisation::from_toml_str(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// A minimal valid district: one zone, one room, one team, two localities, one village.
const MINIMAL: &str = r#"
[[departments]]
id = "dept-finance"
name = "区财政局"

[[rooms]]
id = "room-1"
name = "第一室"

[[teams]]
id = "team-1"
name = "第一组"
stationed_in = ["dept-finance"]

[[localities]]
id = "loc-a"
name = "A街道"

[[localities]]
id = "loc-b"
name = "B街道"

[[villages]]
id = "vil-a1"
name = "A1社区"
locality = "loc-a"

[[zones]]
id = "zone-1"
name = "一区"
rooms = ["room-1"]
teams = ["team-1"]
localities = ["loc-a", "loc-b"]
"#;

#[test]
fn the_minimal_district_loads() {
    let org = Organisation::from_toml_str(MINIMAL).unwrap();
    assert_eq!(org.level_of(&UnitId::new("vil-a1")), Some(Level::Village));
    assert_eq!(
        org.locality_of(&UnitId::new("vil-a1")),
        Some(&UnitId::new("loc-a"))
    );
    assert_eq!(
        org.zone_of(&UnitId::new("vil-a1")),
        Some(&ZoneId::new("zone-1"))
    );
    assert_eq!(
        org.team_stationed_in(&DepartmentId::new("dept-finance")),
        Some(&UnitId::new("team-1"))
    );
}

#[test]
fn the_sample_district_has_the_shape_of_the_source() {
    let d = DistrictConfig::sample().unwrap();
    let org = &d.org;
    assert_eq!(org.units_at(Level::Room).count(), 5);
    assert_eq!(org.units_at(Level::Team).count(), 5);
    assert_eq!(org.units_at(Level::Locality).count(), 10);
    assert_eq!(org.units_at(Level::Village).count(), 103);
    assert_eq!(org.zones().count(), 3);
    for l in org.units_at(Level::Locality) {
        assert!(
            org.villages_of(&l.id).count() > 0,
            "{} has no villages",
            l.id
        );
    }
    // The real names of the source.
    let chaoyang = org.unit(&UnitId::new("loc-chaoyang")).unwrap();
    assert!(chaoyang.name.starts_with("朝阳街道") && !chaoyang.sample_name);
    let dongyuan = org.unit(&UnitId::new("vil-dongyuan")).unwrap();
    assert_eq!(dongyuan.name, "东苑社区");
    assert_eq!(dongyuan.locality, Some(chaoyang.id.clone()));
    assert_eq!(org.estates_of(&dongyuan.id), ["花园小区".to_owned()]);
    let wenhuagong = org.unit(&UnitId::new("vil-wenhuagong")).unwrap();
    assert_eq!(wenhuagong.name, "文化宫社区");
    assert_eq!(wenhuagong.locality, Some(UnitId::new("loc-zhongshan")));
    for dep in [
        "dept-finance",
        "dept-audit",
        "dept-agriculture",
        "dept-education",
        "dept-civil-affairs",
        "dept-hrss",
        "dept-urban-management",
    ] {
        assert!(org.department(&DepartmentId::new(dep)).is_some(), "{dep}");
    }
    assert_eq!(d.policies, Policies::default());
    assert!(d.calendar.holidays.len() > 20);
    assert_eq!(d.calendar.utc_offset_minutes, 480);
}

#[test]
fn a_file_that_is_not_toml_is_a_parse_error() {
    assert!(matches!(err("[[rooms]\nid ="), OrgError::Parse { .. }));
    // An unknown field is a parse error naming the field, not a silent typo.
    let e = err(&MINIMAL.replace("stationed_in", "stationed_at"));
    assert!(
        matches!(&e, OrgError::Parse { message } if message.contains("stationed_at")),
        "{e}"
    );
}

#[test]
fn a_duplicate_id_is_refused() {
    let text = MINIMAL.replace("id = \"loc-b\"", "id = \"loc-a\"");
    assert_eq!(err(&text), OrgError::DuplicateId { id: "loc-a".into() });
}

#[test]
fn an_invalid_id_is_refused() {
    let text = MINIMAL.replace("id = \"room-1\"", "id = \"Room 1\"");
    assert_eq!(
        err(&text),
        OrgError::InvalidId {
            id: "Room 1".into()
        }
    );
}

#[test]
fn an_empty_name_is_refused() {
    let text = MINIMAL.replace("name = \"第一室\"", "name = \" \"");
    assert_eq!(
        err(&text),
        OrgError::EmptyName {
            id: "room-1".into()
        }
    );
}

#[test]
fn a_village_of_an_unknown_locality_is_refused() {
    let text = MINIMAL.replace("locality = \"loc-a\"", "locality = \"loc-z\"");
    assert_eq!(
        err(&text),
        OrgError::UnknownLocality {
            village: "vil-a1".into(),
            locality: "loc-z".into()
        }
    );
}

#[test]
fn a_team_stationed_in_an_unknown_department_is_refused() {
    let text = MINIMAL.replace(
        "stationed_in = [\"dept-finance\"]",
        "stationed_in = [\"dept-x\"]",
    );
    assert_eq!(
        err(&text),
        OrgError::UnknownDepartment {
            team: "team-1".into(),
            department: "dept-x".into()
        }
    );
}

#[test]
fn two_teams_in_one_department_are_refused() {
    let text = format!(
        "{MINIMAL}\n[[teams]]\nid = \"team-2\"\nname = \"第二组\"\nstationed_in = [\"dept-finance\"]\n"
    );
    assert_eq!(
        err(&text),
        OrgError::DepartmentStationedTwice {
            department: "dept-finance".into(),
            first: "team-1".into(),
            second: "team-2".into()
        }
    );
}

#[test]
fn a_zone_listing_an_unknown_unit_is_refused() {
    let text = MINIMAL.replace("rooms = [\"room-1\"]", "rooms = [\"room-1\", \"room-9\"]");
    assert_eq!(
        err(&text),
        OrgError::UnknownZoneMember {
            zone: "zone-1".into(),
            unit: "room-9".into()
        }
    );
}

#[test]
fn a_zone_listing_a_unit_under_the_wrong_level_is_refused() {
    let text = MINIMAL.replace(
        "localities = [\"loc-a\", \"loc-b\"]",
        "localities = [\"loc-a\", \"loc-b\", \"vil-a1\"]",
    );
    assert_eq!(
        err(&text),
        OrgError::ZoneMemberWrongLevel {
            zone: "zone-1".into(),
            unit: "vil-a1".into(),
            listed_as: Level::Locality,
            actual: Level::Village
        }
    );
}

#[test]
fn a_unit_in_no_zone_is_refused() {
    let text = MINIMAL.replace("teams = [\"team-1\"]", "teams = []");
    assert_eq!(
        err(&text),
        OrgError::UnitInNoZone {
            unit: "team-1".into()
        }
    );
}

#[test]
fn a_unit_in_two_zones_is_refused() {
    let text = format!(
        "{MINIMAL}\n[[rooms]]\nid = \"room-2\"\nname = \"第二室\"\n\n[[localities]]\nid = \"loc-c\"\nname = \"C镇\"\n\n[[zones]]\nid = \"zone-2\"\nname = \"二区\"\nrooms = [\"room-2\"]\nlocalities = [\"loc-c\", \"loc-b\"]\n"
    );
    assert_eq!(
        err(&text),
        OrgError::UnitInSeveralZones {
            unit: "loc-b".into(),
            first: "zone-1".into(),
            second: "zone-2".into()
        }
    );
}

#[test]
fn a_zone_with_too_few_localities_for_cross_inspection_is_refused() {
    let text = MINIMAL.replace(
        "localities = [\"loc-a\", \"loc-b\"]",
        "localities = [\"loc-a\"]",
    );
    assert_eq!(
        err(&text),
        OrgError::ZoneTooFewLocalities {
            zone: "zone-1".into(),
            count: 1,
            min: 2
        }
    );
}

#[test]
fn a_zone_without_a_room_is_refused() {
    let text = MINIMAL.replace("rooms = [\"room-1\"]", "rooms = []");
    assert_eq!(
        err(&text),
        OrgError::ZoneWithoutRoom {
            zone: "zone-1".into()
        }
    );
}

#[test]
fn a_broken_calendar_is_refused() {
    let e = DistrictConfig::from_toml_str(&format!(
        "{MINIMAL}\n[calendar]\nholidays = [\"2026-10-01\"]\nmakeup_workdays = [\"2026-10-01\"]\n"
    ))
    .unwrap_err();
    assert!(matches!(e, OrgError::InvalidCalendar { .. }), "{e}");
    let e = DistrictConfig::from_toml_str(&format!(
        "{MINIMAL}\n[calendar]\nholidays = [\"1 October\"]\n"
    ))
    .unwrap_err();
    assert!(matches!(e, OrgError::InvalidCalendar { .. }), "{e}");
    let e = DistrictConfig::from_toml_str(&format!("{MINIMAL}\n[calendar]\nday_end = \"25:00\"\n"))
        .unwrap_err();
    assert!(matches!(e, OrgError::InvalidCalendar { .. }), "{e}");
    let e = DistrictConfig::from_toml_str(&format!(
        "{MINIMAL}\n[calendar]\nutc_offset_minutes = 5000\n"
    ))
    .unwrap_err();
    assert!(matches!(e, OrgError::InvalidCalendar { .. }), "{e}");
}

#[test]
fn a_zero_time_limit_is_refused() {
    let e = DistrictConfig::from_toml_str(&format!("{MINIMAL}\n[time_limits]\nreview_days = 0\n"))
        .unwrap_err();
    assert_eq!(
        e,
        OrgError::InvalidTimeLimit {
            name: "review_days".into()
        }
    );
}

#[test]
fn policies_load_from_the_file() {
    let d = DistrictConfig::from_toml_str(&format!(
        "{MINIMAL}\n[policies]\ncross_inspection = \"all_clues\"\n[time_limits]\nreview_days = 4\n"
    ))
    .unwrap();
    assert_eq!(d.policies.cross_inspection, CrossInspectionScope::AllClues);
    assert_eq!(d.policies.limits.review_days, 4);
    assert_eq!(d.policies.limits.intake_decision_days, 3);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn on_arbitrary_text(text in ".{0,400}") {
            let _ = DistrictConfig::from_toml_str(&text);
        }

        #[test]
        fn on_a_mangled_valid_file(cut in 0usize..800, insert in "[\\[\\]=\"a-z0-9\n -]{0,12}") {
            let mut s = MINIMAL.to_owned();
            let mut at = cut.min(s.len());
            while !s.is_char_boundary(at) { at -= 1; }
            s.insert_str(at, &insert);
            let _ = DistrictConfig::from_toml_str(&s);
        }
    }
}
