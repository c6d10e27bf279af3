//! Injected time. Nothing in the engine reads the wall clock except through a [`Clock`], so a
//! test or a simulation can drive time by hand and get byte-identical event logs.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, for services.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Sets the time. Moving backwards is allowed (tests of time travel need it); the engine
    /// never relies on the clock being monotonic.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = to;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut guard = self.lock();
        *guard += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned lock only means another thread panicked while holding a plain value;
        // the value itself is still a valid time, so keep going with it.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc
            .with_ymd_and_hms(2025, 3, 3, 1, 0, 0)
            .single()
            .expect("valid time");
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::hours(5));
        assert_eq!(clock.now(), start + Duration::hours(5));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
