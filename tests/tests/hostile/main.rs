//! Hostile and unlucky peers: bad bytes, and connections that end badly. Each test checks that
//! only the offending connection is closed and that the server's descriptors and memory come
//! back. One test binary for these modules, since linking a binary is most of what `cargo test`
//! costs.
//!
//! - [`bad_input`]: raw bytes no real client sends, one test per kind of bad input.
//! - [`faults`]: frames cut short, sizes that lie, a client or the server killed mid-call.
//! - [`server_answers`]: a hostile server's answers (another method's response, schema names
//!   that would forge lines) give the client an error, never a panic or a forged line.
//! - [`shm`]: the shared-memory lane spoken by hand: slots outside the region or out of order,
//!   descriptors that are no usable region, lane frames without a lane, a peer scribbling over
//!   its slots, never giving slots back, or killed mid-transfer.
//! - [`streams`]: streams never granted credit, granted absurd credit and never read, flooded
//!   with grants, or opened past the limit.
//! - [`untrusted_text`]: control characters in what a peer sends never reach a terminal or a log
//!   line raw, on either side.
//!
//! A new test that speaks raw bytes at the server, or kills one side mid-call, goes here.

mod bad_input;
mod faults;
mod server_answers;
mod shm;
mod streams;
mod untrusted_text;
