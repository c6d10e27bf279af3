//! The events' timestamps in JSON, both ways, without chrono's general machinery.
//!
//! Every timestamp the domain makes has whole seconds and a four-digit year, so chrono writes
//! it in the one shape `YYYY-MM-DDTHH:MM:SSZ`. Writing that shape here, digit by digit, spares
//! the `Display`-based formatter chrono's `Serialize` goes through (about half of the cost of
//! encoding an event), and reading it here spares chrono's general parser (about a tenth of a
//! projection rebuild). Any other instant or string is handed to chrono exactly as before, so
//! the bytes written and what decodes (with the same errors) are unchanged: the log stays
//! byte-identical.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use serde::de::{Error, Visitor};
use serde::{Deserializer, Serialize, Serializer};

/// `#[serde(with = "fast_time::utc")]` for a `DateTime<Utc>` field.
pub(super) mod utc {
    use super::*;

    /// Writes the canonical shape when the instant has one, and chrono's text otherwise.
    pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        match write_canonical(at) {
            // The buffer holds ASCII digits and separators only.
            Some(text) => {
                s.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
            }
            None => at.serialize(s),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer.deserialize_str(UtcVisitor)
    }
}

/// `#[serde(serialize_with = "fast_time::utc_opt")]` for an `Option<DateTime<Utc>>` field
/// (decoded by serde's own `Option`, which keeps a missing field reading as `None`).
pub(super) fn utc_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    /// One instant, written as [`utc::serialize`] writes it.
    struct Canonical<'a>(&'a DateTime<Utc>);

    impl Serialize for Canonical<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            utc::serialize(self.0, s)
        }
    }

    match at {
        Some(at) => s.serialize_some(&Canonical(at)),
        None => s.serialize_none(),
    }
}

/// The bytes chrono's `Serialize` writes for an instant with whole seconds in the years
/// 0000–9999 (`YYYY-MM-DDTHH:MM:SSZ`: RFC 3339 in UTC, no fraction), or `None` for any other
/// instant (a fraction, a leap second, a year chrono writes with a sign).
pub(crate) fn write_canonical(at: &DateTime<Utc>) -> Option<[u8; 20]> {
    // A leap second is a nanosecond count of 1e9 or more, so it is not whole seconds either.
    if at.nanosecond() != 0 {
        return None;
    }
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let mut text = *b"0000-00-00T00:00:00Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], at.month());
    put_digits(&mut text[8..10], at.day());
    put_digits(&mut text[11..13], at.hour());
    put_digits(&mut text[14..16], at.minute());
    put_digits(&mut text[17..19], at.second());
    Some(text)
}

