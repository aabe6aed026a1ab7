//! The limits one server enforces, as one [`Limits`] value, and the per-uid connection counts.
//!
//! Every default, and every fixed limit the server holds peers to, is defined once with its
//! reason in [`rpc_core::limits`]; [`Limits::default`] is built from those, and the defaults a
//! caller may change are re-exported here under their old paths. The README's "Defaults and
//! limits" table lists the same values.

use std::time::Duration;

use rpc_core::FrameLimit;
use rpc_core::lane::ShmSize;

pub use rpc_core::limits::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_UID,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_STREAMS, DEFAULT_READ_TIMEOUT, DEFAULT_SHM_SIZE,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_SOCKET_MODE,
};
pub use rpc_core::stream::DEFAULT_SOCKET_BUFFER;

/// The limits one server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame body accepted or sent, in bytes; announced to each client in the handshake,
    /// which then holds its requests to it too.
    pub max_frame: FrameLimit,
    /// Open connections at once; one more is refused with [`rpc_core::Refusal::TooManyConnections`].
    pub max_connections: usize,
    /// Open connections at once from one uid (TCP peers share one count).
    pub max_connections_per_uid: usize,
    /// Calls in flight per connection.
    pub max_in_flight: usize,
    /// Streams open at once per connection; one more is answered with a "would block" error.
    pub max_streams: usize,
    /// Time allowed for the handshake.
    pub handshake_timeout: Duration,
    /// Time a started frame has to complete.
    pub read_timeout: Duration,
    /// Time allowed for in-flight calls after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Kernel buffer size set on each Unix connection (0 keeps the kernel's default).
    pub socket_buffer: usize,
    /// Size of each shared-memory region of a Unix connection whose client offers the lane
    /// (the smaller of the two sizes is used); [`ShmSize::OFF`] turns the lane off. Each such
    /// connection can cost the server up to twice this: its own region, and the pages of the
    /// client's it reads.
    pub shm_size: ShmSize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: FrameLimit::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_uid: DEFAULT_MAX_CONNECTIONS_PER_UID,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_streams: DEFAULT_MAX_STREAMS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            shm_size: ShmSize::default(),
        }
    }
}

/// Open connections per uid, for [`Limits::max_connections_per_uid`]. TCP peers have no uid and
/// share the `None` count.
#[derive(Debug, Default)]
pub(crate) struct PeerCounts {
    counts: std::sync::Mutex<std::collections::HashMap<Option<u32>, usize>>,
}

impl PeerCounts {
    /// Counts one more connection for `uid`, unless it already has `limit`.
    pub(crate) fn admit(
        self: &std::sync::Arc<Self>,
        uid: Option<u32>,
        limit: usize,
    ) -> Option<PeerSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(uid).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            counts: self.clone(),
            uid,
        })
    }
}

/// One admitted connection of a uid; frees its place when dropped.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    counts: std::sync::Arc<PeerCounts>,
    uid: Option<u32>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.uid) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}
