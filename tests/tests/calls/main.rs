//! Calls: requests answered correctly over each transport, from many tasks and clients at once,
//! and across deadlines, cancellation and restarts. One test binary for these modules, since
//! linking a binary is most of what `cargo test` costs.
//!
//! - [`transport`]: calls over Unix and TCP, through the library and the `rpc-client` CLI.
//! - [`channel`]: the client's channel: many tasks on one connection, slow calls beside fast
//!   ones, calls abandoned or left unpolled.
//! - [`reconnect`]: deadlines, cancellation, the in-flight limit, and reconnection after a
//!   restart.
//! - [`restarts`]: every client kind survives its server's restart, killed or stopped.
//! - [`shm`]: a large echo over a Unix socket goes through the shared-memory lane, and through
//!   the socket when either side turns the lane off.
//! - [`concurrency`]: many clients at once, each getting its own answers.
//! - [`declared`]: a service of one's own, declared with `#[rpc_core::service]`: tarpc's bytes on
//!   the wire, hosted and called by its type.
//!
//! - [`shell`]: `rpc-client` from the shell on services it has no code for: `list`,
//!   `describe`, `call` with JSON, stdin, exit codes, completions.
//! - [`json_path`]: the bytes `rpc-client call` sends are a compiled client's, for every method.
//! - [`watch`]: `rpc-client watch` on `kv.watch`: a line per change, and `Lagged` after a
//!   SIGSTOP through 100 000 sets.
//! - [`wire_spec`]: a Python client written from `docs/wire.md` alone, streams included.
//!
//! - [`no_sigpipe`]: every socket write is a `sendmsg` with `MSG_NOSIGNAL`, seen under strace.
//!
//! A new test of what a well-behaved client gets goes here.

mod channel;
mod concurrency;
mod declared;
mod json_path;
mod no_sigpipe;
mod reconnect;
mod restarts;
mod shell;
mod shm;
mod transport;
mod watch;
mod wire_spec;