/// Writes `value` in decimal into `field`, right-aligned and zero-padded (`value` fits).
fn put_digits(field: &mut [u8], mut value: u32) {
    for digit in field.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

struct UtcVisitor;

impl Visitor<'_> for UtcVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        // chrono's wording, so type errors read as before.
        formatter.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<DateTime<Utc>, E> {
        if let Some(at) = canonical(value.as_bytes()) {
            return Ok(at);
        }
        value
            .parse::<DateTime<FixedOffset>>()
            .map(|at| at.with_timezone(&Utc))
            .map_err(E::custom)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a valid date and a time before 23:59:60 (a leap second
/// is left to chrono), or `None`.
pub(crate) fn canonical(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<u32> {
        b[from..from + len].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5, 2)?, num(8, 2)?)?;
    let time = date.and_hms_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?)?;
    Some(Utc.from_utc_datetime(&time))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_timestamps_decode_as_chrono_decodes_them() {
        for text in [
            "2026-03-02T01:02:04Z",
            "2024-02-29T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let chrono: DateTime<Utc> = text.parse::<DateTime<FixedOffset>>().unwrap().into();
            assert_eq!(canonical(text.as_bytes()), Some(chrono), "{text}");
        }
    }

    #[test]
    fn other_shapes_are_left_to_chrono() {
        for text in [
            "2026-02-30T01:02:04Z",
            "2026-03-02T23:59:60Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T01:02:04.5Z",
            "2026-03-02T01:02:04+00:00",
            "2026-03-02t01:02:04Z",
            "2026-03-02 01:02:04Z",
            "+2026-03-02T01:02:04Z",
            "2026-3-02T01:02:04Z",
        ] {
            assert_eq!(canonical(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn decoding_matches_chrono_for_every_shape() {
        #[derive(serde::Deserialize)]
        struct Fast {
            #[serde(deserialize_with = "utc::deserialize")]
            at: DateTime<Utc>,
        }
        #[derive(serde::Deserialize)]
        struct Chrono {
            at: DateTime<Utc>,
        }
        for text in [
            r#"{"at":"2026-03-02T01:02:04Z"}"#,
            r#"{"at":"2026-03-02T01:02:04.123456789Z"}"#,
            r#"{"at":"2026-03-02T03:02:04+02:00"}"#,
            r#"{"at":"2026-06-30T23:59:60Z"}"#,
            r#"{"at":"2026-02-30T01:02:04Z"}"#,
            r#"{"at":"yesterday"}"#,
            r#"{"at":5}"#,
            r#"{"at":null}"#,
        ] {
            let fast = serde_json::from_str::<Fast>(text)
                .map(|f| f.at)
                .map_err(|e| e.to_string());
            let chrono = serde_json::from_str::<Chrono>(text)
                .map(|c| c.at)
                .map_err(|e| e.to_string());
            assert_eq!(fast, chrono, "{text}");
        }
    }

    /// The field written both ways: by this module and by chrono's own `Serialize`.
    #[derive(serde::Serialize)]
    struct Written {
        #[serde(serialize_with = "utc::serialize")]
        fast: DateTime<Utc>,
        chrono: DateTime<Utc>,
        #[serde(serialize_with = "utc_opt")]
        fast_opt: Option<DateTime<Utc>>,
        chrono_opt: Option<DateTime<Utc>>,
    }

    /// The JSON texts this module and chrono write for `at` (plain and optional).
    fn both_ways(at: DateTime<Utc>) -> [(String, String); 2] {
        let written = Written {
            fast: at,
            chrono: at,
            fast_opt: Some(at),
            chrono_opt: Some(at),
        };
        let value = serde_json::to_value(&written).unwrap();
        [
            (value["fast"].to_string(), value["chrono"].to_string()),
            (
                value["fast_opt"].to_string(),
                value["chrono_opt"].to_string(),
            ),
        ]
    }

    #[test]
    fn instants_without_the_canonical_shape_are_written_by_chrono() {
        let base = Utc.with_ymd_and_hms(2026, 6, 30, 23, 59, 59).unwrap();
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_000_000_000))
            .map(|t| Utc.from_utc_datetime(&t))
            .unwrap();
        for at in [
            base + Duration::milliseconds(5),
            base + Duration::nanoseconds(1),
            leap,
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap(),
        ] {
            assert_eq!(write_canonical(&at), None, "{at:?}");
            for (fast, chrono) in both_ways(at) {
                assert_eq!(fast, chrono, "{at:?}");
            }
        }
        let none = serde_json::to_value(Written {
            fast: base,
            chrono: base,
            fast_opt: None,
            chrono_opt: None,
        })
        .unwrap();
        assert_eq!(none["fast_opt"], none["chrono_opt"]);
    }

    #[test]
    fn the_ends_of_the_four_digit_years_are_written_as_chrono_writes_them() {
        for at in [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap(),
        ] {
            assert!(write_canonical(&at).is_some(), "{at:?}");
            for (fast, chrono) in both_ways(at) {
                assert_eq!(fast, chrono, "{at:?}");
            }
        }
    }

    proptest! {
        /// Any instant at all, whole seconds or not, in any year chrono represents: the same
        /// JSON text as chrono's `Serialize`.
        #[test]
        fn written_exactly_as_chrono_writes_it(
            seconds in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            whole in any::<bool>(),
            nanos in 0u32..1_000_000_000,
        ) {
            let at = DateTime::from_timestamp(seconds, if whole { 0 } else { nanos }).unwrap();
            for (fast, chrono) in both_ways(at) {
                prop_assert_eq!(fast, chrono);
            }
        }

        /// Whole seconds of the years the engine writes (1970–2199): canonical, read back to the
        /// same instant, and written as chrono writes them.
        #[test]
        fn whole_seconds_of_the_engine_years_are_canonical(seconds in 0i64..7_258_118_400) {
            let at = DateTime::from_timestamp(seconds, 0).unwrap();
            let text = write_canonical(&at).unwrap();
            prop_assert_eq!(canonical(&text), Some(at));
            let [(fast, chrono), _] = both_ways(at);
            prop_assert_eq!(fast, chrono);
        }
    }
}
