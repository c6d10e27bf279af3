//! The per-stream SHA-256 hash chain.
//!
//! `hash = SHA-256(prev_hash || canonical_bytes(record))`, where `prev_hash` is the hash of
//! the previous record of the same stream (32 zero bytes for version 1) and the canonical
//! bytes are, in order (integers big-endian, `str`/`bytes` prefixed by their length as u32,
//! options as a 0 byte or a 1 byte followed by the 16 uuid bytes):
//!
//! 1. the domain tag `b"caseflow-record-v1"` (18 bytes, no length prefix),
//! 2. stream id (str), 3. version (u64), 4. event id (16 bytes),
//! 5. recorded time as nanoseconds since the Unix epoch (i64),
//! 6. event type (str), 7. schema version (u32), 8. payload (bytes, u32 length),
//! 9. actor (str), 10. command id, 11. correlation id, 12. causation id (options).
//!
//! The global position is deliberately not hashed: it is assigned by the store at commit,
//! and a stream's chain must not depend on how other streams interleave with it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::types::{Metadata, RecordedEvent};

/// The hash that precedes version 1 of every stream.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// Domain separation tag; a change of the canonical form must change this tag.
pub const DOMAIN_TAG: &[u8] = b"caseflow-record-v1";

/// The fields the hash covers, borrowed from wherever the record is (a request, a stored
/// record, or a database row read without building a [`RecordedEvent`]).
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// Stream id.
    pub stream_id: &'a str,
    /// Stream version.
    pub version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Recorded time, nanoseconds since the epoch.
    pub recorded_at_ns: i64,
    /// Event type.
    pub event_type: &'a str,
    /// Schema version.
    pub schema_version: u32,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// Metadata.
    pub metadata: MetadataRef<'a>,
}

fn put_str(h: &mut Sha256, s: &[u8]) {
    // Lengths are bounded by request validation (payload ≤ 1 MiB), so u32 never truncates.
    h.update((s.len() as u32).to_be_bytes());
    h.update(s);
}

fn put_opt(h: &mut Sha256, id: Option<Uuid>) {
    match id {
        None => h.update([0u8]),
        Some(id) => {
            h.update([1u8]);
            h.update(id.as_bytes());
        }
    }
}

/// The metadata fields the hash covers, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct MetadataRef<'a> {
    /// Actor.
    pub actor: &'a str,
    /// Command id.
    pub command_id: Option<Uuid>,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    pub causation_id: Option<Uuid>,
}

impl<'a> From<&'a Metadata> for MetadataRef<'a> {
    fn from(m: &'a Metadata) -> Self {
        MetadataRef {
            actor: &m.actor,
            command_id: m.command_id,
            correlation_id: m.correlation_id,
            causation_id: m.causation_id,
        }
    }
}

/// Computes the chain hash of a record given the previous record's hash.
pub fn record_hash(prev_hash: &[u8; 32], f: &HashInput<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(DOMAIN_TAG);
    put_str(&mut h, f.stream_id.as_bytes());
    h.update(f.version.to_be_bytes());
    h.update(f.event_id.as_bytes());
    h.update(f.recorded_at_ns.to_be_bytes());
    put_str(&mut h, f.event_type.as_bytes());
    h.update(f.schema_version.to_be_bytes());
    put_str(&mut h, f.payload);
    put_str(&mut h, f.metadata.actor.as_bytes());
    put_opt(&mut h, f.metadata.command_id);
    put_opt(&mut h, f.metadata.correlation_id);
    put_opt(&mut h, f.metadata.causation_id);
    h.finalize().into()
}

/// Recomputes the hash of a stored record from its fields (using its stored `prev_hash`).
pub fn recompute(event: &RecordedEvent) -> [u8; 32] {
    record_hash(
        &event.prev_hash,
        &HashInput {
            stream_id: &event.stream_id,
            version: event.version,
            event_id: event.event_id,
            // Stored times always came through validation, so they fit in i64 nanoseconds;
            // an impossible value hashes as i64::MIN and therefore fails verification.
            recorded_at_ns: event.recorded_at.timestamp_nanos_opt().unwrap_or(i64::MIN),
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
            metadata: (&event.metadata).into(),
        },
    )
}

/// Walks a stream's records in version order and returns the first broken link, if any.
/// `records` must be every record of the stream, starting at version 1.
pub(crate) struct ChainWalker {
    expected_version: u64,
    prev_hash: [u8; 32],
}

impl ChainWalker {
    pub(crate) fn new() -> Self {
        ChainWalker {
            expected_version: 1,
            prev_hash: GENESIS_HASH,
        }
    }

    /// Checks the next record; returns the fault at this record, if any.
    pub(crate) fn check(&mut self, event: &RecordedEvent) -> Option<crate::types::LinkFault> {
        use crate::types::LinkFault;
        if event.version != self.expected_version {
            return Some(LinkFault::VersionGap {
                expected: self.expected_version,
                found: event.version,
            });
        }
        if event.prev_hash != self.prev_hash {
            return Some(LinkFault::PrevHashMismatch {
                stored: event.prev_hash,
                expected: self.prev_hash,
            });
        }
        let computed = recompute(event);
        if computed != event.hash {
            return Some(LinkFault::HashMismatch {
                stored: event.hash,
                computed,
            });
        }
        self.expected_version += 1;
        self.prev_hash = event.hash;
        None
    }

    /// Checks the next record of `stream_id`: the broken link at it, if any.
    pub(crate) fn link_at(
        &mut self,
        stream_id: &str,
        event: &RecordedEvent,
    ) -> Option<crate::types::BrokenLink> {
        self.check(event).map(|fault| crate::types::BrokenLink {
            stream_id: stream_id.to_owned(),
            version: event.version,
            position: Some(event.position),
            fault,
        })
    }

    /// After the last record: the broken link if the walk did not end at the head the
    /// store keeps apart from the records (a removed tail, or a head row changed).
    pub(crate) fn end_at(
        &self,
        stream_id: &str,
        head_version: u64,
        head_hash: [u8; 32],
    ) -> Option<crate::types::BrokenLink> {
        (self.last_version() != head_version || self.last_hash() != head_hash).then(|| {
            crate::types::BrokenLink {
                stream_id: stream_id.to_owned(),
                version: self.last_version(),
                position: None,
                fault: crate::types::LinkFault::HeadMismatch {
                    head_version,
                    last_version: self.last_version(),
                },
            }
        })
    }

    /// The version of the last record checked (0 if none).
    pub(crate) fn last_version(&self) -> u64 {
        self.expected_version - 1
    }

    /// The hash of the last record checked.
    pub(crate) fn last_hash(&self) -> [u8; 32] {
        self.prev_hash
    }
}
