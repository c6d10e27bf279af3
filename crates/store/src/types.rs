//! The record envelope and the request/response types of the [`crate::EventStore`] trait.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ledger::LedgerFinding;

/// Longest accepted stream id, in bytes.
pub const STREAM_ID_LEN_MAX: usize = 256;
/// Longest accepted event type name, in bytes.
pub const EVENT_TYPE_LEN_MAX: usize = 128;
/// Longest accepted actor string, in bytes.
pub const ACTOR_LEN_MAX: usize = 256;
/// Largest accepted payload, in bytes (1 MiB). Events are facts, not documents.
pub const PAYLOAD_LEN_MAX: usize = 1 << 20;
/// Most events accepted in one append request.
pub const EVENTS_PER_APPEND_MAX: usize = 10_000;

/// What the caller believes the stream's version is before the append.
///
/// Stream versions are 1-based: the first event of a stream has version 1, and a
/// stream's version is its event count (0 means "no stream").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the current version is (no optimistic concurrency check).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (`Exact(0)` is the same as `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` (0 = no stream) satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Who caused an event and why; stored with every record and covered by its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Metadata {
    /// The acting principal, e.g. a unit id and role (`room-1/clerk`). Free text to the store.
    pub actor: String,
    /// The command that produced the event, if any.
    pub command_id: Option<Uuid>,
    /// Groups every event of one business interaction.
    pub correlation_id: Option<Uuid>,
    /// The message (command or event id) that directly caused this event.
    pub causation_id: Option<Uuid>,
}

/// An event the caller wants to append. The store never makes ids or reads a clock: the
/// caller passes the event id (UUIDv7) and, in [`AppendRequest`], the recorded time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Globally unique event id (UUIDv7 recommended so ids are time-ordered).
    pub event_id: Uuid,
    /// Stable type name, e.g. `CaseReported`.
    pub event_type: String,
    /// Schema version of `payload` for this type (≥ 1).
    pub schema_version: u32,
    /// The event body, a JSON document.
    pub payload: Payload,
    /// Who and why.
    pub metadata: Metadata,
}

/// The deepest nesting serde_json reads back: its recursion limit of 128 counts the scalar
/// inside the innermost array or object too.
const JSON_DEPTH_MAX: usize = 127;

fn opening_brackets(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'[' || b == b'{').count()
}

/// Whether `bytes` is one JSON document that serde_json can read back. Skipping a value
/// (`IgnoredAny`) does not recurse and so has no depth limit; a payload that might be too
/// deep is parsed as a `Value`, which has.
fn check_json(bytes: &[u8]) -> Result<(), serde_json::Error> {
    if opening_brackets(bytes) <= JSON_DEPTH_MAX {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map(drop)
    } else {
        serde_json::from_slice::<serde_json::Value>(bytes).map(drop)
    }
}

/// An event's body, a JSON document, and whether [`AppendRequest::validate`] must still parse
/// it. Bytes from outside (an HTTP body, an import, any caller: [`Payload::from_bytes`] or
/// `From<Vec<u8>>`) are parsed before they are stored. A payload made by
/// [`Payload::serialize`] was written by serde_json's serializer, which writes valid JSON
/// whatever value it is given (strings escaped, non-finite numbers as `null`, non-string map
/// keys refused; the one exception, serde_json's private raw-value token, is reached only by
/// `RawValue`, which is checked when it is made), so it is not parsed again: the engine
/// writes every event that way, and parsing it back cost about a tenth of a command.
#[derive(Debug, Clone, Eq)]
pub struct Payload {
    bytes: Vec<u8>,
    /// True only when serde_json wrote `bytes`.
    serialised: bool,
}

impl Payload {
    /// Bytes from any caller; checked as JSON when the append is validated.
    pub fn from_bytes(bytes: Vec<u8>) -> Payload {
        Payload {
            bytes,
            serialised: false,
        }
    }

