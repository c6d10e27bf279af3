//! Proof and anchor parsing never panics on hostile input: arbitrary text, and a real signed
//! head or real evidence with bytes flipped, cut or inserted, parse to a value or a typed
//! error, and checking whatever parses is an answer, never a panic. A head whose signed
//! fields changed never verifies. (`fuzz/fuzz_targets/anchor.rs` runs the same bodies under
//! libFuzzer.)

use caseflow_store::contract::request;
use caseflow_store::tree::{Evidence, KeyPair, SignedTreeHead, TreeHead};
use caseflow_store::{EventStore, ExpectedVersion, MemoryStore};
use chrono::TimeZone;
use proptest::prelude::*;

struct Seeds {
    key: KeyPair,
    head: SignedTreeHead,
    tree: TreeHead,
    evidence: Evidence,
}

fn seeds() -> &'static Seeds {
    static SEEDS: std::sync::OnceLock<Seeds> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let store = MemoryStore::new();
            for i in 0..12u64 {
                let stream = format!("s-{}", i % 3);
                store
                    .append(request(&stream, ExpectedVersion::Any, 1 + i % 2))
                    .await
                    .expect("append");
            }
            let tree = store.tree_head().await.expect("head");
            let key = KeyPair::from_seed([7; 32]);
            let at = chrono::Utc
                .timestamp_opt(1_767_225_600, 0)
                .single()
                .expect("time");
            let head = key.sign(tree, at);
            let evidence = Evidence::build(&store, "s-1", None, &tree)
                .await
                .expect("evidence");
            Seeds {
                key,
                head,
                tree,
                evidence,
            }
        })
    })
}

fn mutate(text: &str, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for (at, byte, kind) in edits {
        let i = at.index(bytes.len().max(1));
        match kind {
            0 if !bytes.is_empty() => {
                let last = bytes.len() - 1;
                bytes[i.min(last)] = *byte;
            }
            1 => bytes.truncate(i),
            _ => bytes.insert(i.min(bytes.len()), *byte),
        }
    }
    bytes
}

/// The body of the fuzz target: parse a head and evidence from the same text, and check
/// whatever parses.
fn parse_and_check(text: &str) {
    let s = seeds();
    if let Ok(head) = SignedTreeHead::from_json(text) {
        let _ = head.verify(None);
        let _ = head.verify(Some(&s.key.public()));
    }
    if let Ok(evidence) = Evidence::from_json(text) {
        let _ = evidence.check(&s.tree);
    }
}

#[test]
fn the_seeds_verify() {
    let s = seeds();
    assert_eq!(s.head.verify(Some(&s.key.public())).expect("head"), s.tree);
    let parsed = Evidence::from_json(&s.evidence.to_json()).expect("evidence");
    assert!(parsed.check(&s.tree).expect("check") > 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_arbitrary_text_as_a_head_or_evidence_never_panics(text in "\\PC{0,300}") {
        parse_and_check(&text);
    }

    #[test]
    fn a_real_head_with_changed_bytes_never_panics_and_never_verifies_changed(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..5),
    ) {
        let s = seeds();
        let bytes = mutate(&s.head.to_json(), &edits);
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()); };
        parse_and_check(&text);
        if let Ok(head) = SignedTreeHead::from_json(&text) {
            let signed_fields_same = head.tree_size == s.head.tree_size
                && head.root_hash.eq_ignore_ascii_case(&s.head.root_hash)
                && head.timestamp_ms == s.head.timestamp_ms;
            if let Ok(checked) = head.verify(Some(&s.key.public())) {
                prop_assert!(signed_fields_same, "a changed head verified: {head:?}");
                prop_assert_eq!(checked, s.tree);
            }
        }
    }

    #[test]
    fn real_evidence_with_changed_bytes_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..5),
    ) {
        let bytes = mutate(&seeds().evidence.to_json(), &edits);
        if let Ok(text) = String::from_utf8(bytes) {
            parse_and_check(&text);
        }
    }
}
