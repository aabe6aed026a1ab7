//! Streams on a [`Channel`]: [`rpc_core::StreamStub::open`], the credit a stream is granted, and
//! the answers waiting in its slot.
//!
//! A stream is a request answered many times. Its answers are read by whichever task drives the
//! connection (its consumer, a waiting call, the watcher) and wait in the stream's slot until
//! the consumer takes them. What may wait is bounded by credit: the channel grants the server a
//! window of bytes when the stream opens and grants back what the consumer took, once that
//! reaches half the window, so a consumer that stops taking stops the server too. A server that
//! sends more than its credit allows fails its stream with [`StreamOverrun`] instead of filling
//! this process's memory.
//!
//! Calls share the connection with streams, and their answers arrive in the same byte stream as
//! the streams' answers. A consumer with answers in hand does no I/O to take them, and the
//! runtime reports new bytes only when its event loop runs (on a current-thread runtime, once
//! the consumer's task yields; on any runtime, every few dozen polls of a task that never
//! waits): so while calls wait, the consumer looks at the socket itself every [`LOOK_EVERY`]
//! answers it takes. A call's answer goes before the stream's next one, as on the server: a
//! consumer that found one waits until its caller has taken it (or the watcher's next tick).
//!
//! A stream has no deadline timer: its context's deadline bounds opening it, not how long it
//! lasts (a watch runs for hours).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use rpc_core::limits::DEFAULT_STREAM_WINDOW;
use rpc_core::streaming::Answers;
use rpc_core::wire::{ClientFrame, ClientMessage, MessageSeed};
use rpc_core::{FrameLimit, StreamStub};
use serde::Serialize;
use tarpc::client::RpcError;
use tarpc::{ChannelError, Request, RequestName, Response, ServerError, context, trace};

use super::{Channel, Reading, Shared, State, set_waker};

/// How far each stream on a channel may run ahead of its consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// The credit granted when a stream opens, in bytes of answers (frame bodies); granted back
    /// as the consumer takes answers.
    pub(crate) window: u64,
    /// The connection's frame limit: how far one answer may take the server past its credit (it
    /// sends while its credit is positive, so the last answer may overshoot).
    pub(crate) frame_limit: FrameLimit,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            window: DEFAULT_STREAM_WINDOW,
            frame_limit: FrameLimit::default(),
        }
    }
}

/// A server sent a stream more answers than the credit it was granted allows: it does not
/// honour flow control. The stream yields this error after the answers that fit, and the server
/// is told to cancel it; the connection and its other calls and streams go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the server sent stream {request_id} {excess} bytes of answers more than its credit allows \
     (what was granted: a window of {window} bytes, then what the consumer took; and at most one \
     answer, of up to the frame limit of {frame_limit} bytes, past that): the server does not \
     honour stream flow control, so the stream was cancelled; upgrade the server or report the \
     bug to its authors"
)]
pub struct StreamOverrun {
    /// The stream, by the id of the request that opened it.
    pub request_id: u64,
    /// Bytes received beyond what the credit allows (the grants plus one frame limit).
    pub excess: u64,
    /// The window the stream was opened with.
    pub window: u64,
    /// The connection's frame limit.
    pub frame_limit: u64,
}

/// A stream's flow-control account, kept by the client: what it granted, what arrived, and what
/// its consumer took since the last grant. No I/O, so its arithmetic is tested on its own.
#[derive(Debug)]
struct Credit {
    /// Half the window, at least 1: the consumer takes this much before it is granted back.
    grant_at: u64,
    frame_limit: u64,
    /// Every byte granted so far, the opening window included.
    granted: u64,
    /// Every byte of answers received so far.
    received: u64,
    /// Bytes taken by the consumer and not yet granted back.
    taken: u64,
}

impl Credit {
    fn new(limits: StreamLimits) -> Self {
        Credit {
            grant_at: (limits.window / 2).max(1),
            frame_limit: limits.frame_limit.bytes() as u64,
            granted: limits.window,
            received: 0,
            taken: 0,
        }
    }

