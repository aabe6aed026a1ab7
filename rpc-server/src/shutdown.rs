//! The shutdown signal. (The transport side of shutdown lives with each connection's transport.)
//!
//! Shutdown stops new calls and lets in-flight ones finish: each connection's request stream ends
//! when the signal fires, and tarpc then finishes the calls it already started, writes their
//! responses and closes. The server waits for every connection task (a [`TaskTracker`]) for at
//! most the grace period.
//!
//! [`TaskTracker`]: tokio_util::task::TaskTracker

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
    Ok(())
}
