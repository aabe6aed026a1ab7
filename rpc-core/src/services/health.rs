//! `health`: what a server is, and how it is doing.

use serde::{Deserialize, Serialize};

use crate::Endpoint;

/// The name the health service is hosted under.
pub const NAME: &str = <HealthClient as crate::Service>::NAME;

/// A snapshot of a server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's crate version.
    pub version: String,
    /// The server's process id.
    pub pid: u32,
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// Every endpoint it listens on.
    pub endpoints: Vec<Endpoint>,
    /// Every service it hosts.
    pub services: Vec<String>,
    /// Connections open now, handshaking ones included.
    pub open_connections: u64,
    /// Calls answered since start.
    pub calls_served: u64,
    /// Calls whose handler was stopped before it finished: their deadline passed, the client
    /// cancelled them, or their connection closed.
    pub calls_cancelled: u64,
    /// Calls whose handler is running now, on every connection.
    pub calls_in_progress: u64,
}

impl ServerInfo {
    /// A made-up snapshot for the schema's tracer: an [`Endpoint`]'s `Deserialize` parses a
    /// string, which the tracer cannot make up. The tracer learns the struct from this value
    /// alone, so every list in it holds an item.
    fn sample() -> ServerInfo {
        ServerInfo {
            version: String::new(),
            pid: 0,
            uptime_ms: 0,
            endpoints: vec![Endpoint::Unix("/run/user/1000/rpc.sock".into())],
            services: vec![NAME.to_owned()],
            open_connections: 0,
            calls_served: 0,
            calls_cancelled: 0,
            calls_in_progress: 0,
        }
    }
}

/// Reports on the server.
#[crate::service(name = "health", samples = [ServerInfo::sample()])]
pub trait Health {
    /// The server's current [`ServerInfo`].
    async fn info() -> ServerInfo;
}
