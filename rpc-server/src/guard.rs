//! [`GuardedTransport`]: a served connection's [`WireTransport`] with two guards, for shutdown
//! and for stalled frames. The connection's call loop ([`crate::dispatch`]) reads through it.
//!
//! - Shutdown: the request stream ends once the server's shutdown token is cancelled, as if the
//!   peer had left, so the call loop reads no new calls, finishes the ones it started, writes
//!   their responses and ends, closing the connection.
//! - Stalls: a [`WireTransport`] waits for the rest of a frame for as long as it takes. A peer
//!   that starts a frame and stops sending would hold the connection, and the frame's buffer,
//!   forever; a frame must complete within the read timeout of the server first finding part of
//!   it, or the stream fails with a `TimedOut` error, which ends the connection and drops its
//!   running calls. An idle connection (no partial frame) is left alone: long-lived clients are
//!   normal.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use rpc_core::{CodecError, LocalStream, WireTransport};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pin_project! {
    /// A framed connection whose request stream ends at shutdown and fails on a stalled frame;
    /// once ended either way, it stays ended. Writes pass straight through: responses to the calls
    /// already started still go out after shutdown.
    pub(crate) struct GuardedTransport<In, Out> {
        #[pin]
        inner: WireTransport<LocalStream, In, Out>,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        #[pin]
        stall: Sleep,
        stall_armed: bool,
        read_timeout: Duration,
        done: bool,
        // The token `cancelled` waits on, asked without a waker.
        shutdown: CancellationToken,
    }
}

impl<In, Out> GuardedTransport<In, Out> {
    /// Guards `inner` with the server's `shutdown` token and `read_timeout`.
    pub(crate) fn new(
        inner: WireTransport<LocalStream, In, Out>,
        shutdown: CancellationToken,
        read_timeout: Duration,
    ) -> Self {
        GuardedTransport {
            inner,
            cancelled: shutdown.clone().cancelled_owned(),
            stall: tokio::time::sleep(read_timeout),
            stall_armed: false,
            read_timeout,
            done: false,
            shutdown,
        }
    }
}

impl<In, Out> Stream for GuardedTransport<In, Out>
where
    In: DeserializeOwned,
{
    type Item = Result<In, CodecError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.done || this.cancelled.poll(cx).is_ready() {
            *this.done = true;
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(item) => {
                *this.stall_armed = false;
                Poll::Ready(item)
            }
            Poll::Pending if !this.inner.is_mid_frame() => {
                *this.stall_armed = false;
                Poll::Pending
            }
            Poll::Pending => {
                // Part of a frame is buffered: it must complete before the timer fires.
                if !*this.stall_armed {
                    *this.stall_armed = true;
                    this.stall
                        .as_mut()
                        .reset(Instant::now() + *this.read_timeout);
                }
                match this.stall.poll(cx) {
                    Poll::Ready(()) => {
                        *this.done = true;
                        Poll::Ready(Some(Err(CodecError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "peer stalled mid-frame for {} ms (the read timeout)",
                                this.read_timeout.as_millis()
                            ),
                        )))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<In, Out> crate::loop_transport::ReceiveNow for GuardedTransport<In, Out>
where
    In: DeserializeOwned,
{
    /// The inner transport's [`WireTransport::receive_now`], unless the stream has ended or
    /// shutdown has begun. A partial frame read here arms no timer; the next `poll_next` does,
    /// which the call loop makes before it waits unless it is at its in-flight limit with a
    /// response unsent (when it reads nothing, as before the look).
    fn receive_now(self: Pin<&mut Self>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done || this.shutdown.is_cancelled() {
            return Poll::Pending;
        }
        let item = this.inner.get_mut().receive_now();
        if item.is_ready() {
            *this.stall_armed = false;
        }
        item
    }
}

impl<In, Out> crate::loop_transport::OutgoingQueue for GuardedTransport<In, Out> {
    fn last_queued_len(&self) -> usize {
        self.inner.last_queued_len()
    }

    fn waits_only_for_room(&self) -> bool {
        self.inner.waits_only_for_room()
    }
}

impl<In, Out> Sink<Out> for GuardedTransport<In, Out>
where
    Out: Serialize,
{
    type Error = CodecError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), CodecError> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_close(cx)
    }
}
