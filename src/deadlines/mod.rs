//! Deadlines: the engine's read model of every open time limit (`index`), and the watcher
//! that urges the missed ones (`watcher`). The read model only knows what is due when; the
//! watcher decides nothing itself either: the domain's `urgeable` says what may be urged,
//! its `UrgeOverdue` rule says by whom, and the engine executes the command.

mod index;
mod watcher;

pub use index::{DEADLINE_PROJECTION, DeadlineProjection, WatchedDeadline};
pub use watcher::{Urged, WATCHER_ROLE, WatchReport, urge_command_id, urging_note};
