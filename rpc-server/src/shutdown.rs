//! The shutdown signal. (The transport side of shutdown lives with each connection's transport.)
//!
//! Shutdown stops new calls and lets in-flight ones finish: each connection's request stream ends
//! when the signal fires, and tarpc then finishes the calls it already started, writes their
//! responses and closes. The server waits for every connection task (a [`TaskTracker`]) for at
//! most the grace period.
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
