//! The architecture invariants of the domain crate, checked on its own manifest and sources:
//! no IO, no async runtime, no database, no clock, no randomness.

use std::path::Path;

#[test]
fn the_domain_depends_on_no_runtime_database_or_randomness() {
    let manifest: toml::Table = toml::from_str(include_str!("../Cargo.toml")).unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    let allowed = ["serde", "serde_json", "uuid", "chrono", "thiserror", "toml"];
    for name in deps.keys() {
        assert!(
            allowed.contains(&name.as_str()),
            "unexpected dependency `{name}`"
        );
    }
}

#[test]
fn chrono_comes_without_its_clock() {
    let root: toml::Table = toml::from_str(include_str!("../../../Cargo.toml")).unwrap();
    let chrono = &root["workspace"]["dependencies"]["chrono"];
    assert_eq!(
        chrono.get("default-features").and_then(|v| v.as_bool()),
        Some(false)
    );
    let features: Vec<&str> = chrono["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(!features.contains(&"clock"), "{features:?}");
    assert!(!features.contains(&"now"), "{features:?}");
}

#[test]
fn the_sources_read_no_clock_and_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "tokio",
        "rand::",
        "Uuid::new_v4",
        "Uuid::now_v7",
        "println!",
        "eprintln!",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for f in forbidden {
            assert!(!text.contains(f), "{} uses `{f}`", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} source files found");
}
