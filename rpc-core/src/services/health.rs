//! `health`: what a server is, and how it is doing.

use serde::{Deserialize, Serialize};

use super::ServiceDescription;
use crate::Endpoint;

/// The name the health service is hosted under.
pub const NAME: &str = "health";

/// How `rpc-client list` describes this service.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: NAME,
    methods: &[("info", "{}")],
};

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

/// Reports on the server.
#[tarpc::service]
pub trait Health {
    /// The server's current [`ServerInfo`].
    async fn info() -> ServerInfo;
}

crate::service_client!(HealthClient, HealthRequest, HealthResponse, NAME);
