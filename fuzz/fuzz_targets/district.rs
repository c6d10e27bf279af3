//! The district loader. Proptest twin: crates/domain/tests/hostile_district.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = caseflow_domain::DistrictConfig::from_toml_str(text);
    }
});
