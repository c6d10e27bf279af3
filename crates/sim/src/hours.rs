//! Working time in virtual hours, on the district's own calendar.
//!
//! Virtual time is a number of hours since local midnight of the first simulated day. Which
//! days are working days is the domain's `Calendar` (weekends, public holidays, make-up
//! working days); this module adds only what the domain has no notion of: the hours of the
//! day staff work (from `work_start_hour` to the calendar's `day_end`, or around the clock),
//! and the conversion between virtual hours and the UTC instants commands carry.

use caseflow::domain::Calendar;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

use crate::scenario::{CalendarSection, DEFAULT_WORK_START_HOUR};

/// Working days and hours, precomputed per day index.
#[derive(Debug, Clone)]
pub struct WorkingTime {
    calendar: Calendar,
    start: NaiveDate,
    base: DateTime<Utc>,
    always_open: bool,
    open: f64,
    close: f64,
    working: Vec<bool>,
}

impl WorkingTime {
    /// Working time on `calendar` from local midnight of `start`, with the scenario's working
    /// hours, precomputing `days` days (later days are computed on demand).
    pub fn new(
        calendar: &Calendar,
        section: &CalendarSection,
        start: NaiveDate,
        days: u32,
    ) -> Self {
        let day_end = calendar.day_end;
        let close = f64::from(day_end.num_seconds_from_midnight()) / 3600.0;
        let open = section.work_start_hour.unwrap_or(DEFAULT_WORK_START_HOUR);
        let local_midnight = start.and_hms_opt(0, 0, 0).unwrap_or_default();
        let base = Utc.from_utc_datetime(&local_midnight)
            - Duration::minutes(i64::from(calendar.utc_offset_minutes));
        let mut wt = WorkingTime {
            calendar: calendar.clone(),
            start,
            base,
            always_open: section.always_open,
            open: if section.always_open { 0.0 } else { open },
            close: if section.always_open {
                24.0
            } else {
                close.max(open)
            },
            working: Vec::new(),
        };
        wt.working = (0..=i64::from(days))
            .map(|d| wt.compute_working(d))
            .collect();
        wt
    }

    fn compute_working(&self, day: i64) -> bool {
        self.always_open || self.calendar.is_working_day(self.date_of_day(day))
    }

    /// The district calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The local date of day index `day` (0 = the first simulated day).
    pub fn date_of_day(&self, day: i64) -> NaiveDate {
        self.start
            .checked_add_signed(Duration::days(day))
            .unwrap_or(self.start)
    }

    /// Whether staff work on day `day` (0 = start): the calendar's working days, or every day
    /// when the scenario's staff are always on duty.
    pub fn is_working_day(&self, day: i64) -> bool {
        if let Some(w) = usize::try_from(day).ok().and_then(|d| self.working.get(d)) {
            return *w;
        }
        self.compute_working(day)
    }

    /// Length of a working day in hours.
    pub fn hours_per_day(&self) -> f64 {
        self.close - self.open
    }

    /// The earliest instant `>= t` inside working time.
    pub fn next_open(&self, t: f64) -> f64 {
        if self.always_open {
            return t;
        }
        let first = (t / 24.0).floor() as i64;
        let mut tod = t - first as f64 * 24.0;
        // A valid calendar has a working day within weeks; the bound keeps a calendar made
        // only of holidays from looping forever.
        for day in first..first + 3700 {
            if self.is_working_day(day) && tod < self.close {
                return day as f64 * 24.0 + tod.max(self.open);
            }
            tod = 0.0;
        }
        t
    }

    /// The instant at which `work` hours of working time, started at `t`, are done.
    pub fn add_work(&self, t: f64, work: f64) -> f64 {
        if self.always_open {
            return t + work;
        }
        let mut now = self.next_open(t);
        let mut left = work;
        for _ in 0..1_000_000 {
            let day = (now / 24.0).floor();
            let end_today = day * 24.0 + self.close;
            let avail = end_today - now;
            if left <= avail {
                return now + left;
            }
            left -= avail;
            now = self.next_open(end_today + 1e-9);
        }
        now + left
    }

    /// Working hours between two virtual times (0 when `b <= a`).
    pub fn work_between(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        if self.always_open {
            return b - a;
        }
        let (first, last) = ((a / 24.0).floor() as i64, (b / 24.0).floor() as i64);
        (first..=last)
            .filter(|d| self.is_working_day(*d))
            .map(|d| {
                let day = d as f64 * 24.0;
                let from = a.max(day + self.open);
                let to = b.min(day + self.close);
                (to - from).max(0.0)
            })
            .sum()
    }

