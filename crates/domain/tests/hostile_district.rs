//! The district loader never panics on hostile input: arbitrary text, the sample district
//! with bytes inserted, and huge numbers in its numeric fields are each a district or an
//! `OrgError`. (`fuzz/fuzz_targets/district.rs` runs the same body under libFuzzer.)

use caseflow_domain::DistrictConfig;
use proptest::prelude::*;

const SAMPLE: &str = include_str!("../../../examples/district.toml");

/// Every `= <integer>` in the sample, as byte ranges of the number.
fn numbers() -> Vec<std::ops::Range<usize>> {
    let bytes = SAMPLE.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let mut start = i + 1;
            while start < bytes.len() && bytes[start] == b' ' {
                start += 1;
            }
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'-') {
                end += 1;
            }
            if end > start {
                out.push(start..end);
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_sample_district_has_numbers_to_replace() {
    assert!(DistrictConfig::from_toml_str(SAMPLE).is_ok());
    assert!(numbers().len() >= 3, "{:?}", numbers());
}

#[test]
fn huge_numbers_in_the_district_are_errors_or_districts_never_panics() {
    for range in numbers() {
        for huge in [
            "4294967296",
            "18446744073709551615",
            "-9223372036854775808",
            "99999999999999999999999",
        ] {
            let mut text = SAMPLE.to_owned();
            text.replace_range(range.clone(), huge);
            let _ = DistrictConfig::from_toml_str(&text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn loading_arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = DistrictConfig::from_toml_str(&text);
    }

    #[test]
    fn loading_the_sample_with_inserted_bytes_never_panics(
        at in any::<prop::sample::Index>(),
        garbage in "[-a-z0-9\\[\\]{}=\". \n]{0,16}",
    ) {
        let mut text = SAMPLE.to_owned();
        let mut i = at.index(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        text.insert_str(i, &garbage);
        let _ = DistrictConfig::from_toml_str(&text);
    }
}
