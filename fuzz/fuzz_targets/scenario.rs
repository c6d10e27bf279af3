//! The scenario parser and its validation. Proptest twin: crates/sim/tests/scenario_errors.rs
//! (`parsing_never_panics_on_arbitrary_text`, `..._on_mutated_scenarios`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = caseflow_sim::Scenario::from_toml_str(text);
    }
});
