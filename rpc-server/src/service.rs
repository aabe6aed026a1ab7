//! Hosting tarpc services behind names: the type-erased service a connection is handed to after
//! its handshake names it.

use std::future::Future;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Poll, ready};

use futures::future::{AbortRegistration, Abortable};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Sink, Stream, StreamExt};
use rpc_core::CodecError;
use rpc_core::transport::Link;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::{ClientMessage, Request, RequestName, Response, ServerError, context};
use tokio_util::sync::CancellationToken;

use crate::in_flight::InFlight;
use crate::log_limit::LogLimit;
use crate::peer::Peer;
use crate::stats::ServerStatus;
use crate::transport::GuardedTransport;

/// What a connection needs from the server once its service is chosen.
pub(crate) struct ServeContext {
    pub max_in_flight: usize,
    pub read_timeout: std::time::Duration,
    pub shutdown: CancellationToken,
    pub status: Arc<ServerStatus>,
}

/// A service the server can hand connections to, whatever its request and response types.
pub(crate) trait HostedService: Send + Sync + 'static {
    /// Serves one connection (its handshake done) until the peer leaves, the connection fails or shutdown completes.
    fn serve(
        &self,
        link: Link,
        peer: Peer,
        ctx: ServeContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Adapts a per-connection handler factory (see [`crate::Server::service`]) to [`HostedService`].
pub(crate) struct TarpcService<F, Req> {
    pub factory: F,
    pub request: PhantomData<fn(Req)>,
}

impl<F, H, Req, Resp, Fut> HostedService for TarpcService<F, Req>
where
    F: Fn(&Peer) -> H + Send + Sync + 'static,
    H: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
    Req: DeserializeOwned + RequestName + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    fn serve(
        &self,
        link: Link,
        peer: Peer,
        ctx: ServeContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let handler = (self.factory)(&peer);
        let transport = link.request_transport::<Req, Response<Resp>>();
        let transport = GuardedTransport::new(transport, ctx.shutdown, ctx.read_timeout);
        let status = ctx.status;
        let max_in_flight = ctx.max_in_flight;
        // One call: the handler, counted in the server's status, and aborted when the
        // connection stops tracking it (the client cancelled, or its deadline passed). `None`
        // when aborted: nobody waits for that answer.
        let call = move |request: Request<Req>, registration| {
            let handler = handler.clone();
            let status = status.clone();
            let request_id = request.id;
            Abortable::new(
                async move {
                    let call = status.call_started();
                    let message = handler(request.context, request.message).await;
                    call.finish();
                    Response {
                        request_id,
                        message,
                    }
                },
                registration,
            )
            .map(Result::ok)
        };
        Box::pin(async move {
            let mut transport = pin!(transport);
            // Calls run concurrently inside this connection's task rather than one task each,
            // and their responses go straight into the socket's queue rather than through
            // tarpc's response channel: a call then costs no spawn, and nothing wakes this task
            // while it runs (in tokio a task that wakes itself also wakes an idle worker thread;
            // that was a futex call per call). Handlers that burn CPU or block should move that
            // work to `spawn_blocking` (as in any async handler).
            let mut running = FuturesUnordered::new();
            let mut in_flight = InFlight::default();
            let mut unsent = None;
            let mut reading = true;
            let result = poll_fn(move |cx| {
                loop {
                    // A finished call's response goes out before more calls are read.
                    if unsent.is_none() {
                        match running.poll_next_unpin(cx) {
                            Poll::Ready(Some(Some(response))) => {
                                let response: Response<Resp> = response;
                                in_flight.finish(response.request_id);
                                unsent = Some(response);
                            }
                            Poll::Ready(Some(None)) => continue,
                            Poll::Ready(None) | Poll::Pending => {}
                        }
                    }
                    if let Some(response) = unsent.take() {
                        match transport.as_mut().poll_ready(cx) {
                            Poll::Ready(Ok(())) => {
                                let request_id = response.request_id;
                                match transport.as_mut().start_send(response) {
                                    Ok(()) => {}
                                    // Nothing was queued: that call fails alone.
                                    Err(CodecError::OutgoingTooLarge { limit }) => transport
                                        .as_mut()
                                        .start_send(too_large(request_id, limit))?,
                                    Err(err) => return Poll::Ready(Err(err)),
                                }
                                continue;
                            }
                            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                            // The socket is full; keep reading (the in-flight limit bounds it).
                            Poll::Pending => unsent = Some(response),
                        }
                    }
                    if in_flight.poll_expired(cx) {
                        continue;
                    }
                    // At the in-flight limit, the next call is answered at once with an error,
                    // as tarpc does; read it only when that answer can be queued. Counted in
                    // handler futures, not tracked calls: a cancelled call's future lives on
                    // until it is polled again, which waits while a response is unsent, so a
                    // peer that cancels what it sends must not get past the limit.
                    let at_limit = running.len() >= max_in_flight;
                    let may_read = reading
                        && (!at_limit
                            || (unsent.is_none() && transport.as_mut().poll_ready(cx)?.is_ready()));
                    if may_read {
                        match transport.as_mut().poll_next(cx) {
                            Poll::Ready(Some(Ok(ClientMessage::Request(mut request)))) => {
                                if at_limit {
                                    transport.as_mut().start_send(throttled(request.id))?;
                                } else if let Some(registration) =
                                    admit(&mut in_flight, &mut request)
                                {
                                    running.push(call(request, registration));
                                }
                                continue;
                            }
                            Poll::Ready(Some(Ok(ClientMessage::Cancel { request_id, .. }))) => {
                                in_flight.cancel(request_id);
                                continue;
                            }
                            // A kind of message a later tarpc may add; this one decodes none.
                            Poll::Ready(Some(Ok(_))) => continue,
                            Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                            // The peer left or shutdown began: answer what was started.
                            Poll::Ready(None) => reading = false,
                            Poll::Pending => {}
                        }
                    }
                    ready!(transport.as_mut().poll_flush(cx))?;
                    if unsent.is_some() {
                        // The flush made room for the response that could not be queued: queue
                        // it now. (Returning here would wait for a wake-up the flush consumed.)
                        continue;
                    }
                    if !reading && running.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            })
            .await;
            if let Err(err) = result {
                static BROKEN: LogLimit = LogLimit::new();
                if let Some(suppressed) = BROKEN.allow() {
                    tracing::warn!(
                        connection = peer.connection_id,
                        error = %rpc_core::error_chain(&err),
                        suppressed,
                        "closing connection after a transport error"
                    );
                }
            }
        })
    }
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

/// Turns a tarpc server (a `Serve` value, e.g. `MyImpl.serve()`) into the handler
/// [`crate::Server::service`] wants. A macro, so that the handler's future is seen as `Send`
/// where its concrete type is known (tarpc's `Serve::serve` is an `async fn` in a trait).
///
/// ```ignore
/// server.service(kv::NAME, |_peer| rpc_server::handler!(KvStore::default().serve()));
/// ```
#[macro_export]
macro_rules! handler {
    ($serve:expr) => {{
        let serve = $serve;
        move |ctx, request| ::tarpc::server::Serve::serve(serve, ctx, request)
    }};
}