    /// An answer of `len` bytes arrived. Fails with how far past the allowance it went when the
    /// server has now sent more than its credit plus one frame: it sends only while its credit
    /// is positive, so even its last answer ends within one frame of it.
    fn receive(&mut self, len: u64) -> Result<(), u64> {
        self.received = self.received.saturating_add(len);
        let allowed = self.granted.saturating_add(self.frame_limit);
        match self.received.checked_sub(allowed) {
            Some(excess) if excess > 0 => Err(excess),
            _ => Ok(()),
        }
    }

    /// The consumer took an answer of `len` bytes: returns the credit to grant back, once what
    /// it took since the last grant reaches half the window. One grant per half window (not one
    /// per answer) keeps grants a small part of the traffic, and the other half keeps the server
    /// sending while the grant travels.
    fn take(&mut self, len: u64) -> Option<u64> {
        self.taken = self.taken.saturating_add(len);
        if self.taken < self.grant_at {
            return None;
        }
        let grant = std::mem::take(&mut self.taken);
        self.granted = self.granted.saturating_add(grant);
        Some(grant)
    }
}

/// An open stream's answers that arrived and wait for its consumer, and how to wake it.
pub(super) struct StreamSlot<Resp> {
    /// Each answer with the length of the frame it came in (what granting it back returns).
    answers: VecDeque<(Result<Resp, ServerError>, u64)>,
    pub(super) waker: Option<Waker>,
    /// The trace context the stream was opened with, for its cancel.
    trace_context: trace::Context,
    credit: Credit,
    /// Whether an answer is the stream's last (its method's `End`).
    is_last: fn(&Resp) -> bool,
    /// Set once nothing more is taken for the stream: its last answer (its `End` or an error)
    /// arrived, or the server overran its credit. The server then needs neither grants nor a
    /// cancel.
    closed: bool,
    /// The overrun, yielded after the answers that fit.
    overrun: Option<StreamOverrun>,
    /// Answers the consumer took since it last looked for calls' answers.
    since_look: u32,
    /// Whether the consumer gave way to a call's answer and waits for its caller to take it.
    paused: bool,
}

/// While calls wait beside a stream, its consumer looks at the socket for their answers once
/// every this many answers it takes: one `read` per look, for an answer delayed by at most this
/// many of the stream's.
const LOOK_EVERY: u32 = 16;

