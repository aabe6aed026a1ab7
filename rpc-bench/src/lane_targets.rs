//! The shared-memory lane's targets (9 to 11): what rpc-shm promises against the socket path
//! (`rpc uds`, the same server and socket with the lane off) and against the raw floor. Judged,
//! like the others, on the medians of a run's rounds and counted round by round (see
//! `targets.rs`).

use crate::report::Report;
use crate::spread::Pick;
use crate::subject::{Implementation, Transport};
use crate::targets::TargetCheck;

/// Target 9: the most rpc-shm's 1 MiB p50 may be, as a share of raw UDS's.
const MAX_SHM_TO_RAW_1MIB: f64 = 0.6;
/// Target 10: the least rpc-shm's 1 MiB throughput (64 in flight on 4 connections) must be, as
/// a multiple of the socket path's.
const MIN_SHM_TO_SOCKET_RATE: f64 = 2.0;
/// Target 11: the most rpc-shm's 64 B p50 may be, as a multiple of the socket path's (the lane
/// is agreed but unused at 64 B: what merely having it costs).
const MAX_SHM_TO_SOCKET_64B: f64 = 1.05;

impl Report {
    /// The lane's targets, judged on the figures `pick` chooses.
    pub(crate) fn lane_targets_in(&self, pick: Pick) -> Vec<TargetCheck> {
        use Implementation::*;
        use Transport::*;
        let p50 = |imp, p| self.p50_in(pick, imp, Uds, p);
        let mut checks = Vec::new();
        let target = format!(
            "9. 1 MiB sequential echo over UDS, p50: rpc-shm (the lane) at most \
             {MAX_SHM_TO_RAW_1MIB}x raw UDS"
        );
        checks.push(match (p50(RpcShm, 1 << 20), p50(Raw, 1 << 20)) {
            (Some(shm), Some(raw)) => TargetCheck::new(
                target,
                format!(
                    "{:.2}x (rpc-shm {shm:.1} us vs raw uds {raw:.1} us)",
                    shm / raw
                ),
                shm / raw <= MAX_SHM_TO_RAW_1MIB,
            ),
            _ => TargetCheck::not_measured(target),
        });
        let target = format!(
            "10. 1 MiB, 64 in flight on each of 4 UDS connections: rpc-shm (the lane) at least \
             {MIN_SHM_TO_SOCKET_RATE}x the calls/s of rpc uds (the socket path)"
        );
        let rate = |imp| self.rate_in(pick, imp, Uds, 1 << 20, 64, 4);
        checks.push(match (rate(RpcShm), rate(Rpc)) {
            (Some(shm), Some(socket)) => TargetCheck::new(
                target,
                format!(
                    "{:.2}x (rpc-shm {shm:.0}/s vs rpc uds {socket:.0}/s)",
                    shm / socket
                ),
                shm / socket >= MIN_SHM_TO_SOCKET_RATE,
            ),
            _ => TargetCheck::not_measured(target),
        });
        let target = format!(
            "11. 64 B sequential echo over UDS, p50: rpc-shm (the lane agreed, unused at this \
             size) at most {MAX_SHM_TO_SOCKET_64B}x rpc uds (the socket path)"
        );
        checks.push(match (p50(RpcShm, 64), p50(Rpc, 64)) {
            (Some(shm), Some(socket)) => TargetCheck::new(
                target,
                format!(
                    "{:.2}x (rpc-shm {shm:.1} us vs rpc uds {socket:.1} us)",
                    shm / socket
                ),
                shm / socket <= MAX_SHM_TO_SOCKET_64B,
            ),
            _ => TargetCheck::not_measured(target),
        });
        checks
    }
}
