//! [`Dispatch`]: one connection's call loop. It reads requests from the transport, runs their
//! handlers and writes their responses, in place of tarpc's `BaseChannel`.
//!
//! Calls run concurrently inside the connection's task rather than one task each, and their
//! responses go straight into the socket's queue rather than through a response channel: a call
//! then costs no spawn, and nothing wakes the task while it runs (in tokio a task that wakes
//! itself also wakes an idle worker thread; that was a futex call per call). Handlers that burn
//! CPU or block should move that work to `spawn_blocking` (as in any async handler).
//!
//! What the loop promises, in the order it checks them each time round:
//!
//! - A finished call's response is queued before more requests are read. A response over the
//!   frame limit fails that call alone.
//! - When the socket is full, the response waits and reading goes on: the in-flight limit bounds
//!   what the reading can add. The running calls are not polled until that response is queued,
//!   so a client that does not read its answers holds up its own calls, not the server.
//! - A call whose deadline passes, or that its client cancels, has its handler dropped at once
//!   and is never answered (see [`InFlight`]).
//! - At the in-flight limit, the next request is answered at once with tarpc's "server throttled
//!   the request." error, and read only when that answer can be queued.
//! - When the request stream ends (the peer closed its side, or shutdown began: see
//!   [`crate::guard`]), the calls already started are finished and answered, then the loop ends.
//! - A transport error (a socket error, a malformed or stalled frame) ends the connection at
//!   once, dropping the calls it runs.
//!
//! A call to a streaming method answers with a stream ([`Answer::Stream`]), which then lives on
//! in [`OpenStreams`] past its call: polled while its client's credit lasts, its answers queued
//! as a finished call's are. A finished call's response goes before a stream's next item, and
//! at most [`STREAM_BURST`] items are queued before requests are read again, so a saturating
//! stream delays the other calls on its connection by a few items, not by its window. (While a
//! stream saturates the connection this task never waits, so the runtime would report a request
//! arriving only every few dozen polls of it: after each burst the loop looks at the socket
//! itself, see [`ReceiveNow`].) At most
//! `max_streams` streams are open at once; one more is answered with a "would block" error.
//! When the request stream ends, every open stream is closed with an error saying so.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::{AbortRegistration, Abortable};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Sink, Stream, StreamExt};
use rpc_core::CodecError;
use rpc_core::streaming::Answer;
use rpc_core::wire::ClientMessage;
use tarpc::{Request, Response, ServerError, context};

use crate::in_flight::InFlight;
use crate::log_limit::LogLimit;
pub(crate) use crate::loop_transport::{OutgoingQueue, ReceiveNow};
use crate::open_streams::{OpenStreams, Yielded};
use crate::refusals::{closed_by_shutdown, panicked, throttled, too_large, too_many_streams};
use crate::stats::ServerStatus;

/// Stream items queued per turn of the loop before requests are read (and the socket flushed)
/// again: a saturating stream holds up the other calls on its connection by this many items.
pub(crate) const STREAM_BURST: usize = 16;

/// A call that finished: its id and its answer.
pub(crate) struct Finished<Resp> {
    request_id: u64,
    answer: Answer<Resp>,
}

/// A response waiting for room in the transport.
struct Unsent<Resp> {
    response: Response<Resp>,
    /// Whether it is an item of the stream its request id names (so more may follow).
    stream_item: bool,
}

impl<Resp> Unsent<Resp> {
    fn new(request_id: u64, message: Result<Resp, ServerError>, stream_item: bool) -> Self {
        Unsent {
            response: Response {
                request_id,
                message,
            },
            stream_item,
        }
    }
}

/// One connection's calls: the requests read from `transport`, the handlers running for them,
/// and the responses on their way back. A future that ends when the connection is done with:
/// `Ok` once the request stream ended and every started call was answered, or the transport
/// error that ended it early.
///
/// `T` is the transport ([`crate::guard::GuardedTransport`] when serving). `NewCall` turns
/// an admitted request into its call's future (see [`call`]), which yields `None` for a call
/// aborted before it finished.
pub(crate) struct Dispatch<T, Resp, NewCall, Call> {
    transport: T,
    new_call: NewCall,
    /// The handlers running, as futures polled by this task; a call's future ends with its
    /// answer, or with `None` if it was aborted.
    running: FuturesUnordered<Call>,
    /// The running calls by request id, for cancels and deadlines.
    in_flight: InFlight,
    /// The streams open, by the id of the call that opened each.
    streams: OpenStreams<Resp>,
    /// Streams closed when the request stream ended, still to be told why.
    closing: Vec<u64>,
    /// A response the transport had no room for yet.
    unsent: Option<Unsent<Resp>>,
    /// False once the request stream has ended: no more requests will come.
    reading: bool,
    /// Handler futures allowed at once, beyond which requests are throttled.
    max_in_flight: usize,
    /// Streams allowed open at once, beyond which a stream is refused.
    max_streams: usize,
}

