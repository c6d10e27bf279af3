//! Progress of long operations (rebuild, export, range audits), for a terminal's progress bar
//! or a service's status page. The engine reports; it never draws.

/// Receives progress: how much there is to do, then how much is done.
pub trait Progress: Send + Sync {
    /// The amount of work (records, cases) once it is known.
    fn total(&self, total: u64);
    /// That `done` units are finished so far (monotonic).
    fn done(&self, done: u64);
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn total(&self, _total: u64) {}
    fn done(&self, _done: u64) {}
}
