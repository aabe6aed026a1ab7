//! `kv`: an in-memory key-value store of strings, shared by all of a server's clients.

use serde::{Deserialize, Serialize};

/// The name the key-value service is hosted under.
pub const NAME: &str = <KvClient as crate::Service>::NAME;

/// The most keys the built-in store holds, so that no client can fill the server's memory.
pub use crate::limits::KV_MAX_KEYS as MAX_KEYS;

/// Why a `set` was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    /// The store holds [`MAX_KEYS`] keys already and the key is new.
    #[error("store is full ({limit} keys): delete keys before adding new ones")]
    Full {
        /// The limit.
        limit: usize,
    },
}

/// A string key-value store.
#[crate::service(name = "kv")]
pub trait Kv {
    /// The value at `key`, if any.
    async fn get(key: String) -> Option<String>;
    /// Stores `value` at `key`; returns the value it replaced.
    async fn set(key: String, value: String) -> Result<Option<String>, KvError>;
    /// Removes `key`; returns the value it held.
    async fn delete(key: String) -> Option<String>;
    /// The keys that start with `prefix`, in order.
    async fn list(prefix: String) -> Vec<String>;
}
