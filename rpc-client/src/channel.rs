//! [`Channel`]: the stub generated clients call through. Each call writes its own request and
//! reads answers itself; there is no dispatch task in between.
//!
//! tarpc's own channel hands every call to a dispatch task and the answer back through a
//! oneshot: two task wake-ups per call. On tokio's multi-threaded runtime each of those can also
//! wake an idle worker thread (a futex call), and rpc-bench measured that hop as most of the gap
//! between a 64-byte call and a raw socket echo. Here the calling task does the I/O:
//!
//! - A call queues its request on the connection and polls the connection: it writes what is
//!   queued, reads every answer that has arrived, stores each in its caller's slot and wakes that
//!   caller, and returns when its own answer is in.
//! - Only one task is registered with the socket at a time (tokio keeps one waker per
//!   direction), so a call that finishes or is dropped while others wait wakes one of them to
//!   take over the reading.
//! - A call dropped before its answer (its caller timed out or lost interest) sends the server a
//!   cancellation, as tarpc's channel does, so the handler stops. A call past its deadline fails
//!   with [`RpcError::DeadlineExceeded`]; the server drops it at the same deadline.
//! - Once the connection fails or the server hangs up, every waiting call and every later call
//!   fails at once: [`RpcError::Shutdown`] when the server closed it,
//!   [`RpcError::Channel`] for a socket or decoding error.
//!
//! A request too large for the frame limit fails alone with [`RpcError::Send`] and leaves the
//! connection usable (tarpc's channel closes the whole connection).
//!
//! Streams ([`rpc_core::StreamStub`]) share all of this: a stream's consumer drives the
//! connection as a waiting call does, and its answers wait in its slot, within the credit the
//! channel grants. A consumer with answers in hand looks for the answers of calls waiting beside
//! it, and gives way to a caller whose answer it found (see `channel_stream.rs`).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use call::{Slot, timer_due};
use rpc_core::IdMap;
use rpc_core::wire::ClientMessage;
use rpc_core::wire::{ClientFrame, MessageSeed, ResponseSeed};
use rpc_core::{CodecError, LocalStream, WireTransport};
use serde::Serialize;
use serde::de::DeserializeOwned;
pub(crate) use stream::StreamLimits;
pub use stream::StreamOverrun;
use stream::StreamSlot;
use tarpc::client::RpcError;
use tarpc::{ChannelError, Response};

#[path = "channel_call.rs"]
mod call;
#[path = "channel_stream.rs"]
mod stream;
#[path = "channel_watch.rs"]
mod watcher;

/// The framed connection a [`Channel`] reads answers from (each a `Response` whose value the
/// seed `D` decodes) and writes requests to.
pub(crate) type ClientTransport<Req, Resp, D = PhantomData<Resp>> =
    WireTransport<LocalStream, Response<Resp>, ClientFrame<Req>, ResponseSeed<D>>;

/// A connection to one service, shared by every clone: the stub for generated clients, e.g.
/// `KvClient<Channel<KvRequest, KvResponse>>` (what [`crate::Connector::connect`] returns).
///
/// Answers are decoded with the seed `D` ([`MessageSeed`]): `PhantomData<Resp>`, the default,
/// for a `Resp` known when compiling, or a seed that knows a shape read at run time (what
/// [`crate::Connector::channel_with_seed`] connects), e.g. from the server's schema.
pub struct Channel<Req, Resp, D = PhantomData<Resp>> {
    shared: Arc<Shared<Req, Resp, D>>,
}

impl<Req, Resp, D> Clone for Channel<Req, Resp, D> {
    fn clone(&self) -> Self {
        Channel {
            shared: self.shared.clone(),
        }
    }
}

impl<Req, Resp, D> std::fmt::Debug for Channel<Req, Resp, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

struct Shared<Req, Resp, D> {
    state: Mutex<State<Req, Resp, D>>,
    /// The runtime whose reactor drives the socket and which runs the watcher.
    home: tokio::runtime::Id,
}

struct State<Req, Resp, D> {
    transport: ClientTransport<Req, Resp, D>,
    next_id: u64,
    /// Calls waiting for their answer, by request id.
    calls: IdMap<Slot<Resp>>,
    /// Open streams, by the id of the request that opened them (ids are shared with calls).
    streams: IdMap<StreamSlot<Resp>>,
    /// How much each stream may send ahead of its consumer.
    stream_limits: StreamLimits,
    /// Why the connection can no longer be used, once it cannot.
    broken: Option<Broken>,
    /// The call or stream whose task the socket wakes when answers arrive: the last to find
    /// nothing more to read. `None` after a drive with no caller's waker (the watcher's, a
    /// dropped call's).
    reader: Option<u64>,
}

/// How [`State::take_answers`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Until the runtime reports nothing more, registered with the socket for what comes next.
    Wait,
    /// Only what the kernel holds now, registering nothing.
    Now,
}

