//! The shutdown signal, and a transport wrapper that stops reading when it fires.
//!
//! Shutdown stops new calls and lets in-flight ones finish: each connection's request stream ends
//! when the signal fires, and tarpc then finishes the calls it already started, writes their
//! responses and closes. The server waits for every connection task (a [`TaskTracker`]) for at
//! most the grace period.
//!
//! [`TaskTracker`]: tokio_util::task::TaskTracker

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

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

pin_project! {
    /// A transport whose incoming stream ends once `shutdown` is cancelled; sending goes on.
    pub struct UntilShutdown<T> {
        #[pin]
        inner: T,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        done: bool,
    }
}

impl<T> UntilShutdown<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, shutdown: CancellationToken) -> Self {
        UntilShutdown {
            inner,
            cancelled: shutdown.cancelled_owned(),
            done: false,
        }
    }
}

impl<T: Stream> Stream for UntilShutdown<T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let this = self.project();
        if *this.done || this.cancelled.poll(cx).is_ready() {
            *this.done = true;
            return Poll::Ready(None);
        }
        this.inner.poll_next(cx)
    }
}

impl<T: Sink<I>, I> Sink<I> for UntilShutdown<T> {
    type Error = T::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), T::Error> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_close(cx)
    }
}
