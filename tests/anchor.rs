//! The engine's anchor API on both backends: signed heads the engine publishes to a file
//! sink verify and are extended by later commands; a case's evidence checks offline.

mod common;

use std::sync::Arc;

use caseflow::store::tree::{KeyPair, SignedTreeHead};
use caseflow::{FileHeadSink, HeadSink};
use common::*;

#[tokio::test]
async fn published_heads_verify_and_the_log_extends_them() {
    for backend in BACKENDS {
        let fx = Fixture::new(backend);
        let engine = fx.open().await;
        let key = KeyPair::from_seed([3u8; 32]);
        let heads = fx.dir.path().join("heads.jsonl");
        let sink: Arc<dyn HeadSink> = Arc::new(FileHeadSink::new(&heads));

        let first = engine
            .publish_head(&key, sink.clone())
            .await
            .expect("publish");
        assert_eq!(first.tree_size, 0, "{backend:?}: the empty log");
        walk_to_plan(&engine, &fx.clock, case_id(1), t0()).await;
        let second = engine
            .publish_head(&key, sink.clone())
            .await
            .expect("publish");
        assert!(second.tree_size > 0);

        let lines: Vec<SignedTreeHead> = std::fs::read_to_string(&heads)
            .expect("sink file")
            .lines()
            .map(|l| SignedTreeHead::from_json(l).expect("one head per line"))
            .collect();
        assert_eq!(lines, vec![first.clone(), second.clone()], "{backend:?}");

        walk_to_plan(&engine, &fx.clock, case_id(2), t0()).await;
        for head in [&first, &second] {
            let check = engine
                .check_anchor(head, Some(&key.public()))
                .await
                .expect("anchor usable");
            assert!(check.holds(), "{backend:?}: {:?}", check.findings);
        }
        let outcome = engine
            .verify_with_anchor(Some((&second, Some(&key.public()))))
            .await
            .expect("verify");
        assert!(
            outcome.tree.as_ref().is_some_and(|t| t.is_intact()),
            "{backend:?}"
        );
        assert!(
            outcome.anchor.as_ref().is_some_and(|a| a.holds()),
            "{backend:?}"
        );

        let evidence = engine
            .prove_case(case_id(1), None, &second, Some(&key.public()))
            .await
            .expect("evidence");
        let anchored = second.verify(Some(&key.public())).expect("signature");
        assert_eq!(evidence.check(&anchored), Ok(evidence.entries.len()));
        assert!(!evidence.entries.is_empty());

        let stranger = KeyPair::from_seed([4u8; 32]);
        assert!(
            engine
                .check_anchor(&second, Some(&stranger.public()))
                .await
                .is_err()
        );
    }
}
