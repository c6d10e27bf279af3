//! The memory store's compact record: what a stored event costs in memory.
//!
//! A [`RecordedEvent`] owns four strings, two hashes and a `DateTime`; kept as is, a
//! province-scale log held about 1.4 kB per event. Here a record is a fixed-size row of 88
//! bytes: stream ids, event types and actors are dense `u32` keys into [`Names`] (a
//! province has a million streams, a few dozen types and a few thousand actors); the
//! payload and the metadata ids live in one shared byte buffer ([`Bodies`]); the position
//! is the row's index; and the previous hash is not stored at all, because it is by
//! definition the hash of the stream's previous record. [`RecordedEvent`]s are built from
//! rows only when they are read.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use uuid::Uuid;

use crate::types::Metadata;

/// The hasher of the store's maps. Their keys (stream ids, event and command ids) are the
/// callers' own, in a process that trusts its callers, so SipHash's resistance to hash
/// flooding buys nothing, and it was a measurable part of an append. The fixed seed keeps
/// behaviour independent of process-wide randomness.
pub type FastState = foldhash::quality::FixedState;

/// A hash of `value` with the tables' fixed-seed hasher.
pub(super) fn fast_hash<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
    FastState::default().hash_one(value)
}

/// Strings kept once each, in one buffer, named by dense keys in order of first use.
#[derive(Default)]
pub(super) struct Names {
    /// Every name, back to back.
    text: String,
    /// Where each name ends in `text` (name `k` starts where name `k - 1` ends).
    ends: Vec<usize>,
    /// The keys, hashed by their names, to find a name's key.
    keys: HashTable<u32>,
}

impl Names {
    /// The name with key `key`. Keys come only from [`Names::intern`] of this table.
    pub(super) fn name(&self, key: u32) -> &str {
        let k = key as usize;
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.text[start..self.ends[k]]
    }

    /// The key of `name`, if it was interned.
    pub(super) fn key(&self, name: &str) -> Option<u32> {
        self.keys
            .find(fast_hash(name), |&k| self.name(k) == name)
            .copied()
    }

    /// The key of `name`, interning it if new. The caller keeps the table below `u32::MAX`
    /// names (the store interns a name only with a record it writes, and caps its records).
    pub(super) fn intern(&mut self, name: &str) -> u32 {
        if let Some(key) = self.key(name) {
            return key;
        }
        let key = self.ends.len() as u32;
        self.text.push_str(name);
        self.ends.push(self.text.len());
        let (text, ends) = (&self.text, &self.ends);
        let name_of = |k: u32| {
            let k = k as usize;
            &text[if k == 0 { 0 } else { ends[k - 1] }..ends[k]]
        };
        self.keys
            .insert_unique(fast_hash(name), key, |&k| fast_hash(name_of(k)));
        key
    }

    /// How many names the table holds.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// One stored event, without its strings, payload and previous hash (see the module doc).
///
/// Its global position is its index in the log + 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    /// Event id given by the caller.
    pub(super) event_id: Uuid,
    /// The chain hash (the next record of the stream takes it as its previous hash).
    pub(super) hash: [u8; 32],
    /// Recorded time, nanoseconds since the epoch (validation guarantees it fits).
    pub(super) recorded_at_ns: i64,
    /// Where the payload starts in [`Bodies`]; the encoded metadata ids follow it.
    pub(super) body_start: u64,
    /// Payload length in bytes (≤ 1 MiB by validation).
    pub(super) payload_len: u32,
    /// 1-based version within the stream (a log of at most `u32::MAX` records bounds it).
    pub(super) version: u32,
    /// Key of the stream id in the streams' [`Names`].
    pub(super) stream: u32,
    /// Key of the event type in the types' [`Names`].
    pub(super) event_type: u32,
    /// Key of the actor in the actors' [`Names`].
    pub(super) actor: u32,
    /// Schema version of the payload.
    pub(super) schema_version: u32,
}

/// Which metadata ids follow a payload in [`Bodies`], one bit each.
const HAS_COMMAND: u8 = 1;
const HAS_CORRELATION: u8 = 2;
/// The correlation id equals the command id (the engine's default), so it is not repeated.
const CORRELATION_IS_COMMAND: u8 = 4;
const HAS_CAUSATION: u8 = 8;

