//! Working-day arithmetic of the calendar.

use caseflow_domain::Calendar;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn the_issue_day_does_not_count_and_limits_end_at_the_end_of_the_working_day() {
    let cal = Calendar::default();
    // Monday 2 March 2026, 09:00 CST: one working day -> Tuesday 17:30 CST = 09:30 UTC.
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 2, 1, 0), 1),
        utc(2026, 3, 3, 9, 30)
    );
    // Late on Monday evening local time (23:30 CST = 15:30 UTC) is still Monday.
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 2, 15, 30), 1),
        utc(2026, 3, 3, 9, 30)
    );
    // Just after midnight local time on Tuesday (16:30 UTC Monday) is already Tuesday.
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 2, 16, 30), 1),
        utc(2026, 3, 4, 9, 30)
    );
}

#[test]
fn weekends_are_skipped() {
    let cal = Calendar::default();
    // Friday 6 March -> 1 working day = Monday 9 March.
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 6, 2, 0), 1),
        utc(2026, 3, 9, 9, 30)
    );
    // A Saturday report counts from Monday.
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 7, 2, 0), 1),
        utc(2026, 3, 9, 9, 30)
    );
}

#[test]
fn holidays_are_off_and_make_up_days_are_on() {
    let cal = Calendar::default()
        .with_holiday(date(2026, 10, 1))
        .with_holiday(date(2026, 10, 2))
        .with_makeup_workday(date(2026, 10, 10));
    assert!(!cal.is_working_day(date(2026, 10, 1)));
    assert!(
        cal.is_working_day(date(2026, 10, 10)),
        "a Saturday make-up day works"
    );
    assert!(!cal.is_working_day(date(2026, 10, 11)), "a Sunday");
    // Wednesday 30 Sep: 1 working day skips Thu 1 and Fri 2 Oct and the weekend -> Mon 5 Oct.
    assert_eq!(
        cal.add_working_days(utc(2026, 9, 30, 2, 0), 1),
        utc(2026, 10, 5, 9, 30)
    );
    // Friday 9 Oct -> the make-up Saturday 10 Oct.
    assert_eq!(
        cal.add_working_days(utc(2026, 10, 9, 2, 0), 1),
        utc(2026, 10, 10, 9, 30)
    );
}

#[test]
fn zero_days_is_the_issue_time_and_due_times_are_always_later_otherwise() {
    let cal = Calendar::default();
    let t = utc(2026, 3, 2, 1, 0);
    assert_eq!(cal.add_working_days(t, 0), t);
    for days in 1..40 {
        assert!(cal.add_working_days(t, days) > t);
        assert!(cal.add_working_days(t, days + 1) > cal.add_working_days(t, days));
    }
}

#[test]
fn the_end_of_time_saturates_instead_of_overflowing() {
    let cal = Calendar::default();
    let late = DateTime::<Utc>::MAX_UTC - chrono::Duration::days(2);
    assert_eq!(cal.add_working_days(late, 10), DateTime::<Utc>::MAX_UTC);
}

#[test]
fn working_days_between_counts_in_both_directions() {
    let cal = Calendar::default();
    let mon = utc(2026, 3, 2, 1, 0);
    let next_mon = utc(2026, 3, 9, 1, 0);
    assert_eq!(cal.working_days_between(mon, next_mon), 5);
    assert_eq!(cal.working_days_between(next_mon, mon), -5);
    assert_eq!(cal.working_days_between(mon, mon), 0);
}

#[test]
fn another_offset_moves_the_local_day() {
    // UTC itself: Monday 23:00 UTC is Monday; one working day -> Tuesday 17:30 UTC.
    let cal = Calendar::with_offset_minutes(0);
    assert_eq!(
        cal.add_working_days(utc(2026, 3, 2, 23, 0), 1),
        utc(2026, 3, 3, 17, 30)
    );
}
