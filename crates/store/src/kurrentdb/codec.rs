//! The mapping between the store's envelope and KurrentDB's event records.
//!
//! Kept free of network code and of the client's opaque types (whose fields are private), so
//! that every rule here is unit-tested without a server: the client types are converted to
//! and from the plain [`EncodedEvent`] and [`RawRecord`] at the edge.
//!
//! ## What goes where
//!
//! | envelope field | KurrentDB |
//! |---|---|
//! | `event_id` | the event id (so the server's idempotent-append check applies) |
//! | `event_type` | the event type |
//! | `payload` | the event data, byte for byte; content type `application/json` when the bytes are exactly one JSON value, else `application/octet-stream` |
//! | `stream_id` | the stream name minus the namespace, and again in the custom metadata |
//! | `version` | stream revision + 1 (revisions are 0-based, versions 1-based) |
//! | `position` | `2 × L + 1`, where `L` is the event's `$all` log position (see below) |
//! | `recorded_at`, `schema_version`, `metadata.*`, `prev_hash`, `hash` | the custom metadata JSON document [`StoredMetadata`] |
//!
//! ## Global positions on KurrentDB
//!
//! KurrentDB orders `$all` by the commit position of each event, a byte offset in its
//! transaction log. Every event written through the gRPC append (which is how this backend
//! writes) commits itself, so its commit and prepare positions are both its own log position
//! `L`, unique and strictly increasing in commit order. The positions are *not* gap-free, and
//! a log position can only be used to start a read if it is the start of a record. The store
//! contract, however, lets callers pass either an event's position (inclusive) or a checkpoint
//! plus one. Encoding `position = 2L + 1` keeps both forms unambiguous: an odd `from` names
//! the event at `L = (from - 1) / 2` (read it), an even `from` is "after the event at
//! `L = (from - 2) / 2`" (skip it). Positions are therefore opaque, strictly increasing,
//! odd and ≥ 1 on this backend; only their order and the `+1` rule carry meaning.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{GENESIS_HASH, HashInput, record_hash};
use crate::types::{
    AppendOutcome, AppendRequest, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
};

/// Version of the custom-metadata document; bump when its shape changes incompatibly.
pub const METADATA_FORMAT: i64 = 1;

/// Event type of the ledger records.
pub const LEDGER_EVENT_TYPE: &str = "CaseflowCommandRecorded";

/// The custom metadata stored with every event: everything of the envelope that KurrentDB
/// has no native field for. Field names are short but spelled out, for operators who read
/// events in the KurrentDB UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMetadata {
    /// Format version of this document ([`METADATA_FORMAT`]).
    pub caseflow_format: i64,
    /// The store's stream id (the stream name without the namespace).
    pub stream_id: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// Recorded time, nanoseconds since the Unix epoch (exact; the hash covers it).
    pub recorded_at_ns: i64,
    /// Recorded time as RFC 3339, for people reading events in the KurrentDB UI only.
    pub recorded_at: String,
    /// The acting principal.
    pub actor: String,
    /// The command that produced the event.
    pub command_id: Option<Uuid>,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// The idempotency key of the append that wrote this event (the request's command id).
    pub append_command_id: Option<Uuid>,
    /// Hash of the previous record of the stream, hex.
    pub prev_hash: String,
    /// Hash of this record, hex.
    pub hash: String,
}

/// An event ready to be handed to the client (see [`EncodedEvent::into_event_data`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The event id.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: String,
    /// The data, exactly the payload bytes.
    pub data: Bytes,
    /// Whether the data is marked as JSON.
    pub is_json: bool,
    /// The custom metadata, a [`StoredMetadata`] JSON document.
    pub custom_metadata: Bytes,
}

impl EncodedEvent {
    /// Builds the client's event. The data bytes are sent unchanged in both branches.
    pub fn into_event_data(self) -> kurrentdb::EventData {
        let event = if self.is_json {
            // `RawValue` serialises as its exact text, which `encode_event` checked is the
            // whole payload, so the server stores the caller's bytes unchanged.
            match serde_json::from_slice::<Box<serde_json::value::RawValue>>(&self.data)
                .and_then(|raw| kurrentdb::EventData::json(&self.event_type, &raw))
            {
                Ok(event) => event,
                Err(_) => kurrentdb::EventData::binary(&self.event_type, self.data.clone()),
            }
        } else {
            kurrentdb::EventData::binary(&self.event_type, self.data.clone())
        };
        event.id(self.event_id).metadata(self.custom_metadata)
    }
}

