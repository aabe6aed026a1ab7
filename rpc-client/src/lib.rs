//! Connects clients to an `rpc-server`, over a Unix socket or TCP loopback.
//!
//! A [`Connector`] resolves a [`Target`]: an explicit [`rpc_core::Endpoint`], the
//! `RPC_ENDPOINT` environment variable, or a server found by name (its Unix socket in the runtime
//! directory first, then the endpoints and token in its endpoint file). It connects, completes the
//! handshake within a timeout, and wraps the connection in the client `#[rpc_core::service]`
//! generated ([`rpc_core::Service`]: `connect::<KvClient>()` names the service by its type),
//! calling through a [`Channel`] (each call does its own I/O; no dispatch task sits between
//! caller and socket). [`BlockingClient`] does the same for code without a runtime, and
//! [`Connector::reconnecting`] gives a client that survives server restarts
//! ([`ReconnectingChannel`]: in-flight calls fail with [`CallInterrupted`] unless marked
//! idempotent); so do [`BlockingClient`] and [`JsonClient`].
//!
//! A streaming method (server push, e.g. `kv.watch`) returns an [`rpc_core::Subscription`] over
//! either stub, or an iterator from [`BlockingClient::subscribe`]. The server sends only as far
//! ahead of the consumer as the credit the client grants ([`Connector::stream_window`]), and a
//! stream ends with its connection: a reconnecting client's subscriber subscribes again.
//!
//! Over a Unix socket the client talks only to a server run by its own uid or root, unless told
//! to expect another ([`Connector::expect_server_uid`]): a socket another user planted is
//! refused before anything is sent.
//!
//! Errors say what to do next, e.g.
//! `no server at unix:/run/user/1000/rpc.sock (connection refused): is rpc-server running?`.
//!
//! ```no_run
//! use rpc_client::Connector;
//! use rpc_core::services::echo::EchoClient;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let echo = Connector::from_env("rpc")?.connect::<EchoClient>().await?;
//! echo.ping(tarpc::context::current()).await?;
//! # Ok(()) }
//! ```

mod blocking;
mod channel;
mod connect;
mod error;
#[cfg(test)]
mod fake_server;
mod json_client;
mod reconnect;
mod server_check;
mod target;

pub use blocking::{BlockingClient, BlockingSubscription};
pub use channel::{Channel, StreamOverrun};
pub use connect::{
    Client, Connector, DEFAULT_CONNECT_TIMEOUT, DEFAULT_STREAM_WINDOW, MAX_STREAM_CREDIT,
    Reconnecting, StreamWindowError,
};
pub use error::ConnectError;
pub use json_client::{JsonCallError, JsonClient, JsonConnectError};
pub use reconnect::{
    CallInterrupted, FIRST_RECONNECT_DELAY, MAX_RECONNECT_DELAY, ReconnectingChannel, with_backoff,
};
pub use target::{RPC_ENDPOINT, RPC_TOKEN, Target, read_endpoint_file};
