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

/// The definition, a day at a time: the `days`-th working day after the local date of `t`.
fn add_working_days_stepping(cal: &Calendar, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    if days == 0 {
        return t;
    }
    let mut date = cal.local_date(t);
    let mut left = days;
    while left > 0 {
        date = date.succ_opt().unwrap();
        if cal.is_working_day(date) {
            left -= 1;
        }
    }
    let due = cal.end_of_day(date);
    if due > t {
        due
    } else {
        t + chrono::Duration::seconds(1)
    }
}

/// The definition, a day at a time: working days in `(local date of from, local date of to]`.
fn working_days_between_stepping(cal: &Calendar, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let (a, b) = (cal.local_date(from), cal.local_date(to));
    let (mut d, hi, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
    let mut n = 0;
    while d < hi {
        d = d.succ_opt().unwrap();
        n += i64::from(cal.is_working_day(d));
    }
    n * sign
}

#[test]
fn a_long_holiday_with_make_up_weekends_around_it() {
    // The National Day week: 1–7 October 2026 off (Thursday to Wednesday), Sunday 27
    // September and Saturday 10 October worked instead.
    let mut cal = Calendar::default()
        .with_makeup_workday(date(2026, 9, 27))
        .with_makeup_workday(date(2026, 10, 10));
    for day in 1..=7 {
        cal = cal.with_holiday(date(2026, 10, day));
    }
    // Friday 25 September: Sunday 27 (make-up), Mon 28, Tue 29, Wed 30, then Thursday 8 Oct.
    let friday = utc(2026, 9, 25, 2, 0);
    assert_eq!(cal.add_working_days(friday, 1), utc(2026, 9, 27, 9, 30));
    assert_eq!(cal.add_working_days(friday, 4), utc(2026, 9, 30, 9, 30));
    assert_eq!(cal.add_working_days(friday, 5), utc(2026, 10, 8, 9, 30));
    assert_eq!(cal.add_working_days(friday, 7), utc(2026, 10, 10, 9, 30));
    assert_eq!(cal.working_days_between(friday, utc(2026, 10, 10, 2, 0)), 7);
    // A holiday that is also a make-up day works.
    let both = Calendar::default()
        .with_holiday(date(2026, 3, 3))
        .with_makeup_workday(date(2026, 3, 3));
    assert_eq!(
        both.add_working_days(utc(2026, 3, 2, 1, 0), 1),
        utc(2026, 3, 3, 9, 30)
    );
}

mod against_stepping {
    use super::*;
    use proptest::prelude::*;

    /// A calendar with holidays and make-up days anywhere in a 200-day window (weekdays and
    /// weekends both, some dates in both sets), at a random offset.
    fn calendar() -> impl Strategy<Value = Calendar> {
        (
            proptest::collection::vec(0i64..200, 0..40),
            proptest::collection::vec(0i64..200, 0..12),
            -14 * 60..=14 * 60i32,
        )
            .prop_map(|(holidays, makeups, offset)| {
                let base = date(2026, 1, 1);
                let day = |n: i64| base + chrono::Duration::days(n);
                let mut cal = Calendar::with_offset_minutes(offset);
                for n in holidays {
                    cal = cal.with_holiday(day(n));
                }
                for n in makeups {
                    cal = cal.with_makeup_workday(day(n));
                }
                cal
            })
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // From a little before the window to its end, any second.
        (-20i64 * 86_400..200 * 86_400)
            .prop_map(|s| utc(2026, 1, 1, 0, 0) + chrono::Duration::seconds(s))
    }

    proptest! {
        #[test]
        fn add_working_days_agrees_with_stepping(cal in calendar(), t in instant(), days in 0u32..120) {
            prop_assert_eq!(cal.add_working_days(t, days), add_working_days_stepping(&cal, t, days));
        }

        #[test]
        fn working_days_between_agrees_with_stepping(cal in calendar(), from in instant(), to in instant()) {
            prop_assert_eq!(
                cal.working_days_between(from, to),
                working_days_between_stepping(&cal, from, to)
            );
        }
    }
}