/// A record as read from KurrentDB, in plain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The KurrentDB stream name (with the namespace).
    pub stream_name: String,
    /// The event id.
    pub event_id: Uuid,
    /// 0-based stream revision.
    pub revision: u64,
    /// The event type.
    pub event_type: String,
    /// The data.
    pub data: Bytes,
    /// The custom metadata.
    pub custom_metadata: Bytes,
    /// `$all` commit position (`u64::MAX` when the server did not send one).
    pub commit_position: u64,
    /// `$all` prepare position (`u64::MAX` when the server did not send one).
    pub prepare_position: u64,
}

impl RawRecord {
    /// Copies the fields out of a client record.
    pub fn from_client(event: &kurrentdb::RecordedEvent) -> Self {
        RawRecord {
            stream_name: event.stream_id().to_owned(),
            event_id: event.id,
            revision: event.revision,
            event_type: event.event_type.clone(),
            data: event.data.clone(),
            custom_metadata: event.custom_metadata.clone(),
            commit_position: event.position.commit,
            prepare_position: event.position.prepare,
        }
    }

    /// The event's own log position `L`: the commit position, or the prepare position when
    /// the server sent no commit position (servers before 22.10 do so on stream reads).
    pub fn log_position(&self) -> Result<u64, StoreError> {
        // The gRPC API encodes "no position" as -1, which arrives as u64::MAX; the server's
        // log positions are signed 64-bit, so anything above i64::MAX is not a position.
        let valid = |p: u64| p <= i64::MAX as u64;
        if valid(self.commit_position) {
            Ok(self.commit_position)
        } else if valid(self.prepare_position) {
            Ok(self.prepare_position)
        } else {
            Err(StoreError::Corrupt {
                reason: format!(
                    "KurrentDB sent no $all position for event {} of {:?}",
                    self.event_id, self.stream_name
                ),
            })
        }
    }
}

/// The store position of the event at log position `log_position`.
pub fn encode_position(log_position: u64) -> Result<u64, StoreError> {
    log_position
        .checked_mul(2)
        .and_then(|p| p.checked_add(1))
        .ok_or_else(|| StoreError::Corrupt {
            reason: format!("KurrentDB log position {log_position} is out of range"),
        })
}

/// The log position encoded by an event's store position (odd, ≥ 1).
pub fn log_position_of(position: u64) -> Option<u64> {
    (position % 2 == 1).then_some((position - 1) / 2)
}

/// Where a read of the global log starts, decoded from a store position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// From the first event of `$all`.
    Start,
    /// From the event at this log position, inclusive.
    AtLog(u64),
    /// After the event at this log position (the event itself is skipped).
    AfterLog(u64),
}

impl ReadFrom {
    /// Decodes `from_position` as the store contract defines it: 0 and 1 mean the start,
    /// an event's position is inclusive, an event's position + 1 is exclusive of that event.
    pub fn decode(from_position: u64) -> ReadFrom {
        match from_position {
            0 | 1 => ReadFrom::Start,
            p if p % 2 == 1 => ReadFrom::AtLog((p - 1) / 2),
            p => ReadFrom::AfterLog((p - 2) / 2),
        }
    }

    /// The position KurrentDB should start reading at (always an event's own log position,
    /// which is a valid record start), or `None` for the start of `$all`.
    pub fn seek(self) -> Option<u64> {
        match self {
            ReadFrom::Start => None,
            ReadFrom::AtLog(l) | ReadFrom::AfterLog(l) => Some(l),
        }
    }

    /// Whether an event at log position `log` is at or after the requested start.
    pub fn admits(self, log: u64) -> bool {
        match self {
            ReadFrom::Start => true,
            ReadFrom::AtLog(l) => log >= l,
            ReadFrom::AfterLog(l) => log > l,
        }
    }
}