#[derive(Clone)]
enum Broken {
    /// The server closed the connection.
    Closed,
    /// The socket failed or the server sent something undecodable.
    Failed(Arc<CodecError>),
}

impl Broken {
    fn error(&self) -> RpcError {
        match self {
            Broken::Closed => RpcError::Shutdown,
            Broken::Failed(err) => RpcError::Channel(ChannelError::Read(err.clone())),
        }
    }
}

impl<Req, Resp> Channel<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// A channel over a connection whose handshake is done, as [`rpc_core::transport::Link`]
    /// makes it for typed answers, its streams flow-controlled by `stream_limits`. Needs a tokio
    /// runtime.
    pub(crate) fn new(
        transport: WireTransport<LocalStream, Response<Resp>, ClientFrame<Req>>,
        stream_limits: StreamLimits,
    ) -> Self {
        Channel::with_seed(
            transport.reseed(ResponseSeed::new(PhantomData)),
            stream_limits,
        )
    }
}

impl<Req, Resp, D> Channel<Req, Resp, D>
where
    Req: Serialize + Send + 'static,
    Resp: Send + 'static,
    D: MessageSeed<Resp> + Send + 'static,
{
    /// A channel over a connection whose handshake is done, reading answers with the transport's
    /// seed, its streams flow-controlled by `stream_limits`. Needs a tokio runtime.
    pub(crate) fn with_seed(
        transport: ClientTransport<Req, Resp, D>,
        stream_limits: StreamLimits,
    ) -> Self {
        let home = tokio::runtime::Handle::current().id();
        let channel = Channel {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    transport,
                    next_id: 0,
                    calls: IdMap::default(),
                    streams: IdMap::default(),
                    stream_limits,
                    broken: None,
                    reader: None,
                }),
                home,
            }),
        };
        tokio::spawn(watcher::watch(Arc::downgrade(&channel.shared)));
        channel
    }

    /// Whether calls can still be made: false once the connection failed or the server hung up
    /// (which an idle connection notices here, without making a call).
    ///
    /// The hang-up is asked of the kernel, not of the runtime's readiness: on a current-thread
    /// runtime driven only by `block_on` per call (as [`crate::BlockingClient`] and a UI thread
    /// drive it) nothing has polled the socket since the last call, and the runtime would still
    /// call a connection to a restarted server live.
    pub fn is_usable(&self) -> bool {
        let mut state = self.shared.lock();
        if state.broken.is_none() && state.calls.is_empty() {
            // No call's answer is expected, so what is readable is the server hanging up, a late
            // answer to a cancelled call (dropped), or answers to open streams (kept in their
            // slots, within their credit). A stream open for hours is where a hang-up most needs
            // noticing: its consumer may not be polling.
            state.drive(&mut Context::from_waker(Waker::noop()), None);
            if state.broken.is_none() && state.transport.peer_hung_up() {
                state.fail(Broken::Closed);
            }
            // The drive above took the socket's registration from a waiting stream, if any.
            state.hand_off();
        }
        state.broken.is_none()
    }
}

/// How often a connection's watcher looks in: the tick of
/// [`rpc_core::timers::keep_timers_warm`], whose job the watcher's timer also does.
pub const WATCH_INTERVAL: Duration = rpc_core::limits::WATCH_INTERVAL;

impl<Req, Resp, D> Shared<Req, Resp, D> {
    fn lock(&self) -> MutexGuard<'_, State<Req, Resp, D>> {
        // A panic while holding the lock leaves no half-done update that matters here: at worst
        // one call's slot, which its own guard removes.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<Req, Resp, D> State<Req, Resp, D>
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    /// Writes what is queued and reads every answer that has arrived, waking the callers whose
    /// answers came (except `me`, the caller doing this, who is awake). Returns how many
    /// calls other than `me` it answered.
    fn drive(&mut self, cx: &mut Context<'_>, me: Option<u64>) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        self.send(cx);
        self.take_answers(cx, me, Reading::Wait)
    }

