//! The contract shared by `rpc-server` and `rpc-client`.
//!
//! - [`Endpoint`]: `unix:/abs/path.sock` or `tcp:127.0.0.1:PORT`, loopback only.
//! - [`handshake`]: the first frame each way, naming protocol, service and (on TCP) token.
//! - [`wire`]: the wire format, and the only code that knows it: length-prefixed frames under a
//!   [`FrameLimit`], bincode bodies decoded only from bytes a frame really holds, and
//!   [`wire::ClientFrame`], a client's requests in tarpc's exact bytes.
//! - [`transport`]: [`WireTransport`], the tarpc transport over those frames, built from a
//!   socket-free [`transport::FrameReader`] and a [`transport::FrameWriter`] that move large
//!   byte fields between socket and message without copying them; [`transport::Link`] turns a
//!   handshaken socket into one.
//! - [`macro@service`] and [`Service`]: one declaration per service. `#[rpc_core::service]` on a
//!   trait generates the server trait, the wire enums (tarpc's, byte for byte), the client and
//!   the service's [`schema`], bound to the name it is hosted under.
//! - [`streaming`]: methods that answer with many items ([`Streaming`] on the server,
//!   [`Subscription`] on the client), under flow control by credit.
//! - [`services`]: the built-in `echo`, `kv`, `health` and `introspect` service traits.
//! - [`ServerLocation`] and [`EndpointFile`]: how a client finds a server by name.
//! - [`limits`]: every limit and default either side enforces, each defined once with its reason.
//! - [`untrusted`]: text from the other side, displayed with its control characters escaped.
//! - [`trace::child_context`]: the per-call span ids tarpc's channels would derive.
//! - [`IdMap`]: maps keyed by request id, hashed cheaply.
//! - [`error_chain`]: an error and its causes on one line.
//!
//! This crate opens no socket: listening is `rpc-server`'s job, connecting is `rpc-client`'s.
//!
//! ```
//! use rpc_core::Endpoint;
//! let endpoint: Endpoint = "unix:/run/user/1000/rpc.sock".parse().unwrap();
//! assert_eq!(endpoint.to_string(), "unix:/run/user/1000/rpc.sock");
//! assert!("tcp:0.0.0.0:80".parse::<Endpoint>().is_err()); // never beyond loopback
//! ```

pub mod endpoint;
pub mod endpoint_file;
mod error_chain;
pub mod handshake;
mod id_map;
pub mod lane;
pub mod limits;
pub mod location;
pub mod schema;
mod service;
pub mod services;
mod socket_calls;
pub mod stream;
pub mod streaming;
pub mod timers;
pub mod trace;
pub mod transport;
pub mod untrusted;
pub mod wire;

pub use endpoint::{Endpoint, EndpointParseError};
pub use endpoint_file::EndpointFile;
pub use error_chain::error_chain;
pub use handshake::{Hello, HelloReply, Refusal, Token};
pub use id_map::{IdHasher, IdMap};
pub use location::ServerLocation;
pub use service::{MAX_SERVICE_NAME_LEN, ServeService, Service, is_valid_service_name};
pub use stream::LocalStream;
pub use streaming::{Answer, StreamEvent, StreamStub, Streaming, Subscription};
pub use transport::WireTransport;
pub use untrusted::Untrusted;
pub use wire::{CodecError, FrameLimit, WireCodec};

/// Declares a service: its server trait, wire enums, client and schema, bound to its name once.
/// See [`Service`] for what a declaration gives a client and a server.
pub use rpc_macros::service;

/// The tarpc this crate builds on, for the macros and for callers that want one version.
pub use tarpc;

/// The serde the generated request and response enums derive with, so that a crate declaring a
/// service needs no serde of its own for them.
pub use serde;

// `#[service]` names `::rpc_core::...`; this lets it do so inside this crate too.
extern crate self as rpc_core;