/// The client stream state that says "the stream is at `version`" (1-based event count).
pub fn stream_state_for_version(version: u64) -> kurrentdb::StreamState {
    match version {
        0 => kurrentdb::StreamState::NoStream,
        v => kurrentdb::StreamState::StreamRevision(v - 1),
    }
}

/// The store's view (0 = no stream) of the client's current revision.
pub fn version_of_revision(current: kurrentdb::CurrentRevision) -> u64 {
    match current {
        kurrentdb::CurrentRevision::NoStream => 0,
        kurrentdb::CurrentRevision::Current(revision) => revision.saturating_add(1),
    }
}

/// Whether the caller's expectation admits a stream at `actual`; `Any` always does.
pub fn admits(expected: ExpectedVersion, actual: u64) -> bool {
    expected.admits(actual)
}

/// Everything the encoder needs to know about one event's place in its stream.
#[derive(Debug, Clone, Copy)]
pub struct EncodeContext<'a> {
    /// The store stream id (without the namespace).
    pub stream_id: &'a str,
    /// Recorded time.
    pub recorded_at: DateTime<Utc>,
    /// The append's idempotency key.
    pub append_command_id: Option<Uuid>,
    /// Hash of the previous record.
    pub prev_hash: [u8; 32],
    /// Hash of this record (computed by [`crate::hash::record_hash`]).
    pub hash: [u8; 32],
}

/// Encodes one event of an append.
pub fn encode_event(event: &NewEvent, ctx: &EncodeContext<'_>) -> Result<EncodedEvent, StoreError> {
    let recorded_at_ns =
        ctx.recorded_at
            .timestamp_nanos_opt()
            .ok_or_else(|| StoreError::InvalidRequest {
                reason: format!("recorded_at {} is not representable", ctx.recorded_at),
            })?;
    let meta = StoredMetadata {
        caseflow_format: METADATA_FORMAT,
        stream_id: ctx.stream_id.to_owned(),
        schema_version: event.schema_version,
        recorded_at_ns,
        recorded_at: ctx
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        actor: event.metadata.actor.clone(),
        command_id: event.metadata.command_id,
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        append_command_id: ctx.append_command_id,
        prev_hash: hex::encode(ctx.prev_hash),
        hash: hex::encode(ctx.hash),
    };
    let custom_metadata = serde_json::to_vec(&meta).map_err(|e| StoreError::InvalidRequest {
        reason: format!("event metadata cannot be encoded: {e}"),
    })?;
    Ok(EncodedEvent {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        // serde_json wrote a serialised payload: exactly one value, by construction.
        is_json: event.payload.is_serialised() || is_exactly_one_json_value(&event.payload),
        data: Bytes::from(event.payload.to_vec()),
        custom_metadata: Bytes::from(custom_metadata),
    })
}

/// Encodes an append's events for a stream currently at version `actual` whose last record
/// hashes to `prev_hash` (the genesis hash for a new stream): versions `actual + 1 ..`, and
/// the hash chain computed by [`record_hash`], the code every backend uses.
pub fn encode_append(
    request: &AppendRequest,
    actual: u64,
    prev_hash: [u8; 32],
) -> Result<Vec<EncodedEvent>, StoreError> {
    let recorded_at_ns =
        request
            .recorded_at
            .timestamp_nanos_opt()
            .ok_or_else(|| StoreError::InvalidRequest {
                reason: format!("recorded_at {} is not representable", request.recorded_at),
            })?;
    let mut prev_hash = prev_hash;
    let mut out = Vec::with_capacity(request.events.len());
    for (i, event) in request.events.iter().enumerate() {
        let version = actual + 1 + i as u64;
        let hash = record_hash(
            &prev_hash,
            &HashInput {
                stream_id: &request.stream_id,
                version,
                event_id: event.event_id,
                recorded_at_ns,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: (&event.metadata).into(),
            },
        );
        out.push(encode_event(
            event,
            &EncodeContext {
                stream_id: &request.stream_id,
                recorded_at: request.recorded_at,
                append_command_id: request.command_id,
                prev_hash,
                hash,
            },
        )?);
        prev_hash = hash;
    }
    Ok(out)
}

