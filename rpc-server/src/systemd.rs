//! systemd: listening sockets passed by socket activation, and the readiness, stopping and
//! watchdog notifications a `Type=notify` unit waits for.
//!
//! - [`take_activated_sockets`] reads `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`
//!   (sd_listen_fds(3)) and takes each passed descriptor, checked to be a listening Unix or TCP
//!   loopback stream socket. The server listens on them as on its own ([`Listen::Activated`]),
//!   but never removes their files: systemd made them and keeps them for the next start.
//! - [`ServiceNotifier`] sends `READY=1` once the server serves, `WATCHDOG=1` every half
//!   `WATCHDOG_USEC` while it does, and `STOPPING=1` when shutdown begins (sd_notify(3)). Without
//!   `NOTIFY_SOCKET` it sends nothing.
//!
//! The environment: taking the sockets unsets `LISTEN_PID` and `LISTEN_FDS` (the `listenfd`
//! crate does), so a child could not mistake them for its own; the descriptors themselves are
//! close-on-exec. `LISTEN_FDNAMES`, `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` stay set:
//! the notifier reads them as it sends, `rpc-server` starts no child process, and systemd takes
//! notifications only from the main process unless the unit says `NotifyAccess=all`. A program
//! that hosts a server and starts children should remove them from the children's environment.
//!
//! [`Listen::Activated`]: crate::Listen::Activated

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use rpc_core::{Endpoint, Untrusted};
use sd_notify::NotifyState;

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: usize = 3;

/// The variable naming each passed descriptor, colon-separated (`FileDescriptorName=`).
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// A listening socket passed by socket activation, and the endpoint it listens on.
///
/// Cheap to clone (the descriptor is shared), so it can sit in a
/// [`ServerConfig`](crate::ServerConfig); the server listens on a duplicate of it.
#[derive(Debug, Clone)]
pub struct ActivatedSocket {
    fd: Arc<OwnedFd>,
    endpoint: Endpoint,
    name: String,
}

impl PartialEq for ActivatedSocket {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.fd, &other.fd)
    }
}

impl Eq for ActivatedSocket {}

impl ActivatedSocket {
    /// The endpoint the socket listens on: its path, or its loopback address.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Its name from `LISTEN_FDNAMES` (systemd's default is the socket unit's name), or
    /// `unknown` when the manager gave none.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A descriptor of its own for the socket, to listen on.
    pub(crate) fn duplicate(&self) -> io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

/// Why a socket passed by socket activation cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDNAMES` does not name every descriptor, as sd_listen_fds(3) requires.
    #[error(
        "LISTEN_FDNAMES names {names} sockets but LISTEN_FDS passes {fds}: the service manager's environment is inconsistent"
    )]
    NameCount {
        /// Names given.
        names: usize,
        /// Descriptors passed.
        fds: usize,
    },
    /// The descriptor is not a Unix or TCP stream socket (a datagram socket, a file, ...).
    #[error(
        "socket activation passed fd {fd} (`{name}`), which is not a unix or tcp stream socket ({reason}): rpc-server serves only ListenStream= sockets"
    )]
    NotStream {
        /// The descriptor.
        fd: usize,
        /// Its name.
        name: String,
        /// What listenfd found, for the unix and the tcp check.
        reason: String,
    },
    /// A stream socket that is not listening: a connection passed by `Accept=yes`.
    #[error(
        "socket activation passed fd {fd} (`{name}`), a stream socket that is not listening: set Accept=no (the default) in the .socket unit"
    )]
    NotListening {
        /// The descriptor.
        fd: usize,
        /// Its name.
        name: String,
    },
    /// A Unix socket without an absolute path: abstract, unnamed or relative.
    #[error(
        "socket activation passed fd {fd} (`{name}`), a unix socket without an absolute path (abstract or unnamed): clients find sockets by path, so give it one, e.g. ListenStream=%t/rpc.sock"
    )]
    NoPath {
        /// The descriptor.
        fd: usize,
        /// Its name.
        name: String,
    },
    /// A TCP socket bound beyond loopback, reachable from the network.
    #[error(
        "socket activation passed fd {fd} (`{name}`), a tcp socket on {addr}, which is not a loopback address: rpc-server never listens beyond this machine, so use e.g. ListenStream=127.0.0.1:PORT"
    )]
    NotLoopback {
        /// The descriptor.
        fd: usize,
        /// Its name.
        name: String,
        /// Where it is bound.
        addr: std::net::SocketAddr,
    },
    /// The socket's address or state could not be read.
    #[error("cannot inspect fd {fd} (`{name}`) passed by socket activation")]
    Io {
        /// The descriptor.
        fd: usize,
        /// Its name.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Takes the listening sockets passed by socket activation: none unless `LISTEN_FDS` is set and
/// `LISTEN_PID` is this process (or unset). Each must be a listening stream socket, on a Unix
/// path or a TCP loopback address; anything else is an error naming the descriptor, so a unit
/// file mistake stops the server instead of leaving it deaf.
///
/// Call it once, before any other thread runs: it unsets `LISTEN_PID` and `LISTEN_FDS`.
pub fn take_activated_sockets() -> Result<Vec<ActivatedSocket>, ActivationError> {
    let names = std::env::var(LISTEN_FDNAMES).ok();
    let mut passed = listenfd::ListenFd::from_env();
    let count = passed.len();
    if count == 0 {
        return Ok(Vec::new());
    }
    let names: Vec<String> = match names {
        Some(names) => names.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); count],
    };
    if names.len() != count {
        return Err(ActivationError::NameCount {
            names: names.len(),
            fds: count,
        });
    }
    names
        .into_iter()
        .enumerate()
        .map(|(index, name)| take_one(&mut passed, index, name))
        .collect()
}

