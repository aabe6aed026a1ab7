//! Implementations of the built-in services, and [`add_builtin_services`] to host them all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rpc_core::limits::{ECHO_MAX_DELAY_MS, KV_MAX_KEYS};
use rpc_core::services::echo::Echo;
use rpc_core::services::health::{Health, ServerInfo};
use rpc_core::services::kv::{Kv, KvError};
use serde_bytes::ByteBuf;
use tarpc::context::Context;

use crate::Server;
use crate::stats::ServerStatus;

/// The `echo` service: no state.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoService;

impl Echo for EchoService {
    async fn ping(self, _: Context) {}

    async fn echo(self, _: Context, bytes: ByteBuf) -> ByteBuf {
        bytes
    }

    async fn delay(self, _: Context, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms.min(ECHO_MAX_DELAY_MS))).await;
    }
}

/// The `kv` service: one in-memory map shared by every connection of a server.
#[derive(Debug, Clone, Default)]
pub struct KvStore {
    map: Arc<Mutex<BTreeMap<String, String>>>,
}

impl KvStore {
    fn with_map<T>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-updated (each operation is a
        // single map call), so a poisoned lock is still safe to use.
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }
}

impl Kv for KvStore {
    async fn get(self, _: Context, key: String) -> Option<String> {
        self.with_map(|map| map.get(&key).cloned())
    }

    async fn set(self, _: Context, key: String, value: String) -> Result<Option<String>, KvError> {
        self.with_map(|map| {
            if map.len() >= KV_MAX_KEYS && !map.contains_key(&key) {
                return Err(KvError::Full { limit: KV_MAX_KEYS });
            }
            Ok(map.insert(key, value))
        })
    }

    async fn delete(self, _: Context, key: String) -> Option<String> {
        self.with_map(|map| map.remove(&key))
    }

    async fn list(self, _: Context, prefix: String) -> Vec<String> {
        self.with_map(|map| {
            map.range(prefix.clone()..)
                .take_while(|(key, _)| key.starts_with(&prefix))
                .map(|(key, _)| key.clone())
                .collect()
        })
    }
}

/// The `health` service: reads the server's [`ServerStatus`].
#[derive(Debug, Clone)]
pub struct HealthService {
    status: Arc<ServerStatus>,
}

impl Health for HealthService {
    async fn info(self, _: Context) -> ServerInfo {
        self.status.info()
    }
}

/// Hosts `echo`, `kv` and `health` on `server`.
pub fn add_builtin_services(server: &mut Server) -> &mut Server {
    let store = KvStore::default();
    let status = server.status();
    server
        .add(|_| EchoService.serve())
        .add(move |_| store.clone().serve())
        .add(move |_| {
            HealthService {
                status: status.clone(),
            }
            .serve()
        })
}
