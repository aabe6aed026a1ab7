//! The contract shared by `rpc-server` and `rpc-client`.
//!
//! - [`Endpoint`]: `unix:/abs/path.sock` or `tcp:127.0.0.1:PORT`, loopback only.
//! - [`handshake`]: the first frame each way, naming protocol, service and (on TCP) token.
//! - [`codec`]: length-delimited frames with bincode bodies and a [`FrameLimit`], decoded only from
//!   complete bounded frames.
//! - [`WireTransport`]: the tarpc transport over those frames, which moves large byte fields
//!   between socket and message without copying them.
//! - [`services`]: the built-in `echo`, `kv` and `health` tarpc service traits.
//! - [`ServerLocation`] and [`EndpointFile`]: how a client finds a server by name.
//! - [`limits`]: every limit and default either side enforces, each defined once with its reason.
//! - [`untrusted`]: text from the other side, displayed with its control characters escaped.
//! - [`trace::child_context`]: the per-call span ids tarpc's channels would derive.
//! - [`wire`]: the client's requests encoded without tarpc's per-byte trace ids, and maps keyed
//!   by request id.
//!
//! This crate opens no socket: listening is `rpc-server`'s job, connecting is `rpc-client`'s.
//!
//! ```
//! use rpc_core::Endpoint;
//! let endpoint: Endpoint = "unix:/run/user/1000/rpc.sock".parse().unwrap();
//! assert_eq!(endpoint.to_string(), "unix:/run/user/1000/rpc.sock");
//! assert!("tcp:0.0.0.0:80".parse::<Endpoint>().is_err()); // never beyond loopback
//! ```

pub mod codec;
pub mod endpoint;
pub mod endpoint_file;
pub mod handshake;
pub mod limits;
pub mod location;
mod service_client;
pub mod services;
pub mod stream;
pub mod timers;
pub mod trace;
pub mod transport;
pub mod untrusted;
pub mod wire;

pub use codec::{CodecError, FrameLimit, WireCodec};
pub use endpoint::{Endpoint, EndpointParseError};
pub use endpoint_file::EndpointFile;
pub use handshake::{Hello, HelloReply, Refusal, Token};
pub use location::ServerLocation;
pub use service_client::ServiceClient;
pub use stream::LocalStream;
pub use transport::WireTransport;
pub use untrusted::Untrusted;

/// The tarpc this crate builds on, for the macros and for callers that want one version.
pub use tarpc;
