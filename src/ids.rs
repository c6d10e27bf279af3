//! Injected identity and randomness. Event ids, generated case ids and retry jitter all come
//! from an [`IdGenerator`], so a seeded generator with a manual clock reproduces a run exactly.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

/// A source of unique ids (UUIDv7, time-ordered) and of random numbers for jitter.
pub trait IdGenerator: Send + Sync + std::fmt::Debug {
    /// A fresh UUIDv7 whose timestamp is `now` (the engine passes its injected clock's time).
    fn next_id(&self, now: DateTime<Utc>) -> Uuid;
    /// A uniformly distributed random number, used for retry jitter.
    fn next_u64(&self) -> u64;
    /// Fills `out` with secret material of one kind (reporters' data keys and key ids, or
    /// contact nonces). The default is the operating system's cryptographic random source.
    fn fill_secret(&self, kind: Secret, out: &mut [u8]) {
        use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
        let _ = kind;
        OsRng.fill_bytes(out);
    }
}

/// The kinds of secret material, each its own sequence in a seeded generator, so that the
/// n-th data key is the same whether keys are made one at a time (memory key store) or in
/// batches (SQLite key store): a seeded run writes the same log on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A data key and its id.
    DataKey,
    /// An AEAD nonce of a sealed contact.
    Nonce,
}

/// Random UUIDv7 from the operating system's random source, for services.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn next_id(&self, now: DateTime<Utc>) -> Uuid {
        let random = Uuid::new_v4().into_bytes();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&random[..10]);
        Builder::from_unix_timestamp_millis(millis_of(now), &tail).into_uuid()
    }

    fn next_u64(&self) -> u64 {
        Uuid::new_v4().as_u64_pair().0
    }
}

/// A deterministic generator: a SplitMix64 sequence from a seed. Ids are valid UUIDv7 whose
/// timestamp is the (virtual) time passed in and whose random bits come from the sequence,
/// so the same seed and the same times give the same ids.
///
/// Its key material ([`IdGenerator::fill_secret`]) is a separate SplitMix64 sequence from the
/// same seed, so seeded runs (tests, demos, simulations) write byte-identical logs even with
/// sealed contacts, and ids are the same as without them. It is predictable: never use
/// seeded ids where real reporters' contacts are stored.
#[derive(Debug)]
pub struct SeededIds {
    state: AtomicU64,
    key_secrets: AtomicU64,
    nonce_secrets: AtomicU64,
}

/// Separates the key-material sequence from the id sequence of the same seed.
const SECRETS_SALT: u64 = 0x5EC2_E7D0_C0A7_AC75;

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SeededIds {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
            key_secrets: AtomicU64::new(mix(seed ^ SECRETS_SALT)),
            nonce_secrets: AtomicU64::new(mix(seed ^ SECRETS_SALT.rotate_left(17))),
        }
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl IdGenerator for SeededIds {
    fn next_id(&self, now: DateTime<Utc>) -> Uuid {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut tail = [0u8; 10];
        tail[..8].copy_from_slice(&a);
        tail[8..].copy_from_slice(&b[..2]);
        Builder::from_unix_timestamp_millis(millis_of(now), &tail).into_uuid()
    }

    fn next_u64(&self) -> u64 {
        // fetch_add makes the sequence lock-free; with one caller it is exactly SplitMix64.
        let previous = self.state.fetch_add(GAMMA, Ordering::Relaxed);
        mix(previous.wrapping_add(GAMMA))
    }

    fn fill_secret(&self, kind: Secret, out: &mut [u8]) {
        let sequence = match kind {
            Secret::DataKey => &self.key_secrets,
            Secret::Nonce => &self.nonce_secrets,
        };
        for chunk in out.chunks_mut(8) {
            let previous = sequence.fetch_add(GAMMA, Ordering::Relaxed);
            let word = mix(previous.wrapping_add(GAMMA)).to_be_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Milliseconds since the Unix epoch, clamped to the 48 bits a UUIDv7 holds (times before
/// 1970 become 0).
fn millis_of(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF
}

/// A name-derived id (UUIDv8 over SHA-256 of the parts): the same parts always give the same
/// id. The deadline watcher uses it so that urging one missed deadline has one command id,
/// whichever process or restart issues it.
pub fn derived_id(namespace: &str, parts: &[&str]) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    for part in parts {
        // Length-prefix every part so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 1, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn seeded_ids_repeat_for_the_same_seed_and_time() {
        let a = SeededIds::new(7);
        let b = SeededIds::new(7);
        let xs: Vec<Uuid> = (0..5).map(|_| a.next_id(t0())).collect();
        let ys: Vec<Uuid> = (0..5).map(|_| b.next_id(t0())).collect();
        assert_eq!(xs, ys);
        let mut unique = xs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5, "ids must not repeat within a sequence");
    }

    #[test]
    fn seeded_ids_are_version_7_and_carry_the_virtual_time() {
        let ids = SeededIds::new(1);
        let id = ids.next_id(t0());
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let (secs, _nanos) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!(secs as i64, t0().timestamp());
    }

    #[test]
    fn different_seeds_give_different_ids() {
        assert_ne!(
            SeededIds::new(1).next_id(t0()),
            SeededIds::new(2).next_id(t0())
        );
    }

    #[test]
    fn random_ids_are_version_7() {
        let id = RandomIds.next_id(t0());
        assert_eq!(id.get_version_num(), 7);
        assert_ne!(RandomIds.next_id(t0()), id);
    }

    #[test]
    fn derived_ids_are_stable_and_part_sensitive() {
        let a = derived_id("ns", &["ab", "c"]);
        assert_eq!(a, derived_id("ns", &["ab", "c"]));
        assert_ne!(a, derived_id("ns", &["a", "bc"]));
        assert_eq!(a.get_version_num(), 8);
    }
}
