//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): which subtrees they are
//! made of, and how to check them with nothing but the proof, a leaf and the roots.

use serde::{Deserialize, Serialize};

use super::{Hash, node_hash, split_point};

/// Why a proof does not hold. Every variant is a **caller** error (the evidence is wrong or
/// does not belong to the heads given); none is retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {leaf_index} is outside a tree of {tree_size} leaves")]
    LeafOutOfRange {
        /// The leaf index claimed.
        leaf_index: u64,
        /// The tree size claimed.
        tree_size: u64,
    },
    /// The second tree is smaller than the first: a log never shrinks.
    #[error("tree of {second} leaves cannot extend a tree of {first} leaves")]
    Shrunk {
        /// The older size.
        first: u64,
        /// The newer size.
        second: u64,
    },
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("proof has the wrong number of hashes ({found})")]
    WrongLength {
        /// Hashes in the proof.
        found: usize,
    },
    /// The hashes do not lead to the expected root: the leaf, the proof or the log changed.
    #[error("proof leads to root {computed} but the head's root is {expected}")]
    RootMismatch {
        /// Root the head gives (hex).
        expected: String,
        /// Root the proof computes (hex).
        computed: String,
    },
}

/// Proof that one leaf is in a tree of a given size (RFC 9162 `PATH(m, D[n])`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// 0-based leaf index (= position − 1).
    pub leaf_index: u64,
    /// Leaves in the tree the proof is for.
    pub tree_size: u64,
    /// Sibling subtree roots from the leaf up, hex-encoded in JSON.
    #[serde(with = "hex_list")]
    pub path: Vec<Hash>,
}

/// Proof that a tree of `second` leaves extends one of `first` (RFC 9162 `PROOF(m, D[n])`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub first: u64,
    /// Size of the newer tree.
    pub second: u64,
    /// Subtree roots, hex-encoded in JSON.
    #[serde(with = "hex_list")]
    pub path: Vec<Hash>,
}

/// The leaf ranges `[start, end)` whose roots make `PATH(leaf, D[0:size])`, in proof order
/// (from the leaf up). Empty when the leaf is out of range.
pub fn inclusion_ranges(leaf: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if leaf >= size {
        return out;
    }
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if leaf - lo < k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The leaf ranges whose roots make `PROOF(first, D[0:second])`, in proof order. Empty when
/// `first` is 0 or not smaller than `second` (no hashes are needed then).
pub fn consistency_ranges(first: u64, second: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if first == 0 || first >= second {
        return out;
    }
    let (mut lo, mut hi, mut m, mut whole) = (0u64, second, first, true);
    loop {
        let n = hi - lo;
        if m == n {
            // The old tree's root is a subtree of the new one; the verifier knows it
            // already, unless it is only part of an old subtree.
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    out
}

fn mismatch(expected: &Hash, computed: &Hash) -> ProofError {
    ProofError::RootMismatch {
        expected: hex::encode(expected),
        computed: hex::encode(computed),
    }
}

/// Shifts both indexes right until `fn_`'s lowest bit is set or it is 0 (RFC 9162 wording).
fn shift_until_odd(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// Checks an inclusion proof for `leaf` (a leaf hash) against `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    proof: &InclusionProof,
    leaf: &Hash,
    root: &Hash,
) -> Result<(), ProofError> {
    if proof.leaf_index >= proof.tree_size {
        return Err(ProofError::LeafOutOfRange {
            leaf_index: proof.leaf_index,
            tree_size: proof.tree_size,
        });
    }
    let wrong_length = || ProofError::WrongLength {
        found: proof.path.len(),
    };
    let (mut fn_, mut sn) = (proof.leaf_index, proof.tree_size - 1);
    let mut r = *leaf;
    for p in &proof.path {
        if sn == 0 {
            return Err(wrong_length());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            shift_until_odd(&mut fn_, &mut sn);
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length());
    }
    if r != *root {
        return Err(mismatch(root, &r));
    }
    Ok(())
}

/// Checks that the tree of `proof.second` leaves with root `second_root` extends the tree of
/// `proof.first` leaves with root `first_root` (RFC 9162 §2.1.4.2). Any tree extends the
/// empty one; a tree extends itself exactly when the roots are equal.
pub fn verify_consistency(
    proof: &ConsistencyProof,
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    let (first, second) = (proof.first, proof.second);
    if second < first {
        return Err(ProofError::Shrunk { first, second });
    }
    let wrong_length = || ProofError::WrongLength {
        found: proof.path.len(),
    };
    if first == 0 || first == second {
        if !proof.path.is_empty() {
            return Err(wrong_length());
        }
        if first == second && first_root != second_root {
            return Err(mismatch(first_root, second_root));
        }
        return Ok(());
    }
    if proof.path.is_empty() {
        return Err(wrong_length());
    }
    let mut path = proof.path.clone();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return Err(wrong_length());
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_until_odd(&mut fn_, &mut sn);
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length());
    }
    if fr != *first_root {
        return Err(mismatch(first_root, &fr));
    }
    if sr != *second_root {
        return Err(mismatch(second_root, &sr));
    }
    Ok(())
}

pub(crate) mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(hashes: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for h in hashes {
            seq.serialize_element(&hex::encode(h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(t, &mut out).map_err(D::Error::custom)?;
                Ok(out)
            })
            .collect()
    }
}

pub(crate) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}
