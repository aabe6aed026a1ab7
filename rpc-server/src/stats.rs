//! What the `health` service reports: live counters, plus the endpoints and services fixed at
//! bind time.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rpc_core::Endpoint;
use rpc_core::services::health::ServerInfo;

/// Live state of one server, shared by every connection task and the `health` service.
#[derive(Debug)]
pub struct ServerStatus {
    started: Instant,
    open_connections: AtomicU64,
    calls_served: AtomicU64,
    calls_cancelled: AtomicU64,
    calls_in_progress: AtomicU64,
    endpoints: OnceLock<Vec<Endpoint>>,
    services: OnceLock<Vec<String>>,
}

impl ServerStatus {
    pub(crate) fn new() -> Self {
        ServerStatus {
            started: Instant::now(),
            open_connections: AtomicU64::new(0),
            calls_served: AtomicU64::new(0),
            calls_cancelled: AtomicU64::new(0),
            calls_in_progress: AtomicU64::new(0),
            endpoints: OnceLock::new(),
            services: OnceLock::new(),
        }
    }

    /// Connections open now, handshaking ones included.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Calls answered since start.
    pub fn calls_served(&self) -> u64 {
        self.calls_served.load(Ordering::Relaxed)
    }

    /// The endpoints listened on (empty before bind).
    pub fn endpoints(&self) -> &[Endpoint] {
        self.endpoints.get().map(Vec::as_slice).unwrap_or_default()
    }

    /// A snapshot for the `health` service.
    pub fn info(&self) -> ServerInfo {
        ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            endpoints: self.endpoints().to_vec(),
            services: self.services.get().cloned().unwrap_or_default(),
            open_connections: self.open_connections(),
            calls_served: self.calls_served(),
            calls_cancelled: self.calls_cancelled.load(Ordering::Relaxed),
            calls_in_progress: self.calls_in_progress.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_bound(&self, endpoints: Vec<Endpoint>, services: Vec<String>) {
        let _ = self.endpoints.set(endpoints);
        let _ = self.services.set(services);
    }

    /// Counts a call from its start: served if it finishes, cancelled if its handler is dropped
    /// first (deadline passed, client cancelled, connection closed).
    pub(crate) fn call_started(self: &std::sync::Arc<Self>) -> CallInProgress {
        self.calls_in_progress.fetch_add(1, Ordering::Relaxed);
        CallInProgress {
            status: self.clone(),
            finished: false,
        }
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenConnection<'_> {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }
}

/// One call being handled; see [`ServerStatus::call_started`].
pub(crate) struct CallInProgress {
    status: std::sync::Arc<ServerStatus>,
    finished: bool,
}

impl CallInProgress {
    /// The handler returned.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        self.status.calls_served.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for CallInProgress {
    fn drop(&mut self) {
        self.status
            .calls_in_progress
            .fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.status.calls_cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Keeps a connection counted in [`ServerStatus::open_connections`] while alive.
pub(crate) struct OpenConnection<'a>(&'a ServerStatus);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