impl<T, Req, Resp, NewCall, Call> Dispatch<T, Resp, NewCall, Call>
where
    T: Stream<Item = Result<ClientMessage<Req>, CodecError>>
        + Sink<Response<Resp>, Error = CodecError>
        + OutgoingQueue
        + ReceiveNow
        + Unpin,
    Resp: Send + 'static,
    NewCall: FnMut(Request<Req>, AbortRegistration) -> Call,
    Call: Future<Output = Option<Finished<Resp>>>,
{
    /// Serves the calls arriving on `transport`, at most `max_in_flight` at once, each run as
    /// `new_call` makes it, with at most [`DEFAULT_MAX_STREAMS`] streams open (see
    /// [`Dispatch::max_streams`]).
    ///
    /// [`DEFAULT_MAX_STREAMS`]: rpc_core::limits::DEFAULT_MAX_STREAMS
    pub(crate) fn new(transport: T, max_in_flight: usize, new_call: NewCall) -> Self {
        Dispatch {
            transport,
            new_call,
            running: FuturesUnordered::new(),
            in_flight: InFlight::default(),
            streams: OpenStreams::default(),
            closing: Vec::new(),
            unsent: None,
            reading: true,
            max_in_flight,
            max_streams: rpc_core::limits::DEFAULT_MAX_STREAMS,
        }
    }

    /// At most `max_streams` streams open at once on this connection.
    pub(crate) fn max_streams(mut self, max_streams: usize) -> Self {
        self.max_streams = max_streams;
        self
    }

    /// Serves the connection to its end; a transport error is logged (rate-limited: a hostile
    /// peer must not flood the log) and ends the connection, as the peer leaving does.
    pub(crate) async fn run(self, connection: u64) {
        if let Err(err) = self.await {
            if peer_left(&err) {
                // A client that goes away while answers are on their way (it dropped a stream
                // it was reading, or was killed mid-call) is not misbehaving.
                tracing::debug!(
                    connection,
                    error = %rpc_core::Untrusted(&rpc_core::error_chain(&err)),
                    "the peer left while answers were being sent"
                );
                return;
            }
            static BROKEN: LogLimit = LogLimit::new();
            if let Some(suppressed) = BROKEN.allow() {
                tracing::warn!(
                    connection,
                    error = %rpc_core::Untrusted(&rpc_core::error_chain(&err)),
                    suppressed,
                    "closing connection after a transport error"
                );
            }
        }
    }

    /// The transport, as `Stream` and `Sink` methods take it.
    fn transport(&mut self) -> Pin<&mut T> {
        Pin::new(&mut self.transport)
    }

    /// Takes the answer of a call that finished, if any: its response becomes the one to send
    /// next, or its stream is opened. Whether a call ended (an aborted call ends unanswered).
    fn take_finished(&mut self, cx: &mut Context<'_>) -> bool {
        let finished = match self.running.poll_next_unpin(cx) {
            Poll::Ready(Some(Some(finished))) => finished,
            Poll::Ready(Some(None)) => return true,
            Poll::Ready(None) | Poll::Pending => return false,
        };
        let Finished { request_id, answer } = finished;
        self.in_flight.finish(request_id);
        let message = match answer {
            Answer::One(message) => message,
            Answer::Stream(_) if !self.reading => Err(closed_by_shutdown()),
            Answer::Stream(_) if self.streams.len() >= self.max_streams => {
                Err(too_many_streams(self.max_streams))
            }
            Answer::Stream(stream) => {
                self.streams.open(request_id, stream);
                return true;
            }
        };
        self.streams.forget(request_id);
        self.unsent = Some(Unsent::new(request_id, message, false));
        true
    }

    /// Takes a stream's next answer, if one is ready, as the one to send next; or tells a
    /// stream closed by the end of the request stream why. Whether there was one.
    fn take_streamed(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(request_id) = self.closing.pop() {
            self.unsent = Some(Unsent::new(request_id, Err(closed_by_shutdown()), false));
            return true;
        }
        let Poll::Ready((request_id, yielded)) = self.streams.poll_next(cx) else {
            return false;
        };
        let (message, stream_item) = match yielded {
            Yielded::Item(item) => (Ok(item), true),
            Yielded::Last(last) => (last, false),
        };
        self.unsent = Some(Unsent::new(request_id, message, stream_item));
        true
    }

    /// Queues the unsent response once the transport has room for it. Pending (the response
    /// kept) while the socket is full.
    fn poll_queue_unsent(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.transport().poll_ready(cx))?;
        if let Some(unsent) = self.unsent.take() {
            self.queue(unsent)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues `unsent`, or in its place an error for its call if it is over the frame limit:
    /// nothing was queued, so that call (or stream) fails alone. A stream's item takes its
    /// length off the stream's credit.
    fn queue(&mut self, unsent: Unsent<Resp>) -> Result<(), CodecError> {
        let request_id = unsent.response.request_id;
        match self.transport().start_send(unsent.response) {
            Err(CodecError::OutgoingTooLarge { limit }) => {
                if unsent.stream_item {
                    self.streams.cancel(request_id);
                }
                self.transport().start_send(too_large(request_id, limit))
            }
            Err(err) => Err(err),
            Ok(()) => {
                if unsent.stream_item {
                    let len = self.transport.last_queued_len();
                    self.streams.sent(request_id, len);
                }
                Ok(())
            }
        }
    }

    /// The request stream ended: no grant will come, so every open stream is closed now, each
    /// to be told why.
    fn stop_reading(&mut self) {
        self.reading = false;
        self.closing = self.streams.close_all();
    }

    /// Reads and handles the next message if one may be read: `Ready(Ok)` once one was handled,
    /// `Pending` when none may or can be read now. When the request stream ends, `reading`
    /// turns false (and this is `Pending` from then on): the loop goes on to close the open
    /// streams and finish the running calls.
    ///
    /// At the in-flight limit the next request is answered at once with an error, as tarpc
    /// does, so it is read only when that answer can be queued: when the transport is ready,
    /// or waits only for room in the shared-memory region (then reading is what brings the
    /// client's report of slots copied, which lets the waiting answer go). The limit counts handler
    /// futures, not tracked calls: a cancelled call's future lives on until it is polled again,
    /// which waits while a response is unsent, so a peer that cancels what it sends must not get
    /// past the limit.
    ///
    /// With `now`, only a message whose bytes are here now is read, and no wake-up is
    /// registered for the next (see [`ReceiveNow`]).
    fn poll_read(&mut self, cx: &mut Context<'_>, now: bool) -> Poll<Result<(), CodecError>> {
        if !self.reading {
            return Poll::Pending;
        }
        let at_limit = self.running.len() >= self.max_in_flight;
        if at_limit
            && (self.unsent.is_some()
                || (self.transport().poll_ready(cx)?.is_pending()
                    && !self.transport.waits_only_for_room()))
        {
            return Poll::Pending;
        }
        let message = if now {
            ready!(self.transport().receive_now())
        } else {
            ready!(self.transport().poll_next(cx))
        };
        match message {
            Some(Ok(ClientMessage::Request(request))) if at_limit => {
                self.transport().start_send(throttled(request.id))?;
            }
            Some(Ok(ClientMessage::Request(request))) => self.start(request),
            Some(Ok(ClientMessage::Cancel { request_id, .. })) => {
                self.in_flight.cancel(request_id);
                self.streams.cancel(request_id);
            }
            Some(Ok(ClientMessage::Grant { request_id, bytes })) => {
                let running = self.in_flight.contains(request_id);
                self.streams.grant(request_id, bytes, running);
            }
            Some(Err(err)) => return Poll::Ready(Err(err)),
            None => {
                // Ready: the loop goes round again, to tell the closed streams why.
                self.stop_reading();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Starts running `request`'s handler, unless [`admit`] turns it away (or a stream with
    /// its id is open: a duplicate, ignored as a running call's duplicate is).
    fn start(&mut self, mut request: Request<Req>) {
        if self.streams.contains(request.id) {
            return;
        }
        if let Some(registration) = admit(&mut self.in_flight, &mut request) {
            let call = (self.new_call)(request, registration);
            self.running.push(call);
        }
    }
}

// Nothing in a dispatch is pinned in place: `running` keeps each call's future pinned in its own
// allocation, and the transport is `Unpin` (a `!Unpin` one is passed pinned, as `Pin<&mut T>`).
impl<T: Unpin, Resp, NewCall, Call> Unpin for Dispatch<T, Resp, NewCall, Call> {}

impl<T, Req, Resp, NewCall, Call> Future for Dispatch<T, Resp, NewCall, Call>
where
    T: Stream<Item = Result<ClientMessage<Req>, CodecError>>
        + Sink<Response<Resp>, Error = CodecError>
        + OutgoingQueue
        + ReceiveNow
        + Unpin,
    Resp: Send + 'static,
    NewCall: FnMut(Request<Req>, AbortRegistration) -> Call,
    Call: Future<Output = Option<Finished<Resp>>>,
{
    type Output = Result<(), CodecError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut burst = STREAM_BURST;
        let mut looked = false;
        loop {
            // A finished call's response goes out before more calls are read.
            if this.unsent.is_none() && this.take_finished(cx) {
                continue;
            }
            // Then a stream's next item, a few per turn.
            if this.unsent.is_none() && burst > 0 && this.take_streamed(cx) {
                burst -= 1;
                continue;
            }
            // While the socket is full the response waits here, and reading goes on below.
            if this.unsent.is_some() {
                match this.poll_queue_unsent(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => {}
                }
            }
            // Aborted calls end, unanswered, when `running` next polls them.
            if this.in_flight.poll_expired(cx) {
                continue;
            }
            match this.poll_read(cx, false) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {}
            }
            ready!(this.transport().poll_flush(cx))?;
            if this.unsent.is_some() {
                // The flush made room for the response that could not be queued: queue it now.
                // (Returning here would wait for a wake-up the flush consumed.)
                continue;
            }
            if !this.reading
                && this.running.is_empty()
                && this.streams.len() == 0
                && this.closing.is_empty()
            {
                return Poll::Ready(Ok(()));
            }
            if burst == 0 {
                // Streams may have more ready, so this task runs on, and the runtime may not
                // have seen what arrived meanwhile: look for it once per burst.
                if !looked {
                    looked = true;
                    match this.poll_read(cx, true) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => {}
                    }
                }
                // Come back after the other tasks had a turn.
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }
}

/// Whether `err` only says the peer closed or reset the connection while answers were being
/// written: a write to a closed socket, not a malformed or stalled frame.
fn peer_left(err: &CodecError) -> bool {
    matches!(
        err,
        CodecError::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        )
    )
}

/// One call: `handler` run on `request`, counted in the server's `status`, and aborted when the
/// connection stops tracking it (the client cancelled, or its deadline passed). `None` when
/// aborted: nobody waits for that answer. The handler is called when the call is first polled,
/// not before. A streaming method's call ends when its handler has returned the stream; the
/// stream lives on in the dispatch.
///
/// A handler that panics fails its own call with a `ServerError` ("the handler panicked"); the
/// panic is caught here, so the connection and the other calls on it go on (the process's panic
/// hook has reported it: `rpc-server` logs it, escaped, through `tracing`).
pub(crate) fn call<H, Req, Resp, Fut>(
    handler: H,
    status: Arc<ServerStatus>,
    request: Request<Req>,
    registration: AbortRegistration,
) -> impl Future<Output = Option<Finished<Resp>>>
where
    H: FnOnce(context::Context, Req) -> Fut,
    Fut: Future<Output = Answer<Resp>>,
{
    let request_id = request.id;
    Abortable::new(
        async move {
            let call = status.call_started();
            let handled =
                AssertUnwindSafe(async { handler(request.context, request.message).await })
                    .catch_unwind()
                    .await;
            call.finish();
            let answer = handled.unwrap_or_else(|_| Answer::One(Err(panicked())));
            Finished { request_id, answer }
        },
        registration,
    )
    .map(Result::ok)
}

/// Starts tracking `request`, or `None` when it is not to be run: its deadline has passed
/// already (its client has stopped waiting, so no answer is sent) or a call with its id is
/// running (tarpc ignores such a duplicate). The handler gets a span of its own in the client's
/// trace, as tarpc's `BaseChannel` gives it.
fn admit<Req>(in_flight: &mut InFlight, request: &mut Request<Req>) -> Option<AbortRegistration> {
    let deadline = request.context.deadline;
    if deadline <= rpc_core::timers::now() {
        return None;
    }
    let registration = in_flight.start(request.id, deadline)?;
    request.context.trace_context = rpc_core::trace::child_context(&request.context.trace_context);
    Some(registration)
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "dispatch_stream_tests.rs"]
mod stream_tests;