    /// The UTC instant of virtual time `t`, rounded to whole milliseconds so that it is
    /// representable the same way in every store.
    pub fn to_utc(&self, t: f64) -> DateTime<Utc> {
        let ms = (t * 3_600_000.0).round();
        let ms = if ms.is_finite() { ms as i64 } else { 0 };
        Duration::try_milliseconds(ms)
            .and_then(|d| self.base.checked_add_signed(d))
            .unwrap_or(self.base)
    }

    /// The virtual time of a UTC instant.
    pub fn hours_of(&self, at: DateTime<Utc>) -> f64 {
        (at - self.base).num_milliseconds() as f64 / 3_600_000.0
    }

    /// The local date of virtual time `t`.
    pub fn date_of(&self, t: f64) -> NaiveDate {
        self.date_of_day((t / 24.0).floor() as i64)
    }

    /// Monday = 0 … Sunday = 6 of day index `day`.
    pub fn weekday_index(&self, day: i64) -> usize {
        self.date_of_day(day).weekday().num_days_from_monday() as usize
    }

    /// Month 0..12 of day index `day`.
    pub fn month_index(&self, day: i64) -> usize {
        self.date_of_day(day).month0() as usize
    }

    /// Local time of `t` as `YYYY-MM-DD HH:MM` (for messages).
    pub fn local_label(&self, t: f64) -> String {
        let utc = self.to_utc(t);
        let local = utc + Duration::minutes(i64::from(self.calendar.utc_offset_minutes));
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt() -> WorkingTime {
        // 2025-01-06 is a Monday; Wednesday a holiday, Saturday a make-up working day.
        let cal = Calendar::default()
            .with_holiday(NaiveDate::from_ymd_opt(2025, 1, 8).unwrap())
            .with_makeup_workday(NaiveDate::from_ymd_opt(2025, 1, 11).unwrap());
        WorkingTime::new(
            &cal,
            &CalendarSection::default(),
            NaiveDate::from_ymd_opt(2025, 1, 6).unwrap(),
            30,
        )
    }

    #[test]
    fn work_outside_hours_starts_at_the_next_opening() {
        let c = wt();
        assert_eq!(c.next_open(3.0), 8.5);
        assert_eq!(c.next_open(18.0), 24.0 + 8.5);
        // Wednesday is a holiday: Tuesday evening rolls to Thursday morning.
        assert_eq!(c.next_open(24.0 + 18.0), 3.0 * 24.0 + 8.5);
    }

    #[test]
    fn work_spans_nights_weekends_and_makeup_days() {
        let c = wt();
        // Monday 16:30 + 2 h of work = Tuesday 09:30.
        assert!((c.add_work(16.5, 2.0) - (24.0 + 9.5)).abs() < 1e-6);
        // Friday 17:00 + 1 h: Saturday is a make-up day, so Saturday 09:00.
        assert!((c.add_work(4.0 * 24.0 + 17.0, 1.0) - (5.0 * 24.0 + 9.0)).abs() < 1e-6);
        // Saturday 17:00 + 1 h: Sunday off, so Monday 09:00.
        assert!((c.add_work(5.0 * 24.0 + 17.0, 1.0) - (7.0 * 24.0 + 9.0)).abs() < 1e-6);
    }

    #[test]
    fn working_hours_between_two_instants_skip_nights_and_holidays() {
        let c = wt();
        // Monday 16:30 to Thursday 09:30: 1 h Monday, 9 h Tuesday, Wednesday off, 1 h Thursday.
        assert!((c.work_between(16.5, 3.0 * 24.0 + 9.5) - 11.0).abs() < 1e-9);
        assert_eq!(c.work_between(5.0, 4.0), 0.0);
    }

    #[test]
    fn utc_conversion_uses_the_district_offset_and_round_trips() {
        let c = wt();
        assert_eq!(c.to_utc(8.0).to_rfc3339(), "2025-01-06T00:00:00+00:00");
        assert!((c.hours_of(c.to_utc(37.25)) - 37.25).abs() < 1e-9);
        assert_eq!(c.local_label(9.5), "2025-01-06 09:30");
    }
}
