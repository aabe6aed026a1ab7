//! Calls on a [`Channel`]: the [`Stub`] generated clients call through, each call's slot, and
//! what ends a call without its answer (see `channel.rs` for how calls share the connection).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use rpc_core::wire::{ClientFrame, ClientMessage, MessageSeed};
use serde::Serialize;
use tarpc::client::RpcError;
use tarpc::client::stub::Stub;
use tarpc::{Request, RequestName, ServerError, context};

use super::{Channel, Shared, State, WATCH_INTERVAL, set_waker};

/// A waiting call's answer, once it arrived, and how to wake its caller.
pub(super) struct Slot<Resp> {
    pub(super) answer: Option<Result<Resp, ServerError>>,
    pub(super) waker: Option<Waker>,
    /// When the caller stops waiting.
    pub(super) deadline: Instant,
    /// Whether the call must arm its own deadline timer (see [`timer_due`]).
    pub(super) timer_due: bool,
}

/// Whether a call with `deadline` needs its own timer now. A timer per call cost a timer-wheel
/// insertion and removal on every call (a few hundred instructions of a 64-byte call's few
/// thousand); most calls are answered long before their deadline (10 s by default). So a call
/// arms one only when its deadline is within two watcher ticks; the watcher tells the others
/// when theirs comes that close.
pub(super) fn timer_due(deadline: Instant, now: Instant) -> bool {
    deadline < now + 2 * WATCH_INTERVAL
}

impl<Req, Resp, D> State<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    /// Polls for call `id`'s answer; while it waits, `timer_due` says whether the call must
    /// arm its deadline timer.
    fn poll_answer(
        &mut self,
        id: u64,
        cx: &mut Context<'_>,
        timer_due: &mut bool,
    ) -> Poll<Result<Resp, RpcError>> {
        // An answer another call's drive delivered needs no I/O: taking it is all there is to do
        // (and keeps the lock, which every call on this connection shares, briefly held).
        if self.calls.get(&id).is_none_or(|slot| slot.answer.is_none()) {
            self.drive(cx, Some(id));
        }
        let Some(slot) = self.calls.get_mut(&id) else {
            return Poll::Ready(Err(RpcError::Shutdown));
        };
        if let Some(answer) = slot.answer.take() {
            self.calls.remove(&id);
            self.leave(id);
            self.resume_streams();
            return Poll::Ready(answer.map_err(RpcError::Server));
        }
        if let Some(broken) = &self.broken {
            let err = broken.error();
            self.calls.remove(&id);
            return Poll::Ready(Err(err));
        }
        set_waker(&mut slot.waker, cx);
        *timer_due = slot.timer_due;
        Poll::Pending
    }
}

/// Removes a call that ends without its answer, and tells the server to stop working on it.
struct CallGuard<'a, Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    shared: &'a Shared<Req, Resp, D>,
    id: u64,
    trace_context: tarpc::trace::Context,
    answered: bool,
}

impl<Req, Resp, D> Drop for CallGuard<'_, Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut state = self.shared.lock();
        let Some(slot) = state.calls.remove(&self.id) else {
            return state.leave(self.id);
        };
        let waiting = slot.answer.is_none();
        if !waiting {
            // Its answer came and is dropped untaken: streams that gave way to it go on.
            state.resume_streams();
        }
        // Cancelled if its answer has not come (the server drops it at its deadline regardless).
        state.abandon(self.id, self.trace_context, waiting);
    }
}

impl<Req, Resp, D> Stub for Channel<Req, Resp, D>
where
    Req: Serialize + RequestName + Send + 'static,
    Resp: Send + 'static,
    D: MessageSeed<Resp> + Send + 'static,
{
    type Req = Req;
    type Resp = Resp;

    async fn call(&self, mut ctx: context::Context, request: Req) -> Result<Resp, RpcError> {
        let deadline = ctx.deadline;
        // A span of its own in the caller's trace, as tarpc's channel gives each call.
        ctx.trace_context = rpc_core::trace::child_context(&ctx.trace_context);
        let trace_context = ctx.trace_context;
        // Called from a runtime other than the one driving the socket, the call cannot count on
        // the watcher (that runtime may not be running: a `BlockingClient` between calls), so it
        // arms its timer at once.
        let away = tokio::runtime::Handle::try_current()
            .map_or(true, |handle| handle.id() != self.shared.home);
        let mut request = Some(ClientMessage::Request(Request {
            context: ctx,
            id: 0,
            message: request,
        }));
        let mut guard: Option<CallGuard<'_, Req, Resp, D>> = None;
        let mut expiry = pin!(None::<tokio::time::Sleep>);
        // The first poll queues the request and drives the connection under one hold of the
        // lock every call on this connection shares.
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            let id = match (&guard, request.take()) {
                (Some(guard), _) => guard.id,
                (None, Some(mut request)) => {
                    if let Some(broken) = &state.broken {
                        return Poll::Ready(Err(broken.error()));
                    }
                    let id = state.next_id;
                    state.next_id += 1;
                    if let ClientMessage::Request(request) = &mut request {
                        request.id = id;
                    }
                    if let Err(err) = state.transport.queue(ClientFrame::new(request)) {
                        return Poll::Ready(Err(RpcError::Send(Box::new(err))));
                    }
                    state.calls.insert(
                        id,
                        Slot {
                            answer: None,
                            waker: None,
                            deadline,
                            timer_due: away || timer_due(deadline, rpc_core::timers::now()),
                        },
                    );
                    guard = Some(CallGuard {
                        shared: &self.shared,
                        id,
                        trace_context,
                        answered: false,
                    });
                    id
                }
                (None, None) => return Poll::Ready(Err(RpcError::Shutdown)),
            };
            let mut due = false;
            let answer = state.poll_answer(id, cx, &mut due);
            drop(state);
            if let Poll::Ready(result) = answer {
                if let Some(guard) = &mut guard {
                    guard.answered = true;
                }
                return Poll::Ready(result);
            }
            if due && expiry.is_none() {
                expiry.set(Some(tokio::time::sleep_until(deadline.into())));
            }
            if let Some(timer) = expiry.as_mut().as_pin_mut() {
                if timer.poll(cx).is_ready() {
                    return Poll::Ready(Err(RpcError::DeadlineExceeded));
                }
            }
            Poll::Pending
        })
        .await
    }
}
