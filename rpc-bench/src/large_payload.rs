//! The large-payload row (64 MiB by default): payloads past the framework's default frame limit,
//! too slow to sweep through every throughput point and subject in a run of reasonable length.
//!
//! A large payload is measured for sequential latency only (1 call in flight, 1 connection), on
//! the subjects in [`SUBJECTS`], with [`WARMUP_CALLS`] warm-up calls, [`SLICE_WARMUP_CALLS`]
//! more at the start of each round's turn, and at most [`CALLS_PER_ROUND`] timed calls a round,
//! so it costs a few seconds of a run. To take it, the
//! connections raise their limits to [`room`] for it: the framework's frame limit (client and the
//! server the bench starts), and rpc-shm's region, so that a 64 MiB field fits the lane; stock
//! tarpc's frame limit is raised once for every payload (see `stock.rs`).

use rpc_core::FrameLimit;
use rpc_core::lane::{DEFAULT_SHM_SIZE, ShmSize};
use rpc_core::limits::DEFAULT_MAX_FRAME;

use crate::subject::{Implementation, Subject, Transport};

/// The large payload of the default run: 64 MiB.
pub const PAYLOAD: usize = 64 << 20;

/// The largest payload `--payload` takes: 64 MiB.
pub const MAX_PAYLOAD: usize = PAYLOAD;

/// Payloads above this (8 MiB, the largest `--payload` took before) are large.
const LARGE_ABOVE: usize = 8 << 20;

/// Untimed calls before a large payload's rounds: enough to fault in every buffer once.
pub const WARMUP_CALLS: usize = 2;

/// Untimed calls at the start of each of a large payload's slices: one, so that every subject's
/// timed calls find the buffers of the processes it runs through in memory. Without it, the
/// subject that came after other servers' turns found the allocators had given its server's
/// buffers back (mimalloc does after 1 s unused) and paid to fault them in again, about 150 ms
/// of a 64 MiB call, while the one right after it on the same server did not. `rpc uds` (first
/// in a round, or after stock tarpc's turn) against `rpc tcp` (right after it on the same
/// `rpc-server`, in four rounds of five) lost the 64 MiB row of every run (BENCHMARKS.md, "64
/// MiB over the socket path, after a pause").
pub const SLICE_WARMUP_CALLS: usize = 1;

/// The most calls a large payload's round times, whatever its duration.
pub const CALLS_PER_ROUND: u64 = 5;

/// The subjects a large payload is measured on: the socket path over both transports, the lane,
/// the raw floor over both, and stock tarpc over UDS (the configurations measured at every
/// other payload, the current-thread ones aside).
pub const SUBJECTS: [(Implementation, Transport); 6] = [
    (Implementation::Rpc, Transport::Uds),
    (Implementation::RpcShm, Transport::Uds),
    (Implementation::Rpc, Transport::Tcp),
    (Implementation::Raw, Transport::Uds),
    (Implementation::Raw, Transport::Tcp),
    (Implementation::Tarpc, Transport::Uds),
];

/// Whether `payload` is large: latency only, on [`SUBJECTS`].
pub fn is_large(payload: usize) -> bool {
    payload > LARGE_ABOVE
}

/// Whether `subject` is measured at `payload`.
pub fn measures(subject: &Subject, payload: usize) -> bool {
    !is_large(payload) || SUBJECTS.contains(&(subject.implementation, subject.transport))
}

/// The frame limit and region size a connection needs for echoes of `payload` bytes, in bytes:
/// the default while twice the payload fits it, else twice the payload rounded up to a power of
/// two (room for the message around the field, and for the region's alignment).
pub fn room(payload: usize, default: u64) -> u64 {
    let need = (payload as u64).saturating_mul(2).next_power_of_two();
    need.max(default)
}

/// The frame limit for echoes of `payload` bytes ([`room`]).
pub fn frame_limit(payload: usize) -> anyhow::Result<FrameLimit> {
    Ok(FrameLimit::new(
        room(payload, DEFAULT_MAX_FRAME as u64) as usize
    )?)
}

/// The region size `--shm-size` set for the run, if it did (see [`set_shm_size`]).
static SHM_SIZE: std::sync::OnceLock<ShmSize> = std::sync::OnceLock::new();

/// Sets, once and before anything connects, the region rpc-shm offers (and the server the bench
/// starts allows) in place of the client's default: `--shm-size`.
pub fn set_shm_size(size: ShmSize) {
    let _ = SHM_SIZE.set(size);
}

/// The region rpc-shm offers for echoes of `payload` bytes ([`room`]): `--shm-size`, else the
/// client's default, up to 8 MiB.
pub fn region(payload: usize) -> anyhow::Result<ShmSize> {
    let base = SHM_SIZE.get().map_or(DEFAULT_SHM_SIZE, |size| size.bytes());
    Ok(ShmSize::new(room(payload, base))?)
}

/// The arguments that let the rpc server the bench starts take every payload of the run:
/// `--max-frame` and `--shm-size` of [`room`] for the largest (the defaults when none is large).
pub fn server_args(payloads: &[usize]) -> anyhow::Result<Vec<String>> {
    let largest = payloads.iter().copied().max().unwrap_or(0);
    Ok(vec![
        "--max-frame".to_owned(),
        frame_limit(largest)?.bytes().to_string(),
        "--shm-size".to_owned(),
        region(largest)?.bytes().to_string(),
    ])
}

/// What a large payload's row is, printed under the latency table when the run has one.
pub fn note(payloads: &[usize]) -> Option<String> {
    let largest = payloads.iter().copied().filter(|&p| is_large(p)).max()?;
    let subjects: Vec<String> = SUBJECTS
        .iter()
        .map(|(i, t)| format!("{} {}", i.name(), t.name()))
        .collect();
    Some(format!(
        "payloads above 8 MiB: sequential latency only, on {}; {WARMUP_CALLS} warm-up calls, at \
         most {CALLS_PER_ROUND} calls a round; frame limits raised to {} MiB (rpc server and \
         clients; stock tarpc's always), rpc-shm's region to {} MiB; rpc-ct and tarpc-ct not \
         measured",
        subjects.join(", "),
        room(largest, DEFAULT_MAX_FRAME as u64) >> 20,
        room(largest, DEFAULT_SHM_SIZE) >> 20,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_the_default_until_twice_the_payload_passes_it() {
        let default = 16 << 20;
        assert_eq!(room(1 << 20, default), default);
        assert_eq!(room(8 << 20, default), default);
        assert_eq!(room((8 << 20) + 1, default), 32 << 20);
        assert_eq!(room(64 << 20, default), 128 << 20);
    }

    #[test]
    fn the_largest_payload_fits_the_server_and_the_lane() {
        assert!(frame_limit(MAX_PAYLOAD).is_ok());
        assert_eq!(
            region(MAX_PAYLOAD).map(ShmSize::bytes).ok(),
            Some(128 << 20)
        );
        assert!(is_large(PAYLOAD) && !is_large(1 << 20));
    }
}
