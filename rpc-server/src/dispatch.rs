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

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::future::{AbortRegistration, Abortable};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Sink, Stream, StreamExt};
use rpc_core::CodecError;
use tarpc::{ClientMessage, Request, Response, ServerError, context};

use crate::in_flight::InFlight;
use crate::log_limit::LogLimit;
use crate::stats::ServerStatus;

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
    /// response, or with `None` if it was aborted.
    running: FuturesUnordered<Call>,
    /// The running calls by request id, for cancels and deadlines.
    in_flight: InFlight,
    /// A finished call's response the transport had no room for yet.
    unsent: Option<Response<Resp>>,
    /// False once the request stream has ended: no more requests will come.
    reading: bool,
    /// Handler futures allowed at once, beyond which requests are throttled.
    max_in_flight: usize,
}

impl<T, Req, Resp, NewCall, Call> Dispatch<T, Resp, NewCall, Call>
where
    T: Stream<Item = Result<ClientMessage<Req>, CodecError>>
        + Sink<Response<Resp>, Error = CodecError>
        + Unpin,
    NewCall: FnMut(Request<Req>, AbortRegistration) -> Call,
    Call: Future<Output = Option<Response<Resp>>>,
{
    /// Serves the calls arriving on `transport`, at most `max_in_flight` at once, each run as
    /// `new_call` makes it.
    pub(crate) fn new(transport: T, max_in_flight: usize, new_call: NewCall) -> Self {
        Dispatch {
            transport,
            new_call,
            running: FuturesUnordered::new(),
            in_flight: InFlight::default(),
            unsent: None,
            reading: true,
            max_in_flight,
        }
    }

    /// Serves the connection to its end; a transport error is logged (rate-limited: a hostile
    /// peer must not flood the log) and ends the connection, as the peer leaving does.
    pub(crate) async fn run(self, connection: u64) {
        if let Err(err) = self.await {
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

    /// Takes the response of a call that finished, if any, as the one to send next; whether a
    /// call ended (an aborted call ends with no response).
    fn take_finished(&mut self, cx: &mut Context<'_>) -> bool {
        match self.running.poll_next_unpin(cx) {
            Poll::Ready(Some(Some(response))) => {
                self.in_flight.finish(response.request_id);
                self.unsent = Some(response);
                true
            }
            Poll::Ready(Some(None)) => true,
            Poll::Ready(None) | Poll::Pending => false,
        }
    }

    /// Queues the unsent response once the transport has room for it. Pending (the response
    /// kept) while the socket is full.
    fn poll_queue_unsent(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.transport().poll_ready(cx))?;
        if let Some(response) = self.unsent.take() {
            self.queue(response)?;
        }
        Poll::Ready(Ok(()))
    }

    /// Queues `response`, or in its place an error for its call if it is over the frame limit:
    /// nothing was queued, so that call fails alone.
    fn queue(&mut self, response: Response<Resp>) -> Result<(), CodecError> {
        let request_id = response.request_id;
        match self.transport().start_send(response) {
            Err(CodecError::OutgoingTooLarge { limit }) => {
                self.transport().start_send(too_large(request_id, limit))
            }
            queued => queued,
        }
    }

    /// Reads and handles the next message if one may be read: `Ready(Ok)` once one was handled,
    /// `Pending` when none may or can be read now. When the request stream ends, `reading`
    /// turns false and this is `Pending` too: the loop goes on to finish the running calls.
    ///
    /// At the in-flight limit the next request is answered at once with an error, as tarpc
    /// does, so it is read only when that answer can be queued. The limit counts handler
    /// futures, not tracked calls: a cancelled call's future lives on until it is polled again,
    /// which waits while a response is unsent, so a peer that cancels what it sends must not get
    /// past the limit.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        if !self.reading {
            return Poll::Pending;
        }
        let at_limit = self.running.len() >= self.max_in_flight;
        if at_limit && (self.unsent.is_some() || self.transport().poll_ready(cx)?.is_pending()) {
            return Poll::Pending;
        }
        match ready!(self.transport().poll_next(cx)) {
            Some(Ok(ClientMessage::Request(request))) if at_limit => {
                self.transport().start_send(throttled(request.id))?;
            }
            Some(Ok(ClientMessage::Request(request))) => self.start(request),
            Some(Ok(ClientMessage::Cancel { request_id, .. })) => self.in_flight.cancel(request_id),
            // A kind of message a later tarpc may add; this one decodes none.
            Some(Ok(_)) => {}
            Some(Err(err)) => return Poll::Ready(Err(err)),
            None => {
                self.reading = false;
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Starts running `request`'s handler, unless [`admit`] turns it away.
    fn start(&mut self, mut request: Request<Req>) {
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
        + Unpin,
    NewCall: FnMut(Request<Req>, AbortRegistration) -> Call,
    Call: Future<Output = Option<Response<Resp>>>,
{
    type Output = Result<(), CodecError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // A finished call's response goes out before more calls are read.
            if this.unsent.is_none() && this.take_finished(cx) {
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
            match this.poll_read(cx) {
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
            if !this.reading && this.running.is_empty() {
                return Poll::Ready(Ok(()));
            }
            return Poll::Pending;
        }
    }
}

/// One call: `handler` run on `request`, counted in the server's `status`, and aborted when the
/// connection stops tracking it (the client cancelled, or its deadline passed). `None` when
/// aborted: nobody waits for that answer. The handler is called when the call is first polled,
/// not before.
///
/// A handler that panics fails its own call with a `ServerError` ("the handler panicked"); the
/// panic is caught here, so the connection and the other calls on it go on (the process's panic
/// hook has reported it: `rpc-server` logs it, escaped, through `tracing`).
pub(crate) fn call<H, Req, Resp, Fut>(
    handler: H,
    status: Arc<ServerStatus>,
    request: Request<Req>,
    registration: AbortRegistration,
) -> impl Future<Output = Option<Response<Resp>>>
where
    H: FnOnce(context::Context, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ServerError>>,
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
            let message = handled.unwrap_or_else(|_| Err(panicked()));
            Response {
                request_id,
                message,
            }
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

/// The error a call whose handler panicked gets. The panic's own message is not sent: it may say
/// more about the server than its clients should see.
fn panicked() -> ServerError {
    ServerError::new(
        std::io::ErrorKind::Other,
        "the handler panicked (see the server's log)".into(),
    )
}

/// The answer to a call over the in-flight limit: tarpc's own, so clients can tell it apart.
fn throttled<Resp>(request_id: u64) -> Response<Resp> {
    Response {
        request_id,
        message: Err(ServerError::new(
            std::io::ErrorKind::WouldBlock,
            "server throttled the request.".into(),
        )),
    }
}

/// The answer to a call whose response would not fit in a frame: the call fails, the connection
/// and the other calls on it go on.
fn too_large<Resp>(request_id: u64, limit: usize) -> Response<Resp> {
    Response {
        request_id,
        message: Err(ServerError::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the response is larger than the server's frame limit of {limit} bytes \
                 (--max-frame)"
            ),
        )),
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
