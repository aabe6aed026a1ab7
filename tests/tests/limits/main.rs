//! Limits: what a peer cannot take from the server, tested at limit-1, limit and limit+1. One
//! test binary for these modules, since linking a binary is most of what `cargo test` costs.
//!
//! - [`connections`]: `--max-connections` and `--max-connections-per-uid`.
//! - [`stalls`]: `--read-timeout-ms` against a frame started and never finished.
//! - [`descriptors`]: thousands of connections that never say hello, and a server out of
//!   descriptors.
//! - [`stalled_memory`]: peers that stall inside a large field hold little memory, and the
//!   server gives it back once they go.
//! - [`frame_limit_negotiation`]: the smaller of the two sides' frame limits holds, and limit flags
//!   out of range are refused.
//!
//! A new test of a limit or of a resource a peer could exhaust (connections, descriptors,
//! memory, time) goes here. One that changes this process's own limits downwards goes in a
//! binary of its own, as `fd_limit.rs` does.

mod connections;
mod descriptors;
mod frame_limit_negotiation;
mod stalled_memory;
mod stalls;