    /// `value` serialised as JSON by serde_json: valid JSON by construction, so it is not
    /// parsed again when the append is validated.
    pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Payload, serde_json::Error> {
        // Most event bodies are a few hundred bytes: one allocation instead of serde_json's
        // 128 bytes and two or three regrowths.
        let mut bytes = Vec::with_capacity(512);
        serde_json::to_writer(&mut bytes, value)?;
        // serde_json writes any depth but reads at most `JSON_DEPTH_MAX` levels of arrays and
        // objects, so a deeper value would be stored and then fail to decode on every replay.
        // Nesting cannot be deeper than the number of opening brackets (those inside strings
        // count too, which only errs towards a parse): a payload with more than the limit
        // (none of the engine's events) is parsed by `validate`, which refuses it if too deep.
        let serialised = opening_brackets(&bytes) <= JSON_DEPTH_MAX;
        Ok(Payload { bytes, serialised })
    }

    /// The JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The JSON text, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether [`AppendRequest::validate`] may skip parsing it (serde_json wrote it).
    pub fn is_serialised(&self) -> bool {
        self.serialised
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::from_bytes(bytes)
    }
}

/// Two payloads are equal when their bytes are: how they were made is not part of the event.
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.bytes == other.bytes
    }
}

/// Written as the bytes alone (as a `Vec<u8>` is); read back as bytes from outside, which are
/// checked again.
impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.bytes.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        Vec::<u8>::deserialize(d).map(Payload::from_bytes)
    }
}

/// One append: events for one stream, written atomically or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// Target stream (non-empty, at most [`STREAM_ID_LEN_MAX`] bytes, no control characters).
    pub stream_id: String,
    /// Optimistic concurrency check.
    pub expected: ExpectedVersion,
    /// At least one event, at most [`EVENTS_PER_APPEND_MAX`].
    pub events: Vec<NewEvent>,
    /// The time the caller records for every event of this append.
    pub recorded_at: DateTime<Utc>,
    /// Idempotency key: an append whose command id is already in the store's ledger
    /// returns the original outcome (with `deduplicated = true`) and writes nothing.
    pub command_id: Option<Uuid>,
}

/// What an append wrote (or, when `deduplicated`, what the original append wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Stream version of the first event written.
    pub first_version: u64,
    /// Stream version of the last event written (= the stream's new version).
    pub last_version: u64,
    /// Global position of the first event written.
    pub first_position: u64,
    /// Global position of the last event written.
    pub last_position: u64,
    /// True when the command id was already in the ledger and nothing was written.
    pub deduplicated: bool,
}

/// A stored event: the envelope plus its place in the stream and in the global log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Event id given by the caller.
    pub event_id: Uuid,
    /// The stream the event belongs to.
    pub stream_id: String,
    /// 1-based version within the stream.
    pub version: u64,
    /// 1-based, gap-free position in the global log, in commit order.
    pub position: u64,
    /// Time recorded by the caller at append.
    pub recorded_at: DateTime<Utc>,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u32,
    /// JSON payload exactly as appended (serialised as a string holding the JSON text, so
    /// the bytes round-trip exactly).
    #[serde(with = "text_bytes")]
    pub payload: Vec<u8>,
    /// Metadata exactly as appended.
    pub metadata: Metadata,
    /// Hash of the previous record in the same stream (all zeros for version 1).
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    /// SHA-256 over `prev_hash` and the canonical bytes of this record (see [`crate::hash`]).
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

mod text_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        // Payloads are validated as JSON (hence UTF-8) before they are stored.
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// What mismatched at the first broken link of a hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LinkFault {
    /// The stored hash does not match the hash recomputed from the record's bytes:
    /// some field of this record was changed after it was written.
    HashMismatch {
        /// Hash stored with the record.
        #[serde(with = "hex_bytes")]
        stored: [u8; 32],
        /// Hash recomputed from the stored fields.
        #[serde(with = "hex_bytes")]
        computed: [u8; 32],
    },
    /// The record's `prev_hash` is not the hash of the previous record in the stream.
    PrevHashMismatch {
        /// `prev_hash` stored with the record.
        #[serde(with = "hex_bytes")]
        stored: [u8; 32],
        /// Hash of the previous record (zeros for version 1).
        #[serde(with = "hex_bytes")]
        expected: [u8; 32],
    },
    /// Versions are not 1, 2, 3, ... (a record is missing or duplicated).
    VersionGap {
        /// The version that should come next.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// The stream head kept by the store (version and last hash) disagrees with its last record.
    HeadMismatch {
        /// Version recorded in the stream head.
        head_version: u64,
        /// Version of the last record found.
        last_version: u64,
    },
}