    /// Reads the answers that have arrived and hands each to its call or stream (waking the
    /// callers whose answers came, except `me`), until the connection has nothing more or
    /// breaks. Returns how many calls other than `me` it answered. With [`Reading::Wait`], and
    /// answers still to come, it then writes the reports of the server's slots it copied out.
    ///
    /// With [`Reading::Wait`], through the runtime's readiness, `me` then being the task the
    /// socket wakes (see [`State::drive`]); with [`Reading::Now`], only the bytes here now, past
    /// the readiness and without taking the socket's registration from the task that holds it
    /// (see [`WireTransport::receive_now`]).
    pub(super) fn take_answers(
        &mut self,
        cx: &mut Context<'_>,
        me: Option<u64>,
        reading: Reading,
    ) -> usize {
        let mut answered = 0;
        while self.broken.is_none() {
            let next = match reading {
                Reading::Wait => self.transport.poll_receive(cx),
                Reading::Now => self.transport.receive_now(),
            };
            match next {
                Poll::Ready(Some(Ok(response))) => {
                    answered += usize::from(self.hand_in(response, me, cx));
                }
                Poll::Ready(Some(Err(err))) => self.fail(Broken::Failed(Arc::new(err))),
                Poll::Ready(None) => self.fail(Broken::Closed),
                Poll::Pending => {
                    if reading == Reading::Wait {
                        self.reader = me;
                    }
                    break;
                }
            }
        }
        if reading == Reading::Wait && self.transport.has_unsent() && self.awaits_answers() {
            // Reports of slots of the server's region copied out here, queued while reading,
            // and more answers to come: one may wait there for that room
            // (`rpc_core::lane::LANE_WAIT`), so they are written now, by the task the socket
            // wakes (which drives again when woken). Otherwise they go with the next request,
            // saving a write and the server a wake-up.
            self.send(cx);
        }
        answered
    }

    /// Whether answers are still to come: a call without its answer yet, or an open stream.
    fn awaits_answers(&self) -> bool {
        !self.streams.is_empty() || self.calls.values().any(|slot| slot.answer.is_none())
    }

    /// Puts an answer just read where its call or stream takes it, waking the caller unless it
    /// is `me`. Whether it answered a call other than `me`. An answer to a call no one waits
    /// for any more is dropped.
    fn hand_in(&mut self, response: Response<Resp>, me: Option<u64>, cx: &mut Context<'_>) -> bool {
        let id = response.request_id;
        if let Some(slot) = self.calls.get_mut(&id) {
            slot.answer = Some(response.message);
            if me != Some(id) {
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
                return true;
            }
        } else if self.streams.contains_key(&id) {
            self.deliver(response, me, cx);
        }
        false
    }

    /// Writes what is queued, as far as the socket takes it.
    fn send(&mut self, cx: &mut Context<'_>) {
        if let Poll::Ready(Err(err)) = self.transport.poll_send(cx) {
            self.fail(Broken::Failed(Arc::new(err)));
        }
    }

    /// Queues `message`, a cancel or a grant (a few dozen bytes, under any frame limit), and
    /// writes what is queued as far as the socket takes it. Only written: reading here would
    /// take the socket's registration from the task that holds it.
    fn write_now(&mut self, message: ClientMessage<Req>, cx: &mut Context<'_>) {
        if self.transport.queue(ClientFrame::new(message)).is_ok() {
            self.send(cx);
        }
    }

    /// Tells the server to stop working on call or stream `id` (see [`State::write_now`]).
    fn cancel(&mut self, id: u64, trace_context: tarpc::trace::Context, cx: &mut Context<'_>) {
        let cancel = ClientMessage::Cancel {
            trace_context,
            request_id: id,
        };
        self.write_now(cancel, cx);
    }

    /// Call or stream `id` ends before its last answer because its task gave up on it: the
    /// server is told to stop working on it if it still `works` (and the connection does),
    /// written now if the socket has room (it nearly always has), otherwise by the task woken
    /// to take over; then `id` leaves the connection (see [`State::leave`]).
    fn abandon(&mut self, id: u64, trace_context: tarpc::trace::Context, works: bool) {
        if works && self.broken.is_none() {
            let noop = &mut Context::from_waker(Waker::noop());
            self.cancel(id, trace_context, noop);
        }
        self.leave(id);
    }

    /// Marks the connection unusable and wakes every waiting call and stream to fail.
    fn fail(&mut self, why: Broken) {
        self.broken = Some(why);
        let calls = self.calls.values_mut().map(|slot| &mut slot.waker);
        let streams = self.streams.values_mut().map(|slot| &mut slot.waker);
        for waker in calls.chain(streams) {
            if let Some(waker) = waker.take() {
                waker.wake();
            }
        }
    }

    /// Call or stream `id` is done with the connection for now: if the socket would have woken
    /// its task, or writes wait for room, another waiting call or stream takes over.
    fn leave(&mut self, id: u64) {
        if self.reader == Some(id) || self.transport.has_unsent() {
            self.reader = None;
            self.hand_off();
        }
    }

    /// Wakes one waiting call (or, with none, one waiting stream) to take over the socket from
    /// a call or stream that is leaving.
    fn hand_off(&mut self) {
        let waker = self
            .calls
            .values_mut()
            .find_map(|slot| slot.waker.take())
            .or_else(|| self.streams.values_mut().find_map(|slot| slot.waker.take()));
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Keeps `cx`'s waker in `waker`, unless the one there wakes the same task.
fn set_waker(waker: &mut Option<Waker>, cx: &Context<'_>) {
    match waker {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        waker => *waker = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "channel_lane_tests.rs"]
mod lane_tests;
