//! Hosts services on Unix domain sockets, with TCP loopback as the fallback.
//!
//! A [`Server`] hosts any number of services on one or more endpoints, each declared with
//! `#[rpc_core::service]` and added with [`Server::add`] under the name its declaration binds it
//! to. Every connection starts with a handshake naming the service it wants
//! ([`rpc_core::handshake`]); Unix peers are checked by their kernel credentials, TCP peers by a
//! 256-bit token from the endpoint file.
//!
//! What it guarantees:
//! - socket files are created with mode 0600 (by default), in a directory created 0700 when it is
//!   missing (an existing one that other users can write to is refused); they never replace a
//!   live server's socket or anything that is not a stale socket, and are removed on shutdown;
//! - sockets passed by systemd socket activation are served as they are and never removed, and
//!   a `Type=notify` unit hears `READY=1`, `WATCHDOG=1` and `STOPPING=1` ([`systemd`]);
//! - every connection runs in its own task under the [`Limits`]: frame size, connections (in all
//!   and per uid), calls in flight, handshake time, read timeout for a started frame;
//! - shutdown stops accepting, lets in-flight calls finish within a grace period, then removes
//!   the files it created.
//!
//! ```no_run
//! use rpc_core::ServerLocation;
//! use rpc_server::shutdown::ShutdownSignals;
//! use rpc_server::{Server, ServerConfig, add_builtin_services};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let location = ServerLocation::new(None, "rpc")?;
//! let mut server = Server::new(ServerConfig::new(location));
//! add_builtin_services(&mut server);
//! let bound = server.bind()?;
//! // Handlers before announcing readiness, so an early SIGTERM still shuts down cleanly.
//! let signals = ShutdownSignals::install()?;
//! for endpoint in bound.endpoints() {
//!     println!("listening on {endpoint}");
//! }
//! bound.run_until(signals.recv()).await;
//! # Ok(()) }
//! ```

mod builtin;
mod connection;
mod dispatch;
mod guard;
mod in_flight;
mod introspect;
pub mod limits;
mod listener;
mod log_limit;
mod loop_transport;
mod open_streams;
mod peer;
mod process;
mod refusals;
mod runtime_dir;
mod server;
mod service;
pub mod shutdown;
mod socket_buffer;
mod socket_file;
mod stats;
pub mod systemd;

pub use builtin::{EchoService, HealthService, KvStore, add_builtin_services};
pub use limits::Limits;
pub use listener::{BindError, Listen};
pub use peer::{AccessPolicy, Peer, PeerCredentials};
pub use process::{disable_transparent_huge_pages, log_panics, raise_fd_limit};
pub use server::{BoundServer, ServeError, Server, ServerConfig};
pub use socket_file::FileError;
pub use stats::ServerStatus;
