//! The contract every [`KeyStore`] keeps, as one suite each implementation runs (memory and
//! SQLite in this crate's unit tests, PostgreSQL in `tests/postgres_keys.rs`): one key per
//! reporter, keys read back by id, destruction that reaches every key of the reporter and
//! says when, a new key for an erased reporter who reports again, the log binding, and
//! rotation that keeps every live key readable. Panics (it is test support) naming the broken
//! promise.

use caseflow_domain::ReporterHandle;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::error::KeyError;
use super::keystore::{KeyState, KeyStore};
use super::master::{DataKey, MasterKey};

fn live(state: KeyState, what: &str) -> DataKey {
    match state {
        KeyState::Live(key) => key,
        KeyState::Destroyed { .. } => panic!("{what}: expected a live key, found it destroyed"),
    }
}

fn same(a: &DataKey, b: &DataKey) -> bool {
    a.bytes.as_ref() == b.bytes.as_ref()
}

/// Runs the whole contract on an empty key store; `new_master` is a master key the store
/// does not have yet (rotation moves to it).
pub async fn key_store_contract(keys: &dyn KeyStore, new_master: &MasterKey) {
    let at: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 30, 0)
        .single()
        .expect("a valid time");
    let alice = ReporterHandle(Uuid::from_u128(0xa11ce));
    let bob = ReporterHandle(Uuid::from_u128(0xb0b));
    let carol = ReporterHandle(Uuid::from_u128(0xca201));

    // One key per reporter, the same on every call; another reporter's is another key.
    let (alice_id, alice_key) = keys.reporter_key(alice).await.expect("alice's key");
    let (again_id, again_key) = keys.reporter_key(alice).await.expect("alice's key again");
    assert_eq!(alice_id, again_id, "a reporter has one key");
    assert!(
        same(&alice_key, &again_key),
        "a reporter's key keeps its bytes"
    );
    let (bob_id, bob_key) = keys.reporter_key(bob).await.expect("bob's key");
    assert_ne!(alice_id, bob_id, "two reporters share no key id");
    assert!(
        !same(&alice_key, &bob_key),
        "two reporters share no key material"
    );

    // Keys read back by id; an id never made is UnknownKey.
    let read = live(
        keys.data_key(&alice_id).await.expect("read"),
        "alice's key by id",
    );
    assert!(
        same(&read, &alice_key),
        "a key read by id is the key handed out"
    );
    assert!(matches!(
        keys.data_key("dk-never-made").await,
        Err(KeyError::UnknownKey { .. })
    ));

    // The binding: none until recorded, then the first one recorded stays.
    assert_eq!(keys.binding().await.expect("binding"), None);
    keys.bind("first-event").await.expect("bind");
    keys.bind("another-event").await.expect("bind again");
    assert_eq!(
        keys.binding().await.expect("binding").as_deref(),
        Some("first-event")
    );

    // Destruction: every key of the reporter, plus the ids given (even ones the store never
    // handed out, e.g. a key whose assignment was lost), with the time; others untouched.
    keys.flush().await.expect("flush");
    keys.destroy(alice, &["dk-lost-assignment".to_owned()], at)
        .await
        .expect("destroy");
    for id in [&alice_id, &"dk-lost-assignment".to_owned()] {
        match keys.data_key(id).await.expect("read a destroyed key") {
            KeyState::Destroyed { at: when } => assert_eq!(when, Some(at), "when {id} went"),
            KeyState::Live(_) => panic!("{id} is still live after its destruction"),
        }
    }
    keys.destroy(alice, std::slice::from_ref(&alice_id), at)
        .await
        .expect("destroying twice is harmless");
    let bob_read = live(
        keys.data_key(&bob_id).await.expect("read"),
        "bob after alice went",
    );
    assert!(same(&bob_read, &bob_key));

    // An erased reporter who reports again gets a new key, never the destroyed one.
    let (alice_new, _) = keys.reporter_key(alice).await.expect("a new key for alice");
    assert_ne!(
        alice_new, alice_id,
        "a destroyed key is never handed out again"
    );

    // Rotation keeps every live key readable with its bytes, and says how many it rewrapped.
    let (carol_id, carol_key) = keys.reporter_key(carol).await.expect("carol's key");
    let rewrapped = keys.rotate(new_master).await.expect("rotate");
    assert!(
        rewrapped >= 3,
        "rotation rewraps every live key (got {rewrapped})"
    );
    for (id, key) in [(&bob_id, &bob_key), (&carol_id, &carol_key)] {
        let after = live(keys.data_key(id).await.expect("read after rotation"), id);
        assert!(same(&after, key), "{id} keeps its bytes through a rotation");
    }
    keys.flush().await.expect("flush");
}