/// What an append does, decided from the target stream as read from the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendPlan {
    /// The stream already holds this command's events: return their outcome, write nothing.
    Deduplicated(AppendOutcome),
    /// Write `events` with the expected revision of a stream at version `actual`.
    Write {
        /// The stream's current version (0 = no stream).
        actual: u64,
        /// The encoded events, versions `actual + 1 ..`, hash-chained to the stream's head.
        events: Vec<EncodedEvent>,
    },
}

/// Decides an append from the target stream's records (all of them, in revision order):
/// checks the stream is intact (versions 1..n), looks for the request's command id
/// (before the expected version, as the contract requires), then the expected version, then
/// duplicate event ids, and encodes the events chained to the last record.
pub fn plan_append(
    namespace: &str,
    request: &AppendRequest,
    stream: &[RawRecord],
) -> Result<AppendPlan, StoreError> {
    let existing: Vec<RecordedEvent> = stream
        .iter()
        .map(|r| decode_event(namespace, r))
        .collect::<Result<_, _>>()?;
    for (i, e) in existing.iter().enumerate() {
        if e.version != i as u64 + 1 {
            return Err(StoreError::Corrupt {
                reason: format!(
                    "KurrentDB stream {:?} reads version {} at place {} (truncated, scavenged \
                     or partly deleted)",
                    request.stream_id,
                    e.version,
                    i + 1
                ),
            });
        }
    }
    let actual = existing.len() as u64;
    if let Some(command_id) = request.command_id {
        let mine: Vec<RecordedEvent> = stream
            .iter()
            .zip(&existing)
            .filter(|(r, _)| append_command_id_of(r) == Some(command_id))
            .map(|(_, e)| e.clone())
            .collect();
        if let Some(outcome) = outcome_of_records(&mine) {
            return Ok(AppendPlan::Deduplicated(outcome));
        }
    }
    if !admits(request.expected, actual) {
        return Err(StoreError::VersionConflict {
            stream: request.stream_id.clone(),
            expected: request.expected,
            actual,
        });
    }
    if let Some(dup) = request
        .events
        .iter()
        .find(|n| existing.iter().any(|e| e.event_id == n.event_id))
    {
        return Err(StoreError::DuplicateEventId {
            event_id: dup.event_id,
        });
    }
    let prev_hash = existing.last().map_or(GENESIS_HASH, |e| e.hash);
    Ok(AppendPlan::Write {
        actual,
        events: encode_append(request, actual, prev_hash)?,
    })
}

/// True when `RawValue` would reproduce the bytes exactly (no surrounding whitespace), so the
/// event can be marked as JSON without changing a byte.
fn is_exactly_one_json_value(payload: &[u8]) -> bool {
    serde_json::from_slice::<Box<serde_json::value::RawValue>>(payload)
        .map(|raw| raw.get().as_bytes() == payload)
        .unwrap_or(false)
}

/// Decodes a record of a data stream into the envelope. `namespace` is stripped from the
/// stream name; the stream id stored in the metadata must agree with it.
pub fn decode_event(namespace: &str, raw: &RawRecord) -> Result<RecordedEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        reason: format!(
            "event {} (revision {}) of KurrentDB stream {:?}: {reason}",
            raw.event_id, raw.revision, raw.stream_name
        ),
    };
    let meta: StoredMetadata = serde_json::from_slice(&raw.custom_metadata)
        .map_err(|e| corrupt(format!("metadata is not a Caseflow envelope: {e}")))?;
    if meta.caseflow_format > METADATA_FORMAT {
        return Err(StoreError::NewerFormat {
            found: meta.caseflow_format,
            supported: METADATA_FORMAT,
        });
    }
    if meta.caseflow_format < 1 {
        return Err(corrupt(format!(
            "metadata format {} is invalid",
            meta.caseflow_format
        )));
    }
    let Some(stream_id) = raw.stream_name.strip_prefix(namespace) else {
        return Err(corrupt(format!(
            "stream is outside namespace {namespace:?}"
        )));
    };
    if stream_id != meta.stream_id {
        return Err(corrupt(format!(
            "metadata names stream {:?}, but the event is in {stream_id:?}",
            meta.stream_id
        )));
    }
    let recorded_at = DateTime::<Utc>::from_timestamp_nanos(meta.recorded_at_ns);
    let prev_hash = decode_hash(&meta.prev_hash).map_err(|e| corrupt(format!("prev_hash: {e}")))?;
    let hash = decode_hash(&meta.hash).map_err(|e| corrupt(format!("hash: {e}")))?;
    let position = encode_position(raw.log_position()?)?;
    Ok(RecordedEvent {
        event_id: raw.event_id,
        stream_id: meta.stream_id,
        version: raw
            .revision
            .checked_add(1)
            .ok_or_else(|| corrupt("revision out of range".into()))?,
        position,
        recorded_at,
        event_type: raw.event_type.clone(),
        schema_version: meta.schema_version,
        payload: raw.data.to_vec(),
        metadata: Metadata {
            actor: meta.actor,
            command_id: meta.command_id,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
        },
        prev_hash,
        hash,
    })
}