impl<Req, Resp, D> State<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    /// Keeps an answer to an open stream in its slot, waking its consumer (unless it is `me`,
    /// the task reading). Called by [`State::drive`] right after the answer was read, while the
    /// transport still knows its frame's length.
    pub(super) fn deliver(
        &mut self,
        response: Response<Resp>,
        me: Option<u64>,
        cx: &mut Context<'_>,
    ) {
        let id = response.request_id;
        let len = self.transport.last_frame_len() as u64;
        let window = self.stream_limits.window;
        let Some(slot) = self.streams.get_mut(&id) else {
            return;
        };
        if slot.closed {
            return;
        }
        let mut cancel = None;
        match &response.message {
            // The last answer a stream gets. Not held to the credit: a server that shuts down
            // or fails a stream says so whatever the stream's credit.
            Err(_) => slot.closed = true,
            Ok(answer) if (slot.is_last)(answer) => slot.closed = true,
            Ok(_) => {
                if let Err(excess) = slot.credit.receive(len) {
                    tracing::warn!(
                        request_id = id,
                        excess,
                        window,
                        "the server sent a stream more than its credit; cancelling the stream"
                    );
                    slot.overrun = Some(StreamOverrun {
                        request_id: id,
                        excess,
                        window,
                        frame_limit: slot.credit.frame_limit,
                    });
                    slot.closed = true;
                    cancel = Some(slot.trace_context);
                }
            }
        }
        if slot.overrun.is_none() {
            slot.answers.push_back((response.message, len));
        }
        if me != Some(id) {
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
        if let Some(trace_context) = cancel {
            self.cancel(id, trace_context, cx);
        }
    }

    /// Polls stream `id` for its next answer: the answers that arrived, in order, then the
    /// stream's error if it failed, then the end (`None`).
    fn poll_stream(
        &mut self,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Resp, RpcError>>> {
        let Some(slot) = self.streams.get_mut(&id) else {
            return Poll::Ready(None);
        };
        slot.paused = false;
        let answered = if slot.answers.is_empty() && slot.overrun.is_none() {
            // Nothing in hand: read more, or wait for it.
            self.drive(cx, Some(id))
        } else if !self.calls.is_empty() && slot.since_look >= LOOK_EVERY {
            // Answers in hand need no I/O, but calls wait beside the stream, and their answers
            // arrive behind its own. The runtime reports them only when its event loop runs
            // (on a current-thread runtime, once this task yields), and the task it would wake
            // may be waiting for this one to yield: so the consumer looks now and then.
            slot.since_look = 0;
            self.take_answers(cx, Some(id), Reading::Now)
        } else {
            0
        };
        if answered > 0 && self.broken.is_none() {
            // A call's answer goes before the stream's next one, as on the server: the consumer
            // waits until its caller has taken it (or the watcher's next look).
            if let Some(slot) = self.streams.get_mut(&id) {
                slot.paused = true;
                set_waker(&mut slot.waker, cx);
                return Poll::Pending;
            }
        }
        let Some(slot) = self.streams.get_mut(&id) else {
            return Poll::Ready(None);
        };
        if let Some((answer, len)) = slot.answers.pop_front() {
            slot.since_look = slot.since_look.saturating_add(1);
            // Whatever woke this task, it is not waiting now: no hand-off below may pick it.
            slot.waker = None;
            let grant = match &answer {
                Ok(_) if !slot.closed => slot.credit.take(len),
                _ => None,
            };
            let last = answer.as_ref().map_or(true, slot.is_last);
            if last {
                // Its last answer: the server is done with it, so dropping the answers later
                // sends no cancel.
                self.streams.remove(&id);
            } else if let (Some(bytes), None) = (grant, &self.broken) {
                let grant = ClientMessage::Grant {
                    request_id: id,
                    bytes,
                };
                self.write_now(grant, cx);
            }
            // The consumer goes off with its answer and may not poll again for a while: if the
            // socket would wake it for other tasks' answers, one of them takes over the reading.
            self.leave(id);
            return Poll::Ready(Some(answer.map_err(RpcError::Server)));
        }
        if let Some(overrun) = slot.overrun.take() {
            self.streams.remove(&id);
            self.leave(id);
            let err = ChannelError::Read(Arc::new(overrun) as Arc<_>);
            return Poll::Ready(Some(Err(RpcError::Channel(err))));
        }
        if let Some(broken) = &self.broken {
            let err = broken.error();
            self.streams.remove(&id);
            return Poll::Ready(Some(Err(err)));
        }
        set_waker(&mut slot.waker, cx);
        Poll::Pending
    }

    /// Wakes the consumers that gave way to a call's answer (see [`State::poll_stream`]): its
    /// caller took it, or dropped it, or the watcher gives up waiting for that. Any call's
    /// answer taken wakes them all, not only the consumers that gave way to that one: a
    /// consumer is then ahead of a caller still to come at most until its next look.
    pub(super) fn resume_streams(&mut self) {
        for slot in self.streams.values_mut() {
            if std::mem::take(&mut slot.paused) {
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// A stream's answers as [`StreamStub::open`] returns them. Dropping it before the stream ended
/// tells the server to stop producing.
struct StreamAnswers<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    shared: Arc<Shared<Req, Resp, D>>,
    id: u64,
}

impl<Req, Resp, D> Stream for StreamAnswers<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    type Item = Result<Resp, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Answers waiting in the slot are handed out with no I/O, so a consumer that keeps up
        // would otherwise run through a whole window of them (thousands of small items)
        // without yielding, while a call's task woken on the same worker waits in its LIFO
        // slot: each answer spends tokio's cooperative budget, as a socket read would.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let next = self.shared.lock().poll_stream(self.id, cx);
        if next.is_ready() {
            coop.made_progress();
        }
        next
    }
}

impl<Req, Resp, D> Drop for StreamAnswers<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let Some(slot) = state.streams.remove(&self.id) else {
            // It ended (its last answer or its error was yielded): the server is done with it.
            return;
        };
        // Answers still on their way are dropped as they arrive (the id is unknown now).
        state.abandon(self.id, slot.trace_context, !slot.closed);
    }
}

