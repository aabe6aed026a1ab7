//! The harness behind the integration tests: real `rpc-server` and `rpc-client` binaries, real
//! sockets, a fresh temporary directory per test.
//!
//! - [`TestDir`]: a temporary directory, removed at the end of the test; the server's runtime
//!   directory and its captured stderr live in it.
//! - [`ServerCommand`] / [`ServerProcess`]: start `rpc-server` (built on first use, see
//!   [`binaries`]), wait for its `listening on` lines, signal it, and kill it when the test ends
//!   however it ends.
//! - [`run_client`]: run the `rpc-client` CLI and keep its exit status and output.
//! - [`assert_serves_calls`]: the "is a normal client still served?" check that ends most tests.
//! - [`raw`]: the protocol spoken by hand, for tests that must send what no real client sends.
//! - [`raw_lane`]: the shared-memory lane spoken by hand: regions, descriptors and lane frames
//!   no real sender makes.
//! - [`resources`]: the server's descriptors, memory and CPU time from `/proc`, and the
//!   "back to its baseline" check that ends the hardening tests.
//! - [`other_user`]: a throwaway system user, for tests of what another user may do.
//!
//! ```no_run
//! # async fn run() {
//! let dir = tests::TestDir::new();
//! let server = dir.server().start();
//! tests::assert_serves_calls(&server.connector()).await;
//! # }
//! ```
//!
//! The tests themselves are in `tests/tests/`, one binary per capability, each a `main.rs` and a
//! module per topic: linking a binary is most of what `cargo test` costs, so a new test joins the
//! binary of what it proves (a new topic is a new module, `mod <topic>;` in that `main.rs`).
//!
//! - `access`: who may connect, and what a refused client is told (tokens, other users,
//!   handshake refusals).
//! - `limits`: what a peer cannot take: connections, descriptors, time mid-frame.
//! - `hostile`: bad bytes and connections that end badly close only that connection.
//! - `lifecycle`: the server's files, where it listens, and how it stops.
//! - `calls`: answers over each transport, from many tasks and clients, across deadlines and
//!   restarts.
//! - `fd_limit`: alone, because it lowers the test process's open-file limit. A test that
//!   changes what the whole process shares (its limits, environment, working directory or umask)
//!   gets a binary of its own like this one.

pub mod binaries;
mod client;
pub mod other_user;
pub mod raw;
pub mod raw_lane;
pub mod resources;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rpc_core::ServerLocation;

pub use client::{
    ClientOutput, Watched, assert_bystander_served, assert_serves_calls, bystander,
    calls_cancelled, run_client, run_client_in, run_client_with_stdin, set_many,
    wait_for_a_cancelled_call, watch,
};
pub use server::{ServerCommand, ServerExit, ServerProcess, wait_for};

/// How long a server may take to print its `listening on` lines, or to exit when it refuses to
/// start. Generous: a loaded CI machine may be slow, and a healthy server takes milliseconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to exit after SIGTERM when no call is in flight. Well under the
/// server's 10 s grace period, so a server that waits out its grace for nothing fails the test.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often [`wait_for`] re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The server name the binaries use when none is given.
pub const DEFAULT_NAME: &str = rpc_core::location::DEFAULT_NAME;

/// A fresh temporary directory for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDir {
    temp: tempfile::TempDir,
}

impl TestDir {
    /// Creates the directory.
    pub fn new() -> Self {
        TestDir {
            temp: tempfile::tempdir().expect("a temporary directory can be created"),
        }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// The runtime directory servers started by [`TestDir::server`] use: `<dir>/run`, which does
    /// not exist until a server creates it (so its mode is the server's doing).
    pub fn runtime_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    /// The location of the server called [`DEFAULT_NAME`] in [`TestDir::runtime_dir`].
    pub fn location(&self) -> ServerLocation {
        ServerLocation::new(Some(self.runtime_dir()), DEFAULT_NAME)
            .expect("the default name is valid")
    }

    /// An `rpc-server` command with `--runtime-dir` set to [`TestDir::runtime_dir`] and its
    /// stderr captured to a file in this directory.
    pub fn server(&self) -> ServerCommand {
        ServerCommand::new(self.runtime_dir(), self.path().to_owned(), DEFAULT_NAME)
    }
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for a helper process (a hostile client written in Python, say) to print `ready` on its
/// piped stdout, the line it prints once it is where a test wants it.
pub async fn wait_for_ready_line(child: &mut std::process::Child, who: &str) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout is piped");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("the reader thread ends")
    .expect("the child's stdout is readable");
    assert_eq!(line.trim(), "ready", "the {who} did not get ready");
}
