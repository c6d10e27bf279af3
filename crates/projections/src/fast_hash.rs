//! A fast, deterministic hasher for the read models' in-memory maps.
//!
//! The maps are keyed by case ids and assignees that come from our own event log, not from
//! an attacker, so the standard library's SipHash (built to resist hash flooding) buys
//! nothing here and was a measurable part of a rebuild: every event looks up its case in
//! the fold and in each projection, and the to-do model looks up every assignee of every
//! duty. This is the multiply-rotate hash rustc uses (FxHash), finished with the MurmurHash3
//! 64-bit mixer so that keys differing only in their high bytes (sequential UUIDs differ in
//! their last bytes, which land in the high bits of a little-endian word) still spread over
//! the low bits hashbrown uses to pick a bucket.

use std::hash::{BuildHasherDefault, Hasher};

/// The hasher state; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" and "ab\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3's fmix64: every input bit reaches every output bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Builds [`FastHasher`]s.
pub(crate) type FastState = BuildHasherDefault<FastHasher>;

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
