//! Who is on the other end of a connection, and whether they may call.

use rpc_core::Endpoint;

/// The credentials the kernel reports for a Unix socket peer (`SO_PEERCRED`), taken at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's user id.
    pub uid: u32,
    /// The peer's group id.
    pub gid: u32,
    /// The peer's process id, when the kernel knows it.
    pub pid: Option<i32>,
}

/// A connected peer, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The server-unique id of this connection, as logged.
    pub connection_id: u64,
    /// The endpoint the peer connected to.
    pub endpoint: Endpoint,
    /// The peer's credentials on a Unix socket; `None` on TCP, where the token authenticates.
    pub credentials: Option<PeerCredentials>,
}

/// Which Unix peers may call: the server's own uid and root always; more by uid or gid.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// Extra uids allowed (`--allow-uid`).
    pub allow_uids: Vec<u32>,
    /// Extra gids allowed (`--allow-gid`); matched against the peer's primary gid.
    pub allow_gids: Vec<u32>,
}

impl AccessPolicy {
    /// Whether a peer with `creds` may call a server running as `server_uid`.
    pub fn allows(&self, creds: &PeerCredentials, server_uid: u32) -> bool {
        creds.uid == server_uid
            || creds.uid == 0
            || self.allow_uids.contains(&creds.uid)
            || self.allow_gids.contains(&creds.gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(uid: u32, gid: u32) -> PeerCredentials {
        PeerCredentials {
            uid,
            gid,
            pid: None,
        }
    }

    #[test]
    fn only_own_uid_and_root_by_default() {
        let policy = AccessPolicy::default();
        assert!(policy.allows(&creds(1000, 1000), 1000));
        assert!(policy.allows(&creds(0, 0), 1000));
        assert!(!policy.allows(&creds(1001, 1000), 1000));
    }

    #[test]
    fn allow_lists_widen_by_uid_or_gid() {
        let policy = AccessPolicy {
            allow_uids: vec![1001],
            allow_gids: vec![50],
        };
        assert!(policy.allows(&creds(1001, 1), 1000));
        assert!(policy.allows(&creds(1002, 50), 1000));
        assert!(!policy.allows(&creds(1002, 51), 1000));
    }
}