/// Takes the socket at `index`, checked as [`take_activated_sockets`] says.
fn take_one(
    passed: &mut listenfd::ListenFd,
    index: usize,
    name: String,
) -> Result<ActivatedSocket, ActivationError> {
    let fd = LISTEN_FDS_START + index;
    let io_error = |name: &str, source| ActivationError::Io {
        fd,
        name: name.to_owned(),
        source,
    };
    let (owned, endpoint) = match passed.take_unix_listener(index) {
        Ok(Some(listener)) => {
            let addr = listener.local_addr().map_err(|e| io_error(&name, e))?;
            match addr.as_pathname() {
                Some(path) if path.is_absolute() => {
                    (OwnedFd::from(listener), Endpoint::Unix(path.to_owned()))
                }
                _ => return Err(ActivationError::NoPath { fd, name }),
            }
        }
        Ok(None) => unreachable!("each passed descriptor is taken once"),
        Err(unix) => match passed.take_tcp_listener(index) {
            Ok(Some(listener)) => {
                let addr = listener.local_addr().map_err(|e| io_error(&name, e))?;
                if !addr.ip().is_loopback() {
                    return Err(ActivationError::NotLoopback { fd, name, addr });
                }
                (OwnedFd::from(listener), Endpoint::Tcp(addr))
            }
            Ok(None) => unreachable!("each passed descriptor is taken once"),
            Err(tcp) => {
                return Err(ActivationError::NotStream {
                    fd,
                    name,
                    reason: format!("{unix}; {tcp}"),
                });
            }
        },
    };
    if !is_listening(&owned).map_err(|e| io_error(&name, e))? {
        return Err(ActivationError::NotListening { fd, name });
    }
    Ok(ActivatedSocket {
        fd: Arc::new(owned),
        endpoint,
        name,
    })
}

/// Whether a stream socket listens (`SO_ACCEPTCONN`).
#[cfg(not(target_vendor = "apple"))]
fn is_listening(fd: &OwnedFd) -> io::Result<bool> {
    Ok(rustix::net::sockopt::socket_acceptconn(fd)?)
}

/// Apple systems declare `SO_ACCEPTCONN` without implementing it: a socket that is not
/// listening fails at its first `accept` instead.
#[cfg(target_vendor = "apple")]
fn is_listening(_fd: &OwnedFd) -> io::Result<bool> {
    Ok(true)
}

/// Tells the service manager how the server is doing (sd_notify(3)): `READY=1`, `WATCHDOG=1`
/// and `STOPPING=1`. Sends nothing when `NOTIFY_SOCKET` is unset, as outside a `Type=notify`
/// unit. A message that cannot be sent is logged, never fatal: the server serves either way.
#[derive(Debug)]
pub struct ServiceNotifier {
    watchdog: Option<Duration>,
}

impl ServiceNotifier {
    /// Reads the watchdog setting: `WATCHDOG_USEC`, when set, above zero, and `WATCHDOG_PID`
    /// is this process or unset.
    pub fn from_env() -> Self {
        ServiceNotifier {
            watchdog: sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero()),
        }
    }

    /// How often `WATCHDOG=1` is sent: half the manager's timeout, as sd_watchdog_enabled(3)
    /// advises, so one late ping does not get the server killed.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// Sends `READY=1`, with a `STATUS=` line naming the endpoints, once the server is bound and
    /// its signal handlers are installed.
    pub fn ready(&self, endpoints: &[Endpoint]) {
        let listening: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        // Escaped: a newline in a path would start a new assignment in the message.
        let status = format!("listening on {}", Untrusted(&listening.join(", ")));
        send(
            &[NotifyState::Ready, NotifyState::Status(&status)],
            "READY=1",
        );
    }

    /// Waits for `shutdown`, sending `WATCHDOG=1` meanwhile if the manager asked for it, then
    /// sends `STOPPING=1`. Pass the result to
    /// [`BoundServer::run_until`](crate::BoundServer::run_until).
    pub async fn until(&self, shutdown: impl Future<Output = ()>) {
        match self.watchdog_interval() {
            Some(every) => {
                tokio::select! {
                    _ = shutdown => {}
                    _ = watchdog(every) => {}
                }
            }
            None => shutdown.await,
        }
        send(&[NotifyState::Stopping], "STOPPING=1");
    }
}

/// Sends `WATCHDOG=1` every `every`, forever; a failure is logged once.
async fn watchdog(every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        ticks.tick().await;
        if let Err(err) = sd_notify::notify(&[NotifyState::Watchdog]) {
            if !warned {
                tracing::warn!(error = %err, "cannot send WATCHDOG=1 to the service manager");
                warned = true;
            }
        }
    }
}

/// The variable naming the service manager's notification socket.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

fn send(states: &[NotifyState<'_>], what: &str) {
    if std::env::var_os(NOTIFY_SOCKET).is_none() {
        return;
    }
    match sd_notify::notify(states) {
        Ok(()) => tracing::debug!(message = what, "notified the service manager"),
        Err(err) => {
            tracing::warn!(message = what, error = %err, "cannot notify the service manager")
        }
    }
}
