//! Why a client could not connect, in words that say what to do next.

use std::io;
use std::path::PathBuf;

use rpc_core::handshake::HandshakeError;
use rpc_core::{Endpoint, Refusal};

use crate::server_check::accepted_uids;

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing accepts connections at the endpoint.
    #[error("no server at {endpoint} ({reason}): is rpc-server running?")]
    NoServer {
        /// The endpoint tried.
        endpoint: Endpoint,
        /// What the OS said, e.g. "connection refused".
        reason: String,
    },
    /// Connecting or the handshake took longer than the connect timeout.
    #[error(
        "timed out after {timeout_ms} ms connecting to {endpoint}: is the server overloaded or stopped (SIGSTOP)?"
    )]
    Timeout {
        /// The endpoint tried.
        endpoint: Endpoint,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The OS refused to connect for another reason.
    #[error("cannot connect to {endpoint}")]
    Io {
        /// The endpoint tried.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server answered the handshake with a refusal.
    #[error("server at {endpoint} refused the connection: {refusal}")]
    Refused {
        /// The endpoint.
        endpoint: Endpoint,
        /// Its reason.
        refusal: Refusal,
    },
    /// The handshake failed: the peer is not an rpc-server of this protocol, or it hung up.
    #[error("handshake with {endpoint} failed")]
    Handshake {
        /// The endpoint.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: HandshakeError,
    },
    /// The process serving the Unix socket runs as a uid this client does not accept: another
    /// user's process may have planted the socket. Never tried past: see `server_check.rs`.
    #[error(
        "refusing the server at {endpoint}: it runs as uid {server_uid}, and this client accepts only {}; another user's process may have put this socket there, so nothing was sent and no other endpoint was tried. If uid {server_uid} runs the server you mean, pass --expect-uid {server_uid} (Connector::expect_server_uid)",
        accepted_uids(*client_uid, *expected_uid)
    )]
    UnexpectedServer {
        /// The endpoint.
        endpoint: Endpoint,
        /// The uid the server runs as, from the kernel (`SO_PEERCRED`).
        server_uid: u32,
        /// This client's uid.
        client_uid: u32,
        /// The uid the client was told to expect, if any.
        expected_uid: Option<u32>,
    },
    /// A socket found by name is a file owned by a uid this client does not accept; it was not
    /// connected to.
    #[error(
        "refusing the socket at {endpoint}: its file is owned by uid {owner}, and this client accepts only {}; another user may have put it there, so it was not connected to and no other endpoint was tried. If uid {owner} runs the server you mean, pass --expect-uid {owner} (Connector::expect_server_uid)",
        accepted_uids(*client_uid, *expected_uid)
    )]
    ForeignSocketFile {
        /// The endpoint.
        endpoint: Endpoint,
        /// The socket file's owner.
        owner: u32,
        /// This client's uid.
        client_uid: u32,
        /// The uid the client was told to expect, if any.
        expected_uid: Option<u32>,
    },
    /// The credentials of the process behind a Unix socket could not be read, so it was not
    /// trusted.
    #[error("cannot read the credentials of the server at {endpoint}, so it was not used")]
    ServerCredentials {
        /// The endpoint.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A TCP endpoint needs a token and none is known.
    #[error(
        "{endpoint} is a tcp endpoint and needs a token: set RPC_TOKEN, or connect by --name so the token is read from the endpoint file"
    )]
    MissingToken {
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// No server of that name: no socket and no endpoint file.
    #[error(
        "no server named `{name}`: no socket at {} and no endpoint file at {}: is rpc-server running with --name {name} and the same --runtime-dir?",
        socket.display(), endpoint_file.display()
    )]
    NotRunning {
        /// The name.
        name: String,
        /// The socket path looked at.
        socket: PathBuf,
        /// The endpoint file looked at.
        endpoint_file: PathBuf,
    },
    /// The endpoint file exists but cannot be used.
    #[error("cannot use endpoint file {}: {reason}", path.display())]
    EndpointFile {
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An environment variable holds something unusable.
    #[error("{var} is invalid: {reason}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Why.
        reason: String,
    },
    /// The client's own runtime could not start.
    #[error("cannot start the client's runtime")]
    Runtime(#[source] io::Error),
    /// Every endpoint of a named server failed; the errors are listed in order.
    #[error("cannot reach the server: {}", attempts.iter().map(|e| rpc_core::error_chain(e)).collect::<Vec<_>>().join("; then "))]
    AllFailed {
        /// One error per endpoint tried.
        attempts: Vec<ConnectError>,
    },
}

impl ConnectError {
    /// Whether the server was not reached at all (nothing listening, timeout, an OS error, or
    /// the connection dropped mid-handshake, as when a dying server's listener closes with our
    /// connection still queued), as opposed to reached and refusing: another endpoint, or a later
    /// attempt, may still work. A server run by an unexpected uid is never passed over this way:
    /// that is an attack to stop at, not an outage to route around.
    pub fn try_next(&self) -> bool {
        match self {
            ConnectError::NoServer { .. }
            | ConnectError::Io { .. }
            | ConnectError::Timeout { .. } => true,
            ConnectError::Handshake {
                source: HandshakeError::Codec(rpc_core::CodecError::Io(err)),
                ..
            } => matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }

    /// Whether trying again a little later may succeed: the server is not reached now
    /// ([`ConnectError::try_next`]), is not running (a server that stopped cleanly removed its
    /// socket and endpoint file, which a restart puts back), or is reached but turned the
    /// connection away for now (shutting down, at its connection limit). What a client that
    /// reconnects on its own backs off and retries on, within a call's deadline.
    pub fn retry_later(&self) -> bool {
        match self {
            ConnectError::NotRunning { .. } => true,
            ConnectError::Refused { refusal, .. } => matches!(
                refusal,
                Refusal::ShuttingDown
                    | Refusal::TooManyConnections { .. }
                    | Refusal::TooManyForPeer { .. }
            ),
            ConnectError::AllFailed { attempts } => attempts.iter().all(Self::retry_later),
            other => other.try_next(),
        }
    }
}