impl<Req, Resp, D> StreamStub for Channel<Req, Resp, D>
where
    Req: Serialize + RequestName + Send + 'static,
    Resp: Send + 'static,
    D: MessageSeed<Resp> + Send + 'static,
{
    /// Sends `request` and the stream's opening credit (the window set with
    /// [`crate::Connector::stream_window`]), and returns the stream's answers.
    ///
    /// It returns once both are queued on the connection, written now if the socket has room
    /// (else as the connection is next driven: by the stream's consumer, a call, or the
    /// watcher). The context's deadline only bounds that: a context already past it fails with
    /// [`RpcError::DeadlineExceeded`], nothing sent; the stream then lasts as long as the
    /// server sends, the consumer takes, and the connection holds. When the connection breaks,
    /// the stream yields the answers that arrived, then the error ([`RpcError::Shutdown`] when
    /// the server closed the connection, [`RpcError::Channel`] otherwise), then ends.
    async fn open(
        &self,
        mut ctx: context::Context,
        request: Req,
        is_last: fn(&Resp) -> bool,
    ) -> Result<Answers<Resp>, RpcError> {
        if ctx.deadline <= rpc_core::timers::now() {
            return Err(RpcError::DeadlineExceeded);
        }
        ctx.trace_context = rpc_core::trace::child_context(&ctx.trace_context);
        let trace_context = ctx.trace_context;
        let mut state = self.shared.lock();
        if let Some(broken) = &state.broken {
            return Err(broken.error());
        }
        let id = state.next_id;
        let request = ClientMessage::Request(Request {
            context: ctx,
            id,
            message: request,
        });
        if let Err(err) = state.transport.queue(ClientFrame::new(request)) {
            return Err(RpcError::Send(Box::new(err)));
        }
        state.next_id += 1;
        let limits = state.stream_limits;
        state.streams.insert(
            id,
            StreamSlot {
                answers: VecDeque::new(),
                waker: None,
                trace_context,
                credit: Credit::new(limits),
                is_last,
                closed: false,
                overrun: None,
                since_look: 0,
                paused: false,
            },
        );
        // From here on, dropping the answers (an error below included) cancels the stream.
        let answers = StreamAnswers {
            shared: self.shared.clone(),
            id,
        };
        // Right behind its request: the server gives a stream no credit of its own.
        let grant = ClientMessage::Grant {
            request_id: id,
            bytes: limits.window,
        };
        if let Err(err) = state.transport.queue(ClientFrame::new(grant)) {
            drop(state);
            drop(answers);
            return Err(RpcError::Send(Box::new(err)));
        }
        // Only written: the task registered with the socket keeps its registration. If the
        // socket is full, a waiting task takes over the writing (this stream's consumer does
        // when it polls).
        state.send(&mut Context::from_waker(Waker::noop()));
        if state.transport.has_unsent() {
            state.hand_off();
        }
        drop(state);
        Ok(Box::pin(answers))
    }
}

#[cfg(test)]
#[path = "channel_stream_tests.rs"]
mod tests;
