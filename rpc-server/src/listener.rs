//! Listening sockets: binding each endpoint (with the `auto` fallback) and accepting from it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rpc_core::limits::{FIRST_ACCEPT_BACKOFF, MAX_ACCEPT_BACKOFF};
use rpc_core::{Endpoint, LocalStream, Untrusted};
use tokio::net::{TcpListener, UnixListener};

use crate::peer::PeerCredentials;
use crate::socket_file::{self, FileError, OwnedFile};
use crate::systemd::ActivatedSocket;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// The server's Unix socket (`<runtime-dir>/<name>.sock`); TCP on 127.0.0.1 with an ephemeral
    /// port when a Unix socket cannot be used there.
    Auto,
    /// Exactly this endpoint, with no fallback.
    Endpoint(Endpoint),
    /// A socket passed by socket activation ([`crate::systemd`]): served as is, and its file,
    /// which systemd made, never removed.
    Activated(ActivatedSocket),
}

impl std::str::FromStr for Listen {
    type Err = rpc_core::EndpointParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "auto" {
            Ok(Listen::Auto)
        } else {
            text.parse().map(Listen::Endpoint)
        }
    }
}

/// Why an endpoint could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The Unix socket file could not be created.
    #[error(transparent)]
    Socket(#[from] FileError),
    /// A socket passed by socket activation could not be taken over.
    #[error("cannot listen on {endpoint}, passed by socket activation")]
    Activated {
        /// The endpoint.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The TCP address could not be bound.
    #[error("cannot listen on {endpoint}")]
    Tcp {
        /// The endpoint.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A bound listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix {
        listener: UnixListener,
        endpoint: Endpoint,
        /// The socket file, removed when the listener is dropped; `None` for a socket passed by
        /// socket activation, whose file belongs to the service manager.
        _file: Option<OwnedFile>,
    },
    Tcp {
        listener: TcpListener,
        endpoint: Endpoint,
    },
}

impl Listener {
    /// Binds `listen`; `socket_path` is the `auto` socket.
    pub(crate) fn bind(listen: &Listen, socket_path: &Path, mode: u32) -> Result<Self, BindError> {
        match listen {
            Listen::Endpoint(Endpoint::Unix(path)) => Self::bind_unix(path, mode),
            Listen::Endpoint(Endpoint::Tcp(addr)) => Self::bind_tcp(*addr),
            Listen::Activated(socket) => Self::adopt(socket),
            Listen::Auto => match Self::bind_unix(socket_path, mode) {
                Err(BindError::Socket(err)) if err.unix_unavailable() => {
                    tracing::warn!(
                        reason = %rpc_core::error_chain(&err),
                        "cannot use a unix socket; falling back to tcp loopback"
                    );
                    Self::bind_tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                }
                other => other,
            },
        }
    }

    fn bind_unix(path: &Path, mode: u32) -> Result<Self, BindError> {
        let (std_listener, file) = socket_file::bind_socket(path, mode)?;
        let endpoint = Endpoint::Unix(path.to_owned());
        let listener = std_listener
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(std_listener))
            .map_err(|source| BindError::Tcp {
                endpoint: endpoint.clone(),
                source,
            })?;
        Ok(Listener::Unix {
            listener,
            endpoint,
            _file: Some(file),
        })
    }

    /// Listens on a duplicate of a socket passed by socket activation.
    fn adopt(socket: &ActivatedSocket) -> Result<Self, BindError> {
        let endpoint = socket.endpoint().clone();
        let activated_error = |source| BindError::Activated {
            endpoint: endpoint.clone(),
            source,
        };
        let fd = socket.duplicate().map_err(activated_error)?;
        tracing::info!(endpoint = %endpoint, name = %Untrusted(socket.name()), "using a socket passed by socket activation");
        match &endpoint {
            Endpoint::Unix(_) => {
                let std_listener = std::os::unix::net::UnixListener::from(fd);
                let listener = std_listener
                    .set_nonblocking(true)
                    .and_then(|()| UnixListener::from_std(std_listener))
                    .map_err(activated_error)?;
                Ok(Listener::Unix {
                    listener,
                    endpoint,
                    _file: None,
                })
            }
            Endpoint::Tcp(_) => {
                let std_listener = std::net::TcpListener::from(fd);
                let listener = std_listener
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(std_listener))
                    .map_err(activated_error)?;
                Ok(Listener::Tcp { listener, endpoint })
            }
        }
    }

    fn bind_tcp(addr: SocketAddr) -> Result<Self, BindError> {
        let tcp_error = |source| BindError::Tcp {
            endpoint: Endpoint::Tcp(addr),
            source,
        };
        // Endpoint parsing already refuses non-loopback addresses; this keeps the promise for any
        // caller that builds an `Endpoint::Tcp` by hand.
        if !addr.ip().is_loopback() {
            return Err(tcp_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "tcp endpoints must be loopback addresses",
            )));
        }
        let std_listener = std::net::TcpListener::bind(addr).map_err(tcp_error)?;
        let local = std_listener.local_addr().map_err(tcp_error)?;
        let listener = std_listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(std_listener))
            .map_err(tcp_error)?;
        Ok(Listener::Tcp {
            listener,
            endpoint: Endpoint::Tcp(local),
        })
    }

    /// The endpoint as bound (with the real port for port 0).
    pub(crate) fn endpoint(&self) -> &Endpoint {
        match self {
            Listener::Unix { endpoint, .. } | Listener::Tcp { endpoint, .. } => endpoint,
        }
    }

    /// Accepts one connection, with the peer's credentials on a Unix socket.
    pub(crate) async fn accept(&self) -> io::Result<(LocalStream, Option<PeerCredentials>)> {
        match self {
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                let cred = stream.peer_cred()?;
                let creds = PeerCredentials {
                    uid: cred.uid(),
                    gid: cred.gid(),
                    pid: cred.pid(),
                };
                Ok((LocalStream::unix(stream)?, Some(creds)))
            }
            Listener::Tcp { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                Ok((LocalStream::tcp(stream)?, None))
            }
        }
    }
}

/// Delay after a failed accept, doubling from [`FIRST_ACCEPT_BACKOFF`] (10 ms) to
/// [`MAX_ACCEPT_BACKOFF`] (1 s): when the process is out of file descriptors, accept fails at
/// once, and retrying without a pause would spin a core.
#[derive(Debug)]
pub(crate) struct AcceptBackoff(Duration);

impl AcceptBackoff {
    const FIRST: Duration = FIRST_ACCEPT_BACKOFF;
    const MAX: Duration = MAX_ACCEPT_BACKOFF;

    pub(crate) fn new() -> Self {
        AcceptBackoff(Self::FIRST)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    pub(crate) fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        delay
    }
}
