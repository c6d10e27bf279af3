//! Working time in virtual hours.
//!
//! Virtual time is a number of hours since the start of the first simulated day at local
//! midnight. Staff work only inside working hours on working days; [`WorkCalendar`] converts
//! between "hours of work" and virtual time, and adds working days for deadlines.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

use crate::scenario::CalendarSection;

/// Parses `mon`..`sun` (also full English names).
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Some(Weekday::Mon),
        "tue" | "tuesday" => Some(Weekday::Tue),
        "wed" | "wednesday" => Some(Weekday::Wed),
        "thu" | "thursday" => Some(Weekday::Thu),
        "fri" | "friday" => Some(Weekday::Fri),
        "sat" | "saturday" => Some(Weekday::Sat),
        "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

/// Working days and hours, precomputed per day index.
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    start: NaiveDate,
    offset_hours: i32,
    always_open: bool,
    open: f64,
    close: f64,
    weekend: Vec<Weekday>,
    holidays: Vec<NaiveDate>,
    makeup: Vec<NaiveDate>,
    working: Vec<bool>,
}

impl WorkCalendar {
    /// Builds the calendar for a validated scenario section, precomputing `days` days.
    pub fn new(section: &CalendarSection, start: NaiveDate, days: u32) -> Self {
        let mut cal = WorkCalendar {
            start,
            offset_hours: section.utc_offset_hours,
            always_open: section.always_open,
            open: if section.always_open {
                0.0
            } else {
                section.work_start_hour
            },
            close: if section.always_open {
                24.0
            } else {
                section.work_end_hour
            },
            weekend: section
                .weekend
                .iter()
                .filter_map(|d| parse_weekday(d))
                .collect(),
            holidays: section.holidays.clone(),
            makeup: section.makeup_days.clone(),
            working: Vec::new(),
        };
        cal.working = (0..days as i64 + 1)
            .map(|d| cal.compute_working(d))
            .collect();
        cal
    }

    fn compute_working(&self, day: i64) -> bool {
        if self.always_open {
            return true;
        }
        let date = self.start + Duration::days(day);
        if self.makeup.contains(&date) {
            return true;
        }
        if self.holidays.contains(&date) {
            return false;
        }
        !self.weekend.contains(&date.weekday())
    }

    /// Whether day `day` (0 = start) is a working day.
    pub fn is_working_day(&self, day: i64) -> bool {
        if day >= 0 {
            if let Some(w) = self.working.get(day as usize) {
                return *w;
            }
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
        // A calendar that validated has a working day within a few weeks; the bound keeps a
        // pathological calendar from looping forever.
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

    /// Due time `days` working days after `t` (same time of day, or the end of the working
    /// day when `t` lies outside working hours).
    pub fn add_working_days(&self, t: f64, days: u32) -> f64 {
        if self.always_open {
            return t + 24.0 * days as f64;
        }
        let mut day = (t / 24.0).floor() as i64;
        let tod = (t - day as f64 * 24.0).clamp(self.open, self.close);
        let mut left = days;
        let mut guard = 0;
        while left > 0 && guard < 100_000 {
            day += 1;
            guard += 1;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day as f64 * 24.0 + tod
    }

    /// The UTC instant of virtual time `t`, rounded to whole milliseconds so that it is
    /// representable the same way in every store.
    pub fn to_utc(&self, t: f64) -> DateTime<Utc> {
        let local_midnight = self.start.and_hms_opt(0, 0, 0).unwrap_or_default();
        let base =
            Utc.from_utc_datetime(&local_midnight) - Duration::hours(self.offset_hours as i64);
        base + Duration::milliseconds((t * 3_600_000.0).round() as i64)
    }

    /// The local date of virtual time `t`.
    pub fn date_of(&self, t: f64) -> NaiveDate {
        self.start + Duration::days((t / 24.0).floor() as i64)
    }

    /// Monday = 0 … Sunday = 6 of day index `day`.
    pub fn weekday_index(&self, day: i64) -> usize {
        (self.start + Duration::days(day))
            .weekday()
            .num_days_from_monday() as usize
    }

    /// Month 0..12 of day index `day`.
    pub fn month_index(&self, day: i64) -> usize {
        (self.start + Duration::days(day)).month0() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> WorkCalendar {
        // 2025-01-06 is a Monday.
        let s = CalendarSection {
            holidays: vec![NaiveDate::from_ymd_opt(2025, 1, 8).unwrap()],
            makeup_days: vec![NaiveDate::from_ymd_opt(2025, 1, 11).unwrap()],
            ..Default::default()
        };
        WorkCalendar::new(&s, NaiveDate::from_ymd_opt(2025, 1, 6).unwrap(), 30)
    }

    #[test]
    fn work_outside_hours_starts_at_the_next_opening() {
        let c = cal();
        assert_eq!(c.next_open(3.0), 8.5);
        assert_eq!(c.next_open(18.0), 24.0 + 8.5);
        // Wednesday is a holiday: Tuesday evening rolls to Thursday morning.
        assert_eq!(c.next_open(24.0 + 18.0), 3.0 * 24.0 + 8.5);
    }

    #[test]
    fn work_spans_nights_weekends_and_makeup_days() {
        let c = cal();
        // Monday 16:30 + 2 h of work = Tuesday 09:30.
        assert!((c.add_work(16.5, 2.0) - (24.0 + 9.5)).abs() < 1e-6);
        // Friday 17:00 + 1 h: Saturday is a make-up day, so Saturday 09:00.
        assert!((c.add_work(4.0 * 24.0 + 17.0, 1.0) - (5.0 * 24.0 + 9.0)).abs() < 1e-6);
        // Saturday 17:00 + 1 h: Sunday off, so Monday 09:00.
        assert!((c.add_work(5.0 * 24.0 + 17.0, 1.0) - (7.0 * 24.0 + 9.0)).abs() < 1e-6);
    }

    #[test]
    fn working_days_skip_holidays() {
        let c = cal();
        // Monday 10:00 + 2 working days: Tuesday, (Wednesday holiday), Thursday.
        assert!((c.add_working_days(10.0, 2) - (3.0 * 24.0 + 10.0)).abs() < 1e-6);
    }

    #[test]
    fn utc_conversion_uses_the_offset() {
        let c = cal();
        assert_eq!(c.to_utc(8.0).to_rfc3339(), "2025-01-06T00:00:00+00:00");
    }
}