/// The append's idempotency key stored with a record, if the record is a Caseflow envelope.
pub fn append_command_id_of(raw: &RawRecord) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Key {
        append_command_id: Option<Uuid>,
    }
    serde_json::from_slice::<Key>(&raw.custom_metadata)
        .ok()
        .and_then(|k| k.append_command_id)
}

fn decode_hash(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A ledger record: where and what an append with a command id wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecord {
    /// Format version ([`METADATA_FORMAT`]).
    pub caseflow_format: i64,
    /// The command id.
    pub command_id: Uuid,
    /// The store stream id appended to.
    pub stream_id: String,
    /// Outcome fields of the original append.
    pub first_version: u64,
    /// Last version written.
    pub last_version: u64,
    /// Position of the first event.
    pub first_position: u64,
    /// Position of the last event.
    pub last_position: u64,
}

impl LedgerRecord {
    /// The record of an append.
    pub fn new(command_id: Uuid, stream_id: &str, outcome: &AppendOutcome) -> Self {
        LedgerRecord {
            caseflow_format: METADATA_FORMAT,
            command_id,
            stream_id: stream_id.to_owned(),
            first_version: outcome.first_version,
            last_version: outcome.last_version,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
        }
    }

    /// The original outcome, marked as deduplicated.
    pub fn deduplicated_outcome(&self) -> AppendOutcome {
        AppendOutcome {
            first_version: self.first_version,
            last_version: self.last_version,
            first_position: self.first_position,
            last_position: self.last_position,
            deduplicated: true,
        }
    }

    /// Encodes the record as a ledger event. The event id is the command id, so a re-sent
    /// ledger write is recognised by the server's idempotency check.
    pub fn encode(&self) -> EncodedEvent {
        // Serialising a struct of strings, integers and uuids cannot fail.
        let data = serde_json::to_vec(self).unwrap_or_default();
        EncodedEvent {
            event_id: self.command_id,
            event_type: LEDGER_EVENT_TYPE.to_owned(),
            data: Bytes::from(data),
            is_json: true,
            custom_metadata: Bytes::new(),
        }
    }

    /// Decodes a ledger event.
    pub fn decode(raw: &RawRecord) -> Result<LedgerRecord, StoreError> {
        let record: LedgerRecord =
            serde_json::from_slice(&raw.data).map_err(|e| StoreError::Corrupt {
                reason: format!(
                    "ledger stream {:?} holds a record that is not a ledger entry: {e}",
                    raw.stream_name
                ),
            })?;
        if record.caseflow_format > METADATA_FORMAT {
            return Err(StoreError::NewerFormat {
                found: record.caseflow_format,
                supported: METADATA_FORMAT,
            });
        }
        Ok(record)
    }
}

/// Builds the outcome of a command's events found in its stream (the ledger's source of
/// truth). `records` are the stream's records carrying the command id, in version order.
pub fn outcome_of_records(records: &[RecordedEvent]) -> Option<AppendOutcome> {
    let first = records.first()?;
    let last = records.last()?;
    Some(AppendOutcome {
        first_version: first.version,
        last_version: last.version,
        first_position: first.position,
        last_position: last.position,
        deduplicated: true,
    })
}
