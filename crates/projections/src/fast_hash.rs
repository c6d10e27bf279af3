//! A fast, deterministic hasher for the read models' in-memory maps.
//!
//! The maps are keyed by case ids and assignees that come from our own event log, not from
//! an attacker, so the standard library's SipHash (built to resist hash flooding) buys
//! nothing here and was a measurable part of a rebuild: every event looks up its case in
//! the fold and in each projection, and the to-do model looks up every assignee of every
//! duty. `foldhash` (the hasher hashbrown defaults to), in its `quality` variant so that
//! sequential UUIDs spread over the low bits that pick a bucket, is fast and mixes well; its
//! fixed-seed state keeps hashing independent of any process-wide randomness.

/// Builds the fast hashers (fixed seed: the same keys hash the same in every run).
pub(crate) type FastState = foldhash::quality::FixedState;

/// A `HashMap` with the fast hasher.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, FastState>;

/// A `HashSet` with the fast hasher.
pub(crate) type HashSet<T> = std::collections::HashSet<T, FastState>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_uuids_spread_over_the_low_bits() {
        // Ids that differ only in their last byte must not collide in the low bits that
        // pick a bucket, or every lookup in a large map would walk one long probe chain.
        let state = FastState::default();
        let mut low: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
        for i in 0..256u128 {
            let id = uuid::Uuid::from_u128(0x0000_0000_0000_be7c_0000_0000_0000_0000 | i);
            low.insert(state.hash_one(id) & 0xfff);
        }
        assert!(
            low.len() > 200,
            "only {} distinct low-bit patterns",
            low.len()
        );
    }

    #[test]
    fn strings_that_differ_by_a_trailing_zero_hash_apart() {
        let state = FastState::default();
        assert_ne!(state.hash_one("ab"), state.hash_one("ab\0"));
    }
}
