//! [`GuardedTransport`]: a served connection's framed socket, with the two guards tarpc lacks.
//!
//! - Shutdown: the incoming stream ends once the server's shutdown token is cancelled, so tarpc
//!   takes no new calls, finishes the ones it started, writes their responses and closes.
//! - Stalls: tarpc has no read timeout. A peer that starts a frame and stops sending would hold
//!   the connection, and the frame's buffer, forever; a frame must complete within the read
//!   timeout of its first byte, or the connection is closed. An idle connection (no partial
//!   frame) is left alone: long-lived clients are normal.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use rpc_core::{CodecError, LocalStream};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::{Decoder, Framed};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pin_project! {
    /// A framed connection that stops reading at shutdown and fails a stalled frame.
    pub(crate) struct GuardedTransport<C> {
        #[pin]
        inner: Framed<LocalStream, C>,
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        #[pin]
        stall: Sleep,
        stall_armed: bool,
        read_timeout: Duration,
        done: bool,
    }
}

impl<C> GuardedTransport<C> {
    /// Guards `inner` with the server's `shutdown` token and `read_timeout`.
    pub(crate) fn new(
        inner: Framed<LocalStream, C>,
        shutdown: CancellationToken,
        read_timeout: Duration,
    ) -> Self {
        GuardedTransport {
            inner,
            cancelled: shutdown.cancelled_owned(),
            stall: tokio::time::sleep(read_timeout),
            stall_armed: false,
            read_timeout,
            done: false,
        }
    }
}

impl<C> Stream for GuardedTransport<C>
where
    C: Decoder<Error = CodecError>,
{
    type Item = Result<C::Item, CodecError>;

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
            Poll::Pending if this.inner.read_buffer().is_empty() => {
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

impl<C, I> Sink<I> for GuardedTransport<C>
where
    C: tokio_util::codec::Encoder<I, Error = CodecError>,
{
    type Error = CodecError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), CodecError> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.project().inner.poll_close(cx)
    }
}
