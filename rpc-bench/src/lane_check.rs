//! Proof that each subject measured the path it is named after: that `rpc-shm`'s calls really
//! went through the shared-memory lane, and that the socket path's (`rpc uds`, `rpc-ct uds`) did
//! not. The lane is on by default, and off or unused it fails silently (a full region, or a
//! client or server that offers none, means the socket), so a figure could otherwise pass for the
//! lane's without it.
//!
//! The evidence is in the server's `/proc/<pid>/maps`: each region is a memfd named
//! `rpc-lane`, mapped by the server read-write when it is the server's own (the answers' fields)
//! and read-only when it is the client's (the requests' fields). Regions live as long as their
//! connection, so the socket path is checked before any lane connection opens (a probe
//! connection of each such subject sends one large field), and the lane while rpc-shm's latency
//! connections are still open, after the points.

use rpc_core::limits::BIG_FIELD;
use serde::Serialize;

use crate::measure::{self, check_echo};
use crate::subject::Subject;

/// The name the lane gives its memfds, as `/proc/<pid>/maps` shows it.
const REGION_NAME: &str = "memfd:rpc-lane";

/// The field the socket path's probe sends: 1 MiB, well past [`BIG_FIELD`].
const PROBE_PAYLOAD: usize = 1 << 20;

/// The lane regions a process maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LaneMaps {
    /// Regions it writes: its own, one per connection that has sent a large field.
    pub own: usize,
    /// Regions it only reads: its peers'.
    pub peer: usize,
}

impl LaneMaps {
    /// The lane regions mapped by process `pid`.
    pub fn read(pid: u32) -> anyhow::Result<LaneMaps> {
        let path = format!("/proc/{pid}/maps");
        let text = std::fs::read_to_string(&path)
            .map_err(|err| anyhow::anyhow!("cannot read {path} to check the lane: {err}"))?;
        Ok(LaneMaps::parse(&text))
    }

    /// The lane regions in the text of a `maps` file.
    fn parse(maps: &str) -> LaneMaps {
        let mut found = LaneMaps { own: 0, peer: 0 };
        for line in maps.lines().filter(|l| l.contains(REGION_NAME)) {
            match line.split_whitespace().nth(1) {
                Some(perms) if perms.starts_with("rw") => found.own += 1,
                Some(_) => found.peer += 1,
                None => {}
            }
        }
        found
    }
}

/// What the lane check found, written into the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum LaneCheck {
    /// While rpc-shm's connections were open, the server mapped regions both ways.
    Verified {
        /// The server's process id.
        server_pid: u32,
        /// What it mapped.
        maps: LaneMaps,
    },
    /// Nothing to check: the reason (no rpc-shm subject, or no payload the lane carries).
    NotExercised {
        /// Why.
        reason: &'static str,
    },
    /// rpc-shm ran with a payload the lane carries, but the server mapped no region one way or
    /// both: its figures are the socket's.
    Failed {
        /// What was found.
        what: String,
    },
}

impl LaneCheck {
    /// Checks server `pid`'s maps while rpc-shm's connections at `payloads` are open.
    pub fn after_points(pid: u32, payloads: &[usize]) -> anyhow::Result<LaneCheck> {
        if !payloads.iter().any(|&p| p >= BIG_FIELD) {
            return Ok(LaneCheck::NotExercised {
                reason: "no payload of 32 KiB or more: the lane carries only fields that large",
            });
        }
        let maps = LaneMaps::read(pid)?;
        Ok(if maps.own > 0 && maps.peer > 0 {
            LaneCheck::Verified {
                server_pid: pid,
                maps,
            }
        } else {
            LaneCheck::Failed {
                what: format!(
                    "rpc-shm ran at a payload of 32 KiB or more, but its server (pid {pid}) maps \
                     {} region(s) of its own and {} of its clients' named {REGION_NAME}, where \
                     the lane needs one each way: rpc-shm's figures are the socket's (is the \
                     lane off in rpc-server --shm-size, or the client's offer?)",
                    maps.own, maps.peer
                ),
            }
        })
    }

    /// The line printed under the targets.
    pub fn describe(&self) -> String {
        match self {
            LaneCheck::Verified { server_pid, maps } => format!(
                "lane verified: with rpc-shm's connections open, rpc-server (pid {server_pid}) \
                 mapped {} region(s) of its own (read-write) and {} of its clients' \
                 (read-only) named {REGION_NAME}; the socket path's probes mapped none",
                maps.own, maps.peer
            ),
            LaneCheck::NotExercised { reason } => format!("lane not checked: {reason}"),
            LaneCheck::Failed { what } => format!("lane check FAILED: {what}"),
        }
    }
}

/// Before any lane connection to server `pid` opens: one echo of a large field on a connection
/// of `subject`, a socket-path subject, must leave the server with no region.
pub async fn probe_socket_path(subject: &Subject, pid: u32) -> anyhow::Result<()> {
    let name = format!(
        "{} {}",
        subject.implementation.name(),
        subject.transport.name()
    );
    let client = subject.connect_rpc(PROBE_PAYLOAD, None).await?;
    let bytes = client
        .echo(tarpc::context::current(), measure::payload(PROBE_PAYLOAD))
        .await?;
    check_echo(PROBE_PAYLOAD, &bytes)?;
    let maps = LaneMaps::read(pid)?;
    anyhow::ensure!(
        maps == LaneMaps { own: 0, peer: 0 },
        "{name} is meant to measure the socket path, but after one 1 MiB echo its server (pid \
         {pid}) maps {} region(s) of its own and {} of its clients' named {REGION_NAME}: its \
         client did not turn the lane off (see Subject::connector)",
        maps.own,
        maps.peer
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_regions_are_the_writable_ones_and_peer_regions_the_read_only_ones() {
        let maps = "\
7f0000000000-7f0001000000 rw-s 00000000 00:01 2049                       /memfd:rpc-lane (deleted)
7f0001000000-7f0002000000 r--s 00000000 00:01 2050                       /memfd:rpc-lane (deleted)
7f0002000000-7f0003000000 r--s 00000000 00:01 2051                       /memfd:rpc-lane (deleted)
7f0003000000-7f0004000000 rw-p 00000000 00:00 0
7f0004000000-7f0005000000 rw-s 00000000 00:01 2052                       /memfd:other (deleted)
";
        assert_eq!(LaneMaps::parse(maps), LaneMaps { own: 1, peer: 2 });
        assert_eq!(LaneMaps::parse(""), LaneMaps { own: 0, peer: 0 });
    }

    #[test]
    fn the_lane_is_checked_only_at_a_payload_it_carries() {
        let check = LaneCheck::after_points(std::process::id(), &[64, 4096]).expect("no read");
        assert!(matches!(check, LaneCheck::NotExercised { .. }), "{check:?}");
        // This test process maps no region: a lane payload finds the check failed.
        let check = LaneCheck::after_points(std::process::id(), &[64, 1 << 20]).expect("maps");
        assert!(matches!(check, LaneCheck::Failed { .. }), "{check:?}");
    }
}
