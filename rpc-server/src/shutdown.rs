//! The shutdown signal, and what shutdown does to a connection.
//!
//! Shutdown stops new calls and lets in-flight ones finish: when the server's shutdown token is
//! cancelled, each connection's request stream ends (the guard in `guard.rs`), and its call loop
//! (`dispatch.rs`) reads no more requests, finishes the calls it already started, writes their
//! responses and closes the connection. The server waits for every connection task (a
//! [`TaskTracker`]) for at most the grace period, then stops waiting.
//!
//! [`TaskTracker`]: tokio_util::task::TaskTracker

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM handlers, installed when this value is made.
///
/// Install them before telling anyone the server is ready: a signal that arrives before the
/// handlers exist kills the process with the default action, leaving its socket and endpoint
/// files behind.
#[derive(Debug)]
pub struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    /// Installs the handlers. Needs a tokio runtime context.
    pub fn install() -> std::io::Result<Self> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM since [`ShutdownSignals::install`].
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}
