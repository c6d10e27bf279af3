//! Bytes the memory store holds per event, for a log shaped like the province simulation's:
//! streams of ten events, one command id per append (with the correlation id set to it, as
//! the engine does), a few dozen event types and a few thousand actors, payloads of about
//! 300 bytes. Prints the resident-set growth per event after the appends, with the store
//! still open.
//!
//! ```text
//! cargo run --release -p caseflow-store --example memory_footprint [events]
//! ```

use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

const EVENTS_PER_STREAM: u64 = 10;

/// A field of /proc/self/status in kB (0 where there is none).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn request(stream: u64, version: u64) -> AppendRequest {
    let n = stream << 8 | version;
    let command_id = Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x9000_0000_0000_0000 | n);
    let payload = format!(
        "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{stream:012x}\",\"at\":\"2026-03-01T09:00:00Z\",\
         \"channel\":\"hotline\",\"kind\":\"complaint\",\"category\":\"land-use\",\
         \"locality\":\"loc-zhongshan\",\"village\":\"vil-wenhuagong\",\
         \"due_at\":\"2026-03-08T09:00:00Z\",\"summary\":\"a report about case {stream}, step {version}\",\
         \"lead\":\"team-{}\",\"note\":\"routed by the room on duty\"}}",
        stream % 97
    );
    AppendRequest {
        stream_id: format!("case-0190a3b4-5c6d-7e8f-9a0b-{stream:012x}"),
        expected: ExpectedVersion::Exact(version - 1),
        events: vec![NewEvent {
            event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x8000_0000_0000_0000 | n),
            event_type: format!("CaseStep{}", version % 24),
            schema_version: 1,
            payload: payload.into_bytes().into(),
            metadata: Metadata {
                actor: format!("room-{}/clerk", stream % 3000),
                command_id: Some(command_id),
                correlation_id: Some(command_id),
                causation_id: None,
            },
        }],
        recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap()
            + chrono::Duration::seconds(n as i64),
        command_id: Some(command_id),
    }
}

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let streams = events / EVENTS_PER_STREAM;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = MemoryStore::new();
    let before = status_kb("VmRSS:");
    runtime.block_on(async {
        // Interleave the streams, as cases of a simulation do.
        for version in 1..=EVENTS_PER_STREAM {
            for stream in 0..streams {
                store
                    .append(request(stream, version))
                    .await
                    .expect("append");
            }
        }
    });
    let held = status_kb("VmRSS:").saturating_sub(before) * 1024;
    let written = streams * EVENTS_PER_STREAM;
    println!(
        "{written} events in {streams} streams: held {:.0} MB = {:.0} bytes/event (peak RSS {:.0} MB)",
        held as f64 / 1048576.0,
        held as f64 / written as f64,
        status_kb("VmHWM:") as f64 / 1024.0
    );
    // Keep the store alive until the figure is taken.
    drop(store);
}