impl std::fmt::Display for LinkFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkFault::HashMismatch { stored, computed } => write!(
                f,
                "stored hash {} but the record hashes to {}",
                hex::encode(stored),
                hex::encode(computed)
            ),
            LinkFault::PrevHashMismatch { stored, expected } => write!(
                f,
                "prev_hash {} but the previous record's hash is {}",
                hex::encode(stored),
                hex::encode(expected)
            ),
            LinkFault::VersionGap { expected, found } => {
                write!(f, "expected version {expected}, found {found}")
            }
            LinkFault::HeadMismatch {
                head_version,
                last_version,
            } => write!(
                f,
                "stream head says version {head_version} but the last record is version {last_version}"
            ),
        }
    }
}

/// The first broken link found by a verify walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLink {
    /// Stream containing the broken link.
    pub stream_id: String,
    /// Version of the record at which the chain breaks.
    pub version: u64,
    /// Global position of that record, when known.
    pub position: Option<u64>,
    /// What mismatched.
    pub fault: LinkFault,
}

/// Result of [`crate::EventStore::verify_stream`] / [`crate::EventStore::verify_all`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Streams walked.
    pub streams_checked: u64,
    /// Records whose hash was recomputed.
    pub events_checked: u64,
    /// The first broken link, or `None` when every chain verifies.
    pub first_broken: Option<BrokenLink>,
    /// Command-id ledger rows checked against the log (0 from [`crate::EventStore::verify_stream`],
    /// which checks one chain only).
    #[serde(default)]
    pub ledger_rows_checked: u64,
    /// Every mismatch between the ledger and the log (see [`crate::ledger`]).
    #[serde(default)]
    pub ledger: Vec<LedgerFinding>,
}

