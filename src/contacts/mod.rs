//! Reporter protection (crypto-shredding): each named reporter's contact is sealed with
//! that reporter's own data key before anything is stored; data keys live in a key store
//! apart from the log, wrapped by the operator's master key. Reading a contact is a
//! recorded reveal; erasing one destroys the key, so the ciphertext the hash chain covers
//! stays in place and can never be opened again. docs/design.md ("Reporter contacts").

pub mod contract;
mod error;
mod keystore;
mod master;
#[cfg(feature = "postgres")]
mod postgres;
mod seal;
mod vault;

pub use error::KeyError;
pub use keystore::{KeyState, KeyStore, MemoryKeyStore, SqliteKeyStore, key_store_path};
pub use master::{
    DataKey, KEY_BYTES, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, MasterKey, demo_master_key_path,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresKeyStore;
pub use seal::{SEAL_FORMAT, open as open_sealed, seal};
pub use vault::KeyStoreConfig;
pub(crate) use vault::{KeyTarget, Opened, Vault};