/// Payloads and metadata ids of every record, back to back in one buffer: per record the
/// payload bytes, a flags byte, then the 16 bytes of each id the flags announce.
#[derive(Default)]
pub(super) struct Bodies {
    bytes: Vec<u8>,
}

impl Bodies {
    /// Appends a payload and the ids of its metadata; returns where the payload starts.
    pub(super) fn push(&mut self, payload: &[u8], metadata: &Metadata) -> u64 {
        let start = self.bytes.len() as u64;
        self.bytes.extend_from_slice(payload);
        let command = metadata.command_id;
        let correlation = metadata.correlation_id;
        let mut flags = 0;
        if command.is_some() {
            flags |= HAS_COMMAND;
        }
        if correlation.is_some() && correlation == command {
            flags |= CORRELATION_IS_COMMAND;
        } else if correlation.is_some() {
            flags |= HAS_CORRELATION;
        }
        if metadata.causation_id.is_some() {
            flags |= HAS_CAUSATION;
        }
        self.bytes.push(flags);
        let ids = [
            command,
            correlation.filter(|_| flags & HAS_CORRELATION != 0),
        ];
        for id in ids.into_iter().chain([metadata.causation_id]).flatten() {
            self.bytes.extend_from_slice(id.as_bytes());
        }
        start
    }

    /// The payload of `record`.
    pub(super) fn payload(&self, record: &Record) -> &[u8] {
        let start = record.body_start as usize;
        &self.bytes[start..start + record.payload_len as usize]
    }

    /// The metadata of `record`, with `actor` as its actor.
    pub(super) fn metadata(&self, record: &Record, actor: &str) -> Metadata {
        let mut at = record.body_start as usize + record.payload_len as usize;
        let flags = self.bytes[at];
        at += 1;
        let mut next_id = |present: bool| {
            present.then(|| {
                let mut id = [0u8; 16];
                id.copy_from_slice(&self.bytes[at..at + 16]);
                at += 16;
                Uuid::from_bytes(id)
            })
        };
        let command_id = next_id(flags & HAS_COMMAND != 0);
        let correlation_id = if flags & CORRELATION_IS_COMMAND != 0 {
            command_id
        } else {
            next_id(flags & HAS_CORRELATION != 0)
        };
        let causation_id = next_id(flags & HAS_CAUSATION != 0);
        Metadata {
            actor: actor.to_owned(),
            command_id,
            correlation_id,
            causation_id,
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_at(body_start: u64, payload_len: u32) -> Record {
        Record {
            event_id: Uuid::nil(),
            hash: [0; 32],
            recorded_at_ns: 0,
            body_start,
            payload_len,
            version: 1,
            stream: 0,
            event_type: 0,
            actor: 0,
            schema_version: 1,
        }
    }

    #[test]
    fn a_record_row_is_88_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 88);
    }

    #[test]
    fn names_are_interned_once_in_order_of_first_use() {
        let mut names = Names::default();
        assert_eq!(names.intern("case-1"), 0);
        assert_eq!(names.intern("case-2"), 1);
        assert_eq!(names.intern("case-1"), 0);
        assert_eq!(names.key("case-2"), Some(1));
        assert_eq!(names.key("case-3"), None);
        assert_eq!(
            (names.name(0), names.name(1), names.len()),
            ("case-1", "case-2", 2)
        );
    }

    #[test]
    fn every_combination_of_metadata_ids_reads_back_as_written() {
        let ids = [None, Some(Uuid::from_u128(7)), Some(Uuid::from_u128(9))];
        let mut bodies = Bodies::default();
        for command_id in ids {
            for correlation_id in ids {
                for causation_id in ids {
                    let metadata = Metadata {
                        actor: "room-1/clerk".into(),
                        command_id,
                        correlation_id,
                        causation_id,
                    };
                    let payload = br#"{"n":1}"#;
                    let start = bodies.push(payload, &metadata);
                    let record = record_at(start, payload.len() as u32);
                    assert_eq!(bodies.payload(&record), payload);
                    assert_eq!(bodies.metadata(&record, "room-1/clerk"), metadata);
                }
            }
        }
        // The engine's usual metadata (command id, correlation = command id) costs 17 bytes.
        let before = bodies.len();
        let usual = Metadata {
            actor: String::new(),
            command_id: ids[1],
            correlation_id: ids[1],
            causation_id: None,
        };
        bodies.push(b"{}", &usual);
        assert_eq!(bodies.len() - before, 2 + 17);
    }
}
