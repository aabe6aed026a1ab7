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

/// A change to the store, as `watch` streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvEvent {
    /// `key` was set to `value`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// `key` was deleted (only sent when it held a value).
    Delete {
        /// The key.
        key: String,
    },
}

/// How many changes `watch` keeps for a watcher that is behind; past it the watcher gets
/// `Lagged { missed }`.
pub use crate::limits::KV_WATCH_BACKLOG as WATCH_BACKLOG;

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
    /// Every change from now on to a key that starts with `prefix`, as it happens. The store
    /// never waits for a watcher: one more than [`WATCH_BACKLOG`] changes behind gets
    /// `Lagged { missed }` for those it lost.
    async fn watch(prefix: String) -> crate::Streaming<KvEvent>;
}
