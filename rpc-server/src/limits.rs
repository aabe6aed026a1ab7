//! Every limit the server enforces, with its default. The README's table lists the same values.

use std::time::Duration;

use rpc_core::FrameLimit;

/// Default cap on open connections (handshaking ones included): 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default cap on calls in flight on one connection: 256. A call over it is answered at once with
/// a "would block" server error, never queued without bound or dropped silently.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Default time a new connection has to complete its handshake: 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time in-flight calls get to finish after a shutdown signal: 10 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Default permissions of a server's Unix socket file: owner read and write only.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

pub use rpc_core::stream::DEFAULT_SOCKET_BUFFER;

/// The limits one server enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame body accepted or sent, in bytes.
    pub max_frame: FrameLimit,
    /// Open connections at once; one more is refused with [`rpc_core::Refusal::TooManyConnections`].
    pub max_connections: usize,
    /// Calls in flight per connection.
    pub max_in_flight: usize,
    /// Time allowed for the handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for in-flight calls after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Kernel buffer size set on each Unix connection (0 keeps the kernel's default).
    pub socket_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: FrameLimit::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
        }
    }
}
