//! The workflow steps the simulator takes, in the order it takes them.
//!
//! A [`Step`] is one domain command, issued by one actor on one case at one virtual time,
//! exactly as the model applied it to its own case state. Model-only, the steps are hashed
//! into a digest (the model's log); engine-driven, each step is executed by the engine as it
//! stands, so the engine's log follows the same order. Urgings the model's deadline watcher
//! took are marked: engine-driven, the engine's own watcher issues those (and the run checks
//! that the two agree).

use caseflow::domain::{Actor, Command};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One step: who, what, on which case, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Virtual time in hours since the start.
    pub at: f64,
    /// Sequence number of the case (1-based, in arrival order).
    pub case_no: u64,
    /// The issuer.
    pub actor: Actor,
    /// The command.
    pub command: Command,
    /// Taken by the deadline watcher at a local midnight (an `UrgeOverdue`).
    pub by_watcher: bool,
}

/// Running SHA-256 digest of a step log.
#[derive(Debug, Clone, Default)]
pub struct TraceDigest {
    hasher: Sha256,
    steps: u64,
}

impl TraceDigest {
    /// Adds one step (its JSON line, with time rounded to milliseconds).
    pub fn add(&mut self, step: &Step) {
        let ms = (step.at * 3_600_000.0).round() as i64;
        let command = serde_json::to_string(&step.command).unwrap_or_default();
        self.hasher
            .update(format!("{ms} {} {} {command}\n", step.case_no, step.actor).as_bytes());
        self.steps += 1;
    }

    /// Number of steps hashed.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Hex digest of everything added so far.
    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}
