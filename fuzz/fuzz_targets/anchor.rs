//! Proof and anchor parsing: the same text as a signed head (verified with its own key) and
//! as case evidence (checked against a head of its own claims). Proptest twin:
//! crates/store/tests/hostile_proofs.rs.
#![no_main]

use caseflow_store::tree::{Evidence, SignedTreeHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(head) = SignedTreeHead::from_json(text) {
        if let Ok(checked) = head.verify(None) {
            let _ = checked.tree_size;
        }
    }
    if let Ok(evidence) = Evidence::from_json(text) {
        let mut root = [0u8; 32];
        let _ = hex_decode(&evidence.root_hash, &mut root);
        let head = caseflow_store::tree::TreeHead {
            tree_size: evidence.tree_size,
            root_hash: root,
        };
        let _ = evidence.check(&head);
    }
});

fn hex_decode(text: &str, out: &mut [u8; 32]) -> Option<()> {
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(())
}
