//! Typed errors of the simulator.

use std::path::PathBuf;

/// Why a scenario could not be used. All variants are caller errors: fix the file and retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Caller error: the file is not valid TOML (the message gives line and column).
    #[error("scenario is not valid TOML: {message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// Caller error: a field is missing, unknown, of the wrong type or out of range.
    #[error("scenario field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field, e.g. `outcomes.accept` or `arrivals.channel[2].per_year`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Caller error (or retryable if the file system is flaky): the file could not be read.
    #[error("cannot read scenario {path}: {message}")]
    Io {
        /// The path that was read.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
}

/// Why a simulation run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Caller error: the scenario is unusable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Caller error: options that do not fit together (e.g. zero replications).
    #[error("invalid option {option}: {reason}")]
    Option {
        /// The option.
        option: String,
        /// Why.
        reason: String,
    },
    /// Fatal for the run: the engine rejected a command the simulator issued, which means the
    /// simulator's workflow model and the domain rules disagree; the message names the case and
    /// the command.
    #[error("engine rejected simulated command {command} for case #{case_no} at {at}: {message}")]
    EngineRejected {
        /// Sequence number of the simulated case.
        case_no: u64,
        /// The command's name.
        command: String,
        /// Virtual time.
        at: String,
        /// The engine's error.
        message: String,
    },
    /// Retryable or fatal depending on the cause (disk full, locked database): the engine or
    /// its store failed.
    #[error("engine failure: {0}")]
    Engine(String),
    /// Retryable: writing an output file failed.
    #[error("cannot write {path}: {message}")]
    Output {
        /// The path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
}
