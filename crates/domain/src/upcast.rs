//! Schema evolution of stored events, as pure transformations of their JSON payloads.
//!
//! The store keeps every record exactly as written (the hash chain covers the original
//! bytes), so an event whose shape changes gets a new schema version, and the older
//! versions are brought to the current shape on read, one step at a time. The steps are
//! domain knowledge (what an old field meant) and pure (no IO, no clock), so they live
//! here; the one decoder that applies them, with the store's generic `UpcasterChain`, is
//! `caseflow_projections::decode` (the domain cannot see the store, and the store knows
//! nothing of the domain).

/// One step: a payload of `(event_type, from_version)` becomes one of `from_version + 1`.
#[derive(Debug, Clone, Copy)]
pub struct PayloadUpcaster {
    /// The stored type name the step reads.
    pub event_type: &'static str,
    /// The schema version it reads; it produces `from_version + 1`.
    pub from_version: u32,
    /// The transformation; an `Err` names what the old payload lacked.
    pub upcast: fn(serde_json::Value) -> Result<serde_json::Value, String>,
}

/// Every upcasting step of this release, oldest first.
pub const UPCASTERS: &[PayloadUpcaster] = &[PayloadUpcaster {
    event_type: "CaseReported",
    from_version: 1,
    upcast: case_reported_v1_to_v2,
}];

/// `CaseReported` v1 held a named reporter's contact in clear (`{"type":"named",...}`); v2
/// may hold it sealed (`{"type":"sealed",...}`, written by the engine). A v1 payload is a
/// valid v2 payload whose reporter is the clear, legacy [`crate::Reporter::Named`]: nothing
/// is rewritten (the stored bytes stay as hashed), so an old store's clear contacts stay
/// readable to whoever holds the file until migrated (docs/design.md).
fn case_reported_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    if payload.get("reporter").is_none() {
        return Err("no `reporter` field".to_owned());
    }
    Ok(payload)
}
