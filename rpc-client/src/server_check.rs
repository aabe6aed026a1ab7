//! Who serves: over a Unix socket a client talks only to a server run by a uid it trusts.
//!
//! Anyone who can write to a directory can put a socket in it under a server's name, and a
//! client that connected to it would hand that process its calls. So before the handshake the
//! client reads the credentials of the process that made the socket (`SO_PEERCRED` on Linux,
//! `getpeereid` elsewhere) and goes on only if its uid is the client's own, root's (both can
//! act as the client anyway), or the one it was told to expect
//! ([`Connector::expect_server_uid`](crate::Connector::expect_server_uid), `--expect-uid`).
//! A socket found by name is also checked before connecting: its file must be owned by one of
//! those uids. That check alone could be raced (the file swapped between the look and the
//! connect), the credentials check cannot.
//!
//! Refusals are not errors to route around: a planted socket is an attack, so the client stops
//! there and says so rather than trying the next endpoint (the TCP fallback) behind it.
//! TCP servers are not identified this way; the token in the endpoint file, which only the
//! server's uid and root can read, is what binds a TCP endpoint to its server.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rpc_core::{Endpoint, LocalStream};

use crate::error::ConnectError;

/// The uids a client accepts a Unix-socket server from: its own, root, and one more if told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ServerCheck {
    /// The uid set with `expect_server_uid`, if any.
    pub(crate) expected: Option<u32>,
}

impl ServerCheck {
    /// Whether a server run by `uid` may be talked to.
    fn accepts(&self, uid: u32) -> bool {
        uid == client_uid() || uid == 0 || self.expected == Some(uid)
    }

    /// Before connecting to a socket found by name: its file must be owned by an accepted uid.
    /// A missing file is left for the connect to report.
    pub(crate) fn socket_file(&self, endpoint: &Endpoint) -> Result<(), ConnectError> {
        let Some(path) = endpoint.unix_path() else {
            return Ok(());
        };
        match owner_of(path) {
            Some(owner) if !self.accepts(owner) => Err(ConnectError::ForeignSocketFile {
                endpoint: endpoint.clone(),
                owner,
                client_uid: client_uid(),
                expected_uid: self.expected,
            }),
            _ => Ok(()),
        }
    }

    /// After connecting, before anything is sent: the process that made the socket must run
    /// as an accepted uid.
    pub(crate) fn peer(
        &self,
        endpoint: &Endpoint,
        stream: &LocalStream,
    ) -> Result<(), ConnectError> {
        let LocalStream::Unix(_) = stream else {
            return Ok(());
        };
        let server_uid =
            peer_uid(stream.as_fd()).map_err(|source| ConnectError::ServerCredentials {
                endpoint: endpoint.clone(),
                source,
            })?;
        if self.accepts(server_uid) {
            tracing::debug!(%endpoint, server_uid, "server runs as an accepted uid");
            return Ok(());
        }
        Err(ConnectError::UnexpectedServer {
            endpoint: endpoint.clone(),
            server_uid,
            client_uid: client_uid(),
            expected_uid: self.expected,
        })
    }
}

fn client_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The owner of the file at `path` itself (a symlink is not followed), if it exists.
fn owner_of(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path).ok().map(|meta| meta.uid())
}

/// The uid of the process that made the socket's other end, as the kernel recorded it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(fd)?.uid.as_raw())
}

/// The uid of the process that made the socket's other end: `getpeereid`, through tokio, on a
/// duplicate of the descriptor (rustix has `SO_PEERCRED` for Linux only).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let stream = std::os::unix::net::UnixStream::from(fd.try_clone_to_owned()?);
    stream.set_nonblocking(true)?;
    Ok(tokio::net::UnixStream::from_std(stream)?.peer_cred()?.uid())
}

/// The uids a client accepts, in words: "uid 1000 (this client) or root", "... or uid 1001
/// (expected)".
pub(crate) fn accepted_uids(client_uid: u32, expected_uid: Option<u32>) -> String {
    let mut words = if client_uid == 0 {
        "root (this client's uid 0)".to_owned()
    } else {
        format!("uid {client_uid} (this client) or root")
    };
    if let Some(uid) = expected_uid {
        words.push_str(&format!(" or uid {uid} (expected)"));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_uid_and_root_are_accepted_and_another_only_when_expected() {
        let me = client_uid();
        let other = me.wrapping_add(1).max(1);
        let default = ServerCheck::default();
        assert!(default.accepts(me));
        assert!(default.accepts(0));
        assert!(!default.accepts(other));
        let expecting = ServerCheck {
            expected: Some(other),
        };
        assert!(expecting.accepts(other));
        assert!(expecting.accepts(me) && expecting.accepts(0));
        assert!(!expecting.accepts(other.wrapping_add(1).max(1)));
    }

    #[tokio::test]
    async fn the_peer_uid_of_a_socket_pair_is_this_process_uid() {
        let (a, _b) = tokio::net::UnixStream::pair().expect("socket pair");
        let stream = LocalStream::unix(a).expect("registers");
        assert_eq!(peer_uid(stream.as_fd()).expect("credentials"), client_uid());
        let endpoint = Endpoint::Unix("/pair".into());
        assert!(ServerCheck::default().peer(&endpoint, &stream).is_ok());
    }

    #[test]
    fn the_accepted_uids_are_named() {
        assert_eq!(accepted_uids(0, None), "root (this client's uid 0)");
        assert_eq!(
            accepted_uids(1000, Some(1001)),
            "uid 1000 (this client) or root or uid 1001 (expected)"
        );
    }
}
