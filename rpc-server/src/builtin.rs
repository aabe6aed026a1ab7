//! Implementations of the built-in services, and [`add_builtin_services`] to host them all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rpc_core::Streaming;
use rpc_core::limits::{ECHO_MAX_DELAY_MS, ECHO_MAX_STREAM_ITEM, KV_MAX_KEYS, KV_WATCH_BACKLOG};
use rpc_core::services::echo::Echo;
use rpc_core::services::health::{Health, ServerInfo};
use rpc_core::services::kv::{Kv, KvError, KvEvent};
use serde_bytes::ByteBuf;
use tarpc::context::Context;
use tokio::sync::broadcast;

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

    async fn stream(self, _: Context, len: u64, count: Option<u64>) -> Streaming<ByteBuf> {
        if len > ECHO_MAX_STREAM_ITEM {
            return Streaming::failed(tarpc::ServerError::new(
                std::io::ErrorKind::InvalidInput,
                format!("an echo.stream item is at most {ECHO_MAX_STREAM_ITEM} bytes, not {len}"),
            ));
        }
        // `len` fits in memory: it is at most ECHO_MAX_STREAM_ITEM. Each item is freshly zeroed
        // memory (calloc's zero pages for a large one), cheaper than copying a template.
        let len = len as usize;
        let count = count.map_or(usize::MAX, |count| {
            usize::try_from(count).unwrap_or(usize::MAX)
        });
        let items = futures::stream::repeat_with(move || ByteBuf::from(vec![0; len]));
        Streaming::new(futures::StreamExt::take(items, count))
    }
}

/// The `kv` service: one in-memory map shared by every connection of a server, and the
/// broadcast of its changes that `watch` subscribes to.
#[derive(Debug, Clone)]
pub struct KvStore {
    map: Arc<Mutex<BTreeMap<String, String>>>,
    /// Every change, sent while the map's lock is held so watchers see them in the map's order.
    /// The sender never waits: a watcher [`KV_WATCH_BACKLOG`] changes behind loses the oldest.
    changes: broadcast::Sender<KvEvent>,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore {
            map: Arc::default(),
            changes: broadcast::Sender::new(KV_WATCH_BACKLOG),
        }
    }
}

impl KvStore {
    fn with_map<T>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-updated (each operation is a
        // single map call), so a poisoned lock is still safe to use.
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }

    /// Tells the watchers, if any (with none, sending fails and costs nothing).
    fn changed(&self, event: KvEvent) {
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(event);
        }
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
            let old = map.insert(key.clone(), value.clone());
            self.changed(KvEvent::Set { key, value });
            Ok(old)
        })
    }

    async fn delete(self, _: Context, key: String) -> Option<String> {
        self.with_map(|map| {
            let old = map.remove(&key);
            if old.is_some() {
                self.changed(KvEvent::Delete { key });
            }
            old
        })
    }

    async fn list(self, _: Context, prefix: String) -> Vec<String> {
        self.with_map(|map| {
            map.range(prefix.clone()..)
                .take_while(|(key, _)| key.starts_with(&prefix))
                .map(|(key, _)| key.clone())
                .collect()
        })
    }

    async fn watch(self, _: Context, prefix: String) -> Streaming<KvEvent> {
        Streaming::broadcast_where(self.changes.subscribe(), move |event| {
            let (KvEvent::Set { key, .. } | KvEvent::Delete { key }) = event;
            key.starts_with(&prefix)
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
