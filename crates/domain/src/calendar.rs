//! Working-day arithmetic. Time limits are counted in working days of the district's calendar:
//! weekends and public holidays are off, make-up working days (调休上班) are on.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

/// The district's working calendar. Pure data: it never reads the clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// The district's offset from UTC in minutes (China Standard Time: +480).
    pub utc_offset_minutes: i32,
    /// Local time at which a working day ends; a limit falls due at this time.
    pub day_end: NaiveTime,
    /// Public holidays (days off even if they fall on a weekday).
    pub holidays: BTreeSet<NaiveDate>,
    /// Make-up working days (working even if they fall on a weekend).
    pub makeup_workdays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    /// China Standard Time, working day ending 17:30, no holidays.
    fn default() -> Self {
        Calendar {
            utc_offset_minutes: 8 * 60,
            day_end: NaiveTime::from_hms_opt(17, 30, 0).unwrap_or(NaiveTime::MIN),
            holidays: BTreeSet::new(),
            makeup_workdays: BTreeSet::new(),
        }
    }
}

impl Calendar {
    /// A calendar with only weekends off, at the given UTC offset.
    pub fn with_offset_minutes(utc_offset_minutes: i32) -> Self {
        Calendar {
            utc_offset_minutes,
            ..Calendar::default()
        }
    }

    /// Adds a public holiday.
    pub fn with_holiday(mut self, date: NaiveDate) -> Self {
        self.holidays.insert(date);
        self
    }

    /// Adds a make-up working day.
    pub fn with_makeup_workday(mut self, date: NaiveDate) -> Self {
        self.makeup_workdays.insert(date);
        self
    }

    fn offset(&self) -> Duration {
        Duration::minutes(i64::from(self.utc_offset_minutes))
    }

    /// The district's offset from UTC. The loader keeps it within ±14 h; an offset beyond
    /// what chrono represents (a hand-built calendar) reads as UTC rather than panicking.
    pub fn utc_offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_minutes.saturating_mul(60)).unwrap_or(Utc.fix())
    }

    /// An instant in district time (with its offset): the one conversion every output of
    /// the workspace uses, so a to-do list, a report and an export agree on the hour.
    pub fn to_local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.utc_offset())
    }

    /// The local calendar date of an instant.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.checked_add_signed(self.offset())
            .unwrap_or(t)
            .date_naive()
    }

    /// Whether a local date is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.makeup_workdays.contains(&date) {
            return true;
        }
        if self.holidays.contains(&date) {
            return false;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// The instant a local working day ends.
    pub fn end_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        let local = date.and_time(self.day_end);
        let utc = local - self.offset();
        Utc.from_utc_datetime(&utc)
    }

    /// The due time of a limit of `days` working days issued at `t`: the end of the `days`-th
    /// working day after the local date of `t` (the issue day itself does not count). The result
    /// is always later than `t` for `days >= 1`; `days == 0` returns `t`. Saturates at the
    /// latest representable time instead of overflowing.
    pub fn add_working_days(&self, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        if days == 0 {
            return t;
        }
        let mut date = self.local_date(t);
        let mut left = days;
        while left > 0 {
            match date.succ_opt() {
                Some(next) => date = next,
                None => return DateTime::<Utc>::MAX_UTC,
            }
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        let due = self.end_of_day(date);
        // The end of a later day is always after `t` unless the offset is absurd; keep the
        // promise regardless.
        if due > t {
            due
        } else {
            t + Duration::seconds(1)
        }
    }

    /// Working days strictly after the local date of `from` up to and including the local
    /// date of `to` (negative when `to` is earlier). Used to say "overdue by N working days".
    pub fn working_days_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let (a, b) = (self.local_date(from), self.local_date(to));
        let (lo, hi, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
        let mut n = 0i64;
        let mut d = lo;
        while d < hi {
            match d.succ_opt() {
                Some(next) => d = next,
                None => break,
            }
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n * sign
    }
}
