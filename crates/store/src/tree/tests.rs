//! RFC 9162 / RFC 6962 test vectors (the Certificate Transparency reference suite's eight
//! leaves, roots, inclusion and consistency proofs) and proof round trips.

use super::*;

fn hd(text: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).expect("test vector hex");
    out
}

/// The reference suite's leaf inputs.
fn leaf_inputs() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| hex::decode(h).expect("hex"))
    .collect()
}

/// MTH of the first n leaves, n = 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// A tree of the given leaves kept the way backends keep it, with proofs made from it.
struct Tree {
    nodes: std::collections::HashMap<TreeNode, Hash>,
    frontier: Frontier,
}

impl Tree {
    fn of(leaves: &[Hash]) -> Tree {
        let mut t = Tree {
            nodes: Default::default(),
            frontier: Frontier::new(),
        };
        for l in leaves {
            let nodes = &mut t.nodes;
            t.frontier.push(*l, |n, h| {
                nodes.insert(n, h);
            });
        }
        t
    }

    fn range(&self, (a, b): (u64, u64)) -> Hash {
        let hashes: Vec<Hash> = perfect_cover(a, b).iter().map(|n| self.nodes[n]).collect();
        fold_cover(&hashes).unwrap_or_else(empty_root)
    }

    fn root_at(&self, size: u64) -> Hash {
        if size == 0 {
            empty_root()
        } else {
            self.range((0, size))
        }
    }

    fn inclusion(&self, leaf: u64, size: u64) -> InclusionProof {
        InclusionProof {
            leaf_index: leaf,
            tree_size: size,
            path: inclusion_ranges(leaf, size)
                .into_iter()
                .map(|r| self.range(r))
                .collect(),
        }
    }

    fn consistency(&self, first: u64, second: u64) -> ConsistencyProof {
        ConsistencyProof {
            first,
            second,
            path: consistency_ranges(first, second)
                .into_iter()
                .map(|r| self.range(r))
                .collect(),
        }
    }
}

fn reference_tree() -> (Vec<Hash>, Tree) {
    let leaves: Vec<Hash> = leaf_inputs().iter().map(|d| leaf_hash(d)).collect();
    let tree = Tree::of(&leaves);
    (leaves, tree)
}

#[test]
fn roots_match_the_rfc_vectors_for_every_size() {
    let (leaves, tree) = reference_tree();
    assert_eq!(empty_root(), hd(ROOTS[0]));
    for n in 0..=8 {
        assert_eq!(tree.root_at(n), hd(ROOTS[n as usize]), "root of {n} leaves");
        let prefix = Tree::of(&leaves[..n as usize]);
        assert_eq!(
            prefix.frontier.root(),
            hd(ROOTS[n as usize]),
            "frontier of {n}"
        );
    }
}

#[test]
fn inclusion_proofs_match_the_rfc_vectors() {
    let (leaves, tree) = reference_tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (leaf, size, path) in cases {
        let proof = tree.inclusion(leaf, size);
        let expected: Vec<Hash> = path.iter().map(|h| hd(h)).collect();
        assert_eq!(proof.path, expected, "PATH({leaf}, D[{size}])");
        verify_inclusion(&proof, &leaves[leaf as usize], &tree.root_at(size))
            .expect("reference proof verifies");
    }
}

#[test]
fn consistency_proofs_match_the_rfc_vectors() {
    let (_, tree) = reference_tree();
    let cases: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (first, second, path) in cases {
        let proof = tree.consistency(first, second);
        let expected: Vec<Hash> = path.iter().map(|h| hd(h)).collect();
        assert_eq!(proof.path, expected, "PROOF({first}, D[{second}])");
        verify_consistency(&proof, &tree.root_at(first), &tree.root_at(second))
            .expect("reference proof verifies");
    }
}

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn every_inclusion_proof_up_to_70_leaves_verifies_and_any_changed_hash_fails() {
    let all = leaves(70);
    let tree = Tree::of(&all);
    for size in 1..=70u64 {
        let root = tree.root_at(size);
        for leaf in 0..size {
            let proof = tree.inclusion(leaf, size);
            verify_inclusion(&proof, &all[leaf as usize], &root).expect("verifies");
            let mut other = all[leaf as usize];
            other[0] ^= 1;
            assert!(verify_inclusion(&proof, &other, &root).is_err());
            for i in 0..proof.path.len() {
                let mut bad = proof.clone();
                bad.path[i][7] ^= 0x80;
                assert!(verify_inclusion(&bad, &all[leaf as usize], &root).is_err());
            }
            let mut short = proof.clone();
            if short.path.pop().is_some() {
                assert!(verify_inclusion(&short, &all[leaf as usize], &root).is_err());
            }
        }
    }
}

#[test]
fn every_consistency_proof_up_to_70_leaves_verifies_and_any_changed_hash_fails() {
    let all = leaves(70);
    let tree = Tree::of(&all);
    for second in 0..=70u64 {
        for first in 0..=second {
            let proof = tree.consistency(first, second);
            let (r1, r2) = (tree.root_at(first), tree.root_at(second));
            verify_consistency(&proof, &r1, &r2).expect("verifies");
            for i in 0..proof.path.len() {
                let mut bad = proof.clone();
                bad.path[i][3] ^= 1;
                assert!(
                    verify_consistency(&bad, &r1, &r2).is_err(),
                    "{first}->{second} hash {i}"
                );
            }
            if first > 0 && first < second {
                let mut r1x = r1;
                r1x[0] ^= 1;
                assert!(verify_consistency(&proof, &r1x, &r2).is_err());
                let mut r2x = r2;
                r2x[0] ^= 1;
                assert!(verify_consistency(&proof, &r1, &r2x).is_err());
            }
        }
    }
}

#[test]
fn a_tree_that_forked_is_not_consistent_with_the_original() {
    let all = leaves(20);
    let original = Tree::of(&all[..12]);
    let mut edited = all.clone();
    edited[9] = leaf_hash(b"rewritten");
    let forked = Tree::of(&edited);
    let proof = forked.consistency(12, 20);
    assert!(verify_consistency(&proof, &original.root_at(12), &forked.root_at(20)).is_err());
}

#[test]
fn signed_heads_verify_and_any_change_is_caught() {
    let key = KeyPair::from_seed([7u8; 32]);
    let head = TreeHead {
        tree_size: 42,
        root_hash: hd(ROOTS[8]),
    };
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00.123Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let signed = key.sign(head, at);
    let text = signed.to_json();
    let parsed = SignedTreeHead::from_json(&text).expect("parses");
    assert_eq!(parsed.verify(Some(&key.public())), Ok(head));
    assert_eq!(parsed.verify(None), Ok(head));
    let mut bigger = parsed.clone();
    bigger.tree_size += 1;
    assert_eq!(bigger.verify(None), Err(HeadError::BadSignature));
    let mut moved = parsed.clone();
    moved.timestamp_ms += 1;
    assert!(moved.verify(None).is_err());
    let other = KeyPair::from_seed([8u8; 32]);
    assert!(matches!(
        parsed.verify(Some(&other.public())),
        Err(HeadError::WrongKey { .. })
    ));
    let mut resigned = other.sign(head, at);
    resigned.public_key = key.public().to_hex();
    assert_eq!(
        resigned.verify(Some(&key.public())),
        Err(HeadError::BadSignature)
    );
    assert!(SignedTreeHead::from_json("{}").is_err());
    assert!(PublicKey::from_hex("zz").is_err());
}
