//! The one decode path from a stored record to a [`CaseEvent`], used by the projections, the
//! engine, its audit and its exports.
//!
//! A record at the current schema version of its type is decoded directly (the hot path of
//! every rebuild). An older one is parsed, brought to the current shape by the store's
//! generic [`UpcasterChain`] built from the domain's pure steps ([`UPCASTERS`]) and the
//! current version of every type ([`CaseEvent::SCHEMA_VERSIONS`]), then decoded. Unknown
//! types, versions without an upcaster path and payloads that do not fit are typed
//! [`DecodeError`]s; nothing is guessed.

use std::sync::LazyLock;

use caseflow_domain::{CaseEvent, DecodeError, UPCASTERS};
use caseflow_store::{FnUpcaster, RecordedEvent, StoreError, UpcasterChain};

/// The chain of the domain's upcasters, built once.
static DOMAIN_CHAIN: LazyLock<UpcasterChain> = LazyLock::new(domain_upcaster_chain);

/// The store's upcaster chain holding the domain's event types at their current versions
/// and every one of the domain's upcasting steps.
pub fn domain_upcaster_chain() -> UpcasterChain {
    let typed = CaseEvent::SCHEMA_VERSIONS
        .iter()
        .fold(UpcasterChain::new(), |chain, (event_type, version)| {
            chain.with_type(*event_type, *version)
        });
    UPCASTERS.iter().fold(typed, |chain, step| {
        chain.with_upcaster(FnUpcaster::new(
            step.event_type,
            step.from_version,
            step.upcast,
        ))
    })
}

/// Decodes a stored record into a case event, upcasting an older schema version first.
pub fn decode(record: &RecordedEvent) -> Result<CaseEvent, DecodeError> {
    match CaseEvent::current_schema_version(&record.event_type) {
        Some(current) if current == record.schema_version => {
            CaseEvent::decode_current(&record.event_type, record.schema_version, &record.payload)
        }
        _ => decode_older(record),
    }
}

/// The slow path: parse, upcast step by step, decode the current shape.
fn decode_older(record: &RecordedEvent) -> Result<CaseEvent, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_slice(&record.payload).map_err(|e| DecodeError::InvalidPayload {
            event_type: record.event_type.clone(),
            message: e.to_string(),
        })?;
    let current = DOMAIN_CHAIN
        .upcast(&record.event_type, record.schema_version, value)
        .map_err(|error| match error {
            StoreError::UnknownEventType { event_type } => {
                DecodeError::UnknownEventType { event_type }
            }
            StoreError::UnknownSchemaVersion {
                event_type,
                schema_version,
            } => DecodeError::UnsupportedSchemaVersion {
                event_type,
                schema_version,
            },
            StoreError::Decode {
                event_type,
                schema_version,
                reason,
            } => DecodeError::UpcastFailed {
                event_type,
                schema_version,
                reason,
            },
            other => DecodeError::UpcastFailed {
                event_type: record.event_type.clone(),
                schema_version: record.schema_version,
                reason: other.to_string(),
            },
        })?;
    CaseEvent::decode_current_value(&current.event_type, current.schema_version, current.payload)
}
