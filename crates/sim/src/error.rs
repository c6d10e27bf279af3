//! Typed errors of the simulator.

use std::path::PathBuf;

use caseflow::EngineError;
use caseflow::domain::{CommandKind, DomainError, Stage};

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
    /// Caller error: a field is missing, unknown, of the wrong type or out of range, or names
    /// something the run's district does not have.
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

/// Why the model could not take a workflow step through the domain. Each variant means the
/// simulator's model asked for something the domain does not offer: a bug of the model
/// (fatal for the run), never of the scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseworkError {
    /// The domain lists no such command for the case now.
    #[error("{kind} is not among the commands the domain allows in stage {stage}")]
    NotOffered {
        /// The command asked for.
        kind: CommandKind,
        /// The case's stage.
        stage: Stage,
    },
    /// The domain refused the command the model built from its draft.
    #[error("{kind} refused: {source}")]
    Refused {
        /// The command.
        kind: CommandKind,
        /// The domain's reason.
        #[source]
        source: DomainError,
    },
}

/// Why a simulation run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Caller error: the scenario is unusable (the error names the field).
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
    /// Fatal for the run: the model could not take a step through the domain (a bug of the
    /// model, named with the case and the time).
    #[error("simulated case #{case_no} at {at}: {source}")]
    Model {
        /// Sequence number of the simulated case.
        case_no: u64,
        /// Local time of the step.
        at: String,
        /// What the domain said.
        #[source]
        source: CaseworkError,
    },
    /// Fatal for the run: the engine refused a command the model's domain state accepted,
    /// so the engine and the model disagree (names the case and the command).
    #[error("engine refused simulated {command} for case #{case_no} at {at}: {source}")]
    EngineRejected {
        /// Sequence number of the simulated case.
        case_no: u64,
        /// The command's name.
        command: &'static str,
        /// Local time of the step.
        at: String,
        /// The engine's error.
        #[source]
        source: Box<EngineError>,
    },
    /// Fatal for the run: the engine's deadline watcher and the model's urged different
    /// deadlines at the same midnight.
    #[error("at {at} the engine's deadline watcher and the model disagree: {detail}")]
    WatcherDisagrees {
        /// Local time of the watcher pass.
        at: String,
        /// Which urgings differ.
        detail: String,
    },
    /// Fatal for the run: the thread running the model alongside the engine stopped
    /// without finishing (it panicked or was cancelled).
    #[error("the model's thread stopped: {0}")]
    ModelThread(String),
    /// The engine or its store failed: [`EngineError::is_retryable`] tells whether trying
    /// again may help (a locked database, a full disk), otherwise it is fatal.
    #[error("engine failure: {0}")]
    Engine(#[from] EngineError),
    /// Retryable: writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    /// Whether the error is the caller's to fix (scenario, options), as opposed to a failure
    /// of the model, the engine or the file system.
    pub fn is_caller_error(&self) -> bool {
        match self {
            SimError::Scenario(_) | SimError::Option { .. } => true,
            SimError::Engine(e) => e.is_caller_error(),
            _ => false,
        }
    }
}
