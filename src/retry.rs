//! Bounded retry with jittered exponential backoff for optimistic-concurrency conflicts.
//! The jitter comes from the injected [`IdGenerator`](crate::IdGenerator), never from a
//! thread-local random source, so a seeded run retries with the same delays every time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::IdGenerator;

/// How often and how patiently a command is retried after a version conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles for each further attempt.
    pub base_delay_ms: u64,
    /// Upper bound of any single backoff.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay_ms: 1,
            max_delay_ms: 50,
        }
    }
}

impl RetryPolicy {
    /// The delay to wait after failed attempt number `attempt` (1-based): "full jitter", a
    /// uniform draw in `[0, min(max, base * 2^(attempt-1))]`. Full jitter spreads racing
    /// writers apart best (they do not wake in lockstep again).
    pub fn backoff(&self, attempt: u32, ids: &dyn IdGenerator) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_delay_ms);
        // Work in microseconds so small ceilings still get fine-grained jitter.
        let ceiling_us = ceiling.saturating_mul(1000);
        if ceiling_us == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(ids.next_u64() % (ceiling_us + 1))
    }

    /// Whether another attempt may follow failed attempt number `attempt` (1-based).
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SeededIds;

    #[test]
    fn backoff_stays_under_the_ceiling_and_repeats_for_a_seed() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 2,
            max_delay_ms: 10,
        };
        let a = SeededIds::new(3);
        let b = SeededIds::new(3);
        for attempt in 1..=6 {
            let da = policy.backoff(attempt, &a);
            assert_eq!(da, policy.backoff(attempt, &b));
            let ceiling = (2u64 << (attempt - 1)).min(10);
            assert!(
                da <= Duration::from_millis(ceiling),
                "{da:?} > {ceiling} ms"
            );
        }
    }

    #[test]
    fn retries_are_bounded() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.may_retry(1));
        assert!(policy.may_retry(2));
        assert!(!policy.may_retry(3));
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(
            !zero.may_retry(1),
            "zero attempts still means one try, no retry"
        );
    }
}
