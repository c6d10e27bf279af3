//! Working-day arithmetic. Time limits are counted in working days of the district's calendar:
//! weekends and public holidays are off, make-up working days (调休上班) are on.

use std::collections::BTreeSet;
use std::ops::Bound;

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
        let Some(date) = self.nth_working_day_after(self.local_date(t), days) else {
            return DateTime::<Utc>::MAX_UTC;
        };
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
        let weekdays = weekdays_through(day_number(hi)) - weekdays_through(day_number(lo));
        let exceptions = self.exceptions_in(lo, hi);
        let gained = exceptions
            .clone()
            .filter(|d| self.is_working_day(*d))
            .count() as i64;
        let lost = exceptions.count() as i64 - gained;
        (weekdays + gained - lost) * sign
    }

    /// The `n`-th working day after `date` (`n >= 1`), or `None` past the last date chrono
    /// represents. Weekdays are counted arithmetically; only the exceptions on the way (a
    /// weekday holiday, a weekend make-up day) are visited, each once, so a limit of any
    /// length costs the same as a day's (stepping day by day was most of `decide`).
    fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut from = date;
        let mut left = i64::from(n);
        loop {
            // The `left`-th weekday after `from`: the answer if no exception comes first.
            let weekday = nth_weekday(weekdays_through(day_number(from)) + left);
            let last = date_of(weekday).unwrap_or(NaiveDate::MAX);
            let Some(exception) = self.exceptions_in(from, last).next() else {
                return date_of(weekday);
            };
            // Weekdays strictly between `from` and the exception (fewer than `left`, since
            // the exception is not after the `left`-th weekday), then the exception itself.
            let before = day_number(exception) - 1;
            left -= weekdays_through(before) - weekdays_through(day_number(from));
            if self.is_working_day(exception) {
                left -= 1;
                if left == 0 {
                    return Some(exception);
                }
            }
            from = exception;
        }
    }

    /// The days in `(after, through]` whose working status is not their weekday's: weekday
    /// holidays that are not make-up days, and weekend make-up days; in date order.
    fn exceptions_in(
        &self,
        after: NaiveDate,
        through: NaiveDate,
    ) -> impl Iterator<Item = NaiveDate> + Clone + '_ {
        let range = (Bound::Excluded(after), Bound::Included(through));
        let (holidays, makeups) = if after < through {
            (
                self.holidays.range(range),
                self.makeup_workdays.range(range),
            )
        } else {
            // An empty range (BTreeSet::range refuses an inverted one).
            (
                self.holidays.range(..NaiveDate::MIN),
                self.makeup_workdays.range(..NaiveDate::MIN),
            )
        };
        let mut off = holidays
            .copied()
            .filter(move |d| is_weekday(*d) && !self.makeup_workdays.contains(d))
            .peekable();
        let mut on = makeups.copied().filter(|d| !is_weekday(*d)).peekable();
        std::iter::from_fn(move || match (off.peek().copied(), on.peek().copied()) {
            (Some(h), Some(m)) if h < m => off.next(),
            (Some(_), Some(_)) | (None, Some(_)) => on.next(),
            (Some(_), None) => off.next(),
            (None, None) => None,
        })
    }
}

/// Days since Monday 1 January of the year 1 (proleptic Gregorian), so that a day number
/// divisible by 7 is a Monday.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 1
}

/// The date of a day number, if chrono represents it.
fn date_of(day: i64) -> Option<NaiveDate> {
    i32::try_from(day + 1)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// Mondays to Fridays from day 0 through `day` (a running count: differences of it count
/// the weekdays of a range, for negative day numbers too).
fn weekdays_through(day: i64) -> i64 {
    5 * day.div_euclid(7) + (day.rem_euclid(7) + 1).min(5)
}

/// The day number of the weekday at which [`weekdays_through`] reaches `count`.
fn nth_weekday(count: i64) -> i64 {
    7 * (count - 1).div_euclid(5) + (count - 1).rem_euclid(5)
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_divisible_by_seven_are_mondays() {
        let mut date = NaiveDate::from_ymd_opt(-400, 1, 1).unwrap();
        while date < NaiveDate::from_ymd_opt(2401, 1, 1).unwrap() {
            let expected = i64::from(date.weekday().num_days_from_monday());
            assert_eq!(day_number(date).rem_euclid(7), expected, "{date}");
            assert_eq!(date_of(day_number(date)), Some(date));
            date += Duration::days(97);
        }
    }

    #[test]
    fn the_weekday_count_steps_on_weekdays_only() {
        for day in -30..30 {
            let step = weekdays_through(day) - weekdays_through(day - 1);
            assert_eq!(step, i64::from(day.rem_euclid(7) < 5), "day {day}");
            if step == 1 {
                assert_eq!(nth_weekday(weekdays_through(day)), day, "day {day}");
            }
        }
    }
}