impl VerifyReport {
    /// True when no broken link and no ledger mismatch was found.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none() && self.ledger.is_empty()
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Validates a stream id (caller error when invalid).
pub fn validate_stream_id(stream_id: &str) -> Result<(), StoreError> {
    if stream_id.is_empty() || stream_id.len() > STREAM_ID_LEN_MAX || has_control(stream_id) {
        return Err(StoreError::InvalidRequest {
            reason: format!(
                "stream id must be 1..={STREAM_ID_LEN_MAX} bytes without control characters, got {stream_id:?}"
            ),
        });
    }
    Ok(())
}

impl AppendRequest {
    /// Checks everything that can be checked without looking at the store: shape, sizes,
    /// that payloads are JSON (parsing those from outside; see [`Payload`]) and that the
    /// recorded time is representable. Called by every
    /// backend before it writes.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |reason: String| Err(StoreError::InvalidRequest { reason });
        validate_stream_id(&self.stream_id)?;
        if self.events.is_empty() {
            return invalid("an append must carry at least one event".into());
        }
        if self.events.len() > EVENTS_PER_APPEND_MAX {
            return invalid(format!(
                "an append carries at most {EVENTS_PER_APPEND_MAX} events, got {}",
                self.events.len()
            ));
        }
        if self.recorded_at.timestamp_nanos_opt().is_none() {
            return invalid(format!(
                "recorded_at {} is outside the representable range (1677..2262)",
                self.recorded_at
            ));
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.event_type.is_empty()
                || e.event_type.len() > EVENT_TYPE_LEN_MAX
                || has_control(&e.event_type)
            {
                return invalid(format!(
                    "event {i}: event type must be 1..={EVENT_TYPE_LEN_MAX} bytes without control characters"
                ));
            }
            if e.schema_version == 0 {
                return invalid(format!("event {i}: schema version must be at least 1"));
            }
            if e.event_id.is_nil() {
                return invalid(format!("event {i}: event id must not be nil"));
            }
            if e.payload.len() > PAYLOAD_LEN_MAX {
                return invalid(format!(
                    "event {i}: payload is {} bytes, more than {PAYLOAD_LEN_MAX}",
                    e.payload.len()
                ));
            }
            if e.metadata.actor.len() > ACTOR_LEN_MAX || has_control(&e.metadata.actor) {
                return invalid(format!(
                    "event {i}: actor must be at most {ACTOR_LEN_MAX} bytes without control characters"
                ));
            }
            if !e.payload.is_serialised() {
                if let Err(err) = check_json(&e.payload) {
                    return invalid(format!("event {i}: payload is not JSON: {err}"));
                }
            }
            if self.events[..i].iter().any(|o| o.event_id == e.event_id) {
                return invalid(format!(
                    "event {i}: event id {} appears twice in one append",
                    e.event_id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn request(payload: Payload) -> AppendRequest {
        AppendRequest {
            stream_id: "case-1".into(),
            expected: ExpectedVersion::NoStream,
            events: vec![NewEvent {
                event_id: Uuid::from_u128(1),
                event_type: "CaseReported".into(),
                schema_version: 1,
                payload,
                metadata: Metadata::default(),
            }],
            recorded_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
            command_id: None,
        }
    }

    fn refusal(payload: Payload) -> Option<String> {
        match request(payload).validate() {
            Ok(()) => None,
            Err(StoreError::InvalidRequest { reason }) => Some(reason),
            Err(other) => panic!("not a caller error: {other:?}"),
        }
    }

    #[test]
    fn bytes_from_outside_are_parsed_and_refused_when_they_are_not_json() {
        let outside: [&[u8]; 4] = [b"{not json", b"", b"{\"a\":1} trailing", b"\xff\xfe"];
        for bytes in outside {
            let reason = refusal(Payload::from_bytes(bytes.to_vec())).expect("refused");
            assert!(reason.contains("payload is not JSON"), "{reason}");
            assert!(
                refusal(bytes.to_vec().into()).is_some(),
                "From<Vec<u8>> too"
            );
        }
        assert_eq!(
            refusal(Payload::from_bytes(br#"{"a":[1,null]}"#.to_vec())),
            None
        );
    }

    #[test]
    fn a_serialised_payload_is_json_and_is_not_parsed_again() {
        let value = serde_json::json!({"text": "quote \" and \u{0} control", "n": [1, 2.5]});
        let payload = Payload::serialize(&value).unwrap();
        assert!(payload.is_serialised());
        assert_eq!(
            payload.as_bytes(),
            serde_json::to_vec(&value).unwrap().as_slice()
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap(),
            value
        );
        assert_eq!(refusal(payload), None);
        // A non-finite number is written as null: still JSON.
        let payload = Payload::serialize(&[f64::NAN]).unwrap();
        assert_eq!(payload.as_bytes(), b"[null]");
        // What serde_json refuses to write is an error, never a payload.
        let keys = std::collections::BTreeMap::from([(vec![1u8], 1)]);
        assert!(Payload::serialize(&keys).is_err());
    }

    fn nested_arrays(depth: usize) -> serde_json::Value {
        (0..depth).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]))
    }

    #[test]
    fn a_serialised_payload_too_deep_to_read_back_is_refused_not_stored() {
        // Given values nested just within and just beyond what serde_json reads back
        let readable = Payload::serialize(&nested_arrays(JSON_DEPTH_MAX)).unwrap();
        let too_deep = Payload::serialize(&nested_arrays(JSON_DEPTH_MAX + 1)).unwrap();
        // Then the readable one is accepted without a parse, the deeper one is parsed and refused
        assert!(readable.is_serialised());
        assert_eq!(refusal(readable.clone()), None);
        assert!(serde_json::from_slice::<serde_json::Value>(&readable).is_ok());
        assert!(!too_deep.is_serialised());
        let reason = refusal(too_deep.clone()).expect("refused");
        assert!(reason.contains("payload is not JSON"), "{reason}");
        // And the same bytes from outside are refused too, while the readable ones pass
        assert!(refusal(Payload::from_bytes(too_deep.into_bytes())).is_some());
        assert_eq!(refusal(Payload::from_bytes(readable.into_bytes())), None);
    }

    #[test]
    fn a_payload_read_back_from_its_serialised_form_is_from_outside_again() {
        let sent = Payload::serialize(&serde_json::json!({"a": 1})).unwrap();
        let text = serde_json::to_string(&sent).unwrap();
        let read: Payload = serde_json::from_str(&text).unwrap();
        assert_eq!(read, sent, "the same bytes");
        assert!(
            !read.is_serialised(),
            "but parsed again before they are stored"
        );
        let forged: Payload = serde_json::from_str("[123, 110, 111]").unwrap();
        assert!(refusal(forged).is_some());
    }
}
