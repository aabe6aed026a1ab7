//! [`OpenStreams`]: the streams one connection is sending, each polled for its next item only
//! while its client's credit lasts.
//!
//! A stream's producer is polled inside the connection's task, like the calls are (see
//! [`crate::dispatch`]): a stream with credit sits in `pulling`, a set of futures each waiting
//! for one stream's next item; a stream whose credit is spent is parked, not polled, so its
//! producer waits (a broadcast subscriber falls behind and later gets `Lagged`). What a stalled
//! consumer costs the server is then one parked producer: the answers in flight are bounded by
//! the credit, and the socket's queue by the transport's back-pressure.
//!
//! Credit is counted in bytes of frame bodies. The client grants it with
//! `ClientMessage::Grant`; a stream is polled while its credit is positive, and each answer sent
//! takes its frame's length off, so the answers in flight exceed the client's window by at most
//! one item. Credit is capped at [`MAX_STREAM_CREDIT`]: an absurd or overflowing grant gains
//! nothing and is not an error.
//!
//! A producer that panics fails its own stream; a cancelled stream's producer is dropped at once
//! (its future is aborted, which wakes the connection's task to drop it).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{AbortHandle, Abortable};
use futures::stream::{BoxStream, FuturesUnordered};
use futures::{Future, StreamExt};
use rpc_core::IdMap;
use rpc_core::limits::MAX_STREAM_CREDIT;
use rpc_core::streaming::StreamAnswer;
use tarpc::ServerError;

/// One stream's producer and where it stands.
struct Open<Resp> {
    /// Bytes the client still allows; the stream is polled only while this is positive.
    credit: i64,
    /// Stops its pull in progress, which drops the producer; `None` before its first pull.
    abort: Option<AbortHandle>,
    /// The producer, while it is not being polled: its credit is spent, or its last item is
    /// waiting to be sent.
    parked: Option<BoxStream<'static, Result<Resp, ServerError>>>,
    /// The answer sent once the producer ends: the method's `End`.
    end: Option<Resp>,
}

/// What a stream yielded, to be sent to its client.
pub(crate) enum Yielded<Resp> {
    /// An item (or `Lagged`): more may follow.
    Item(Resp),
    /// Its last answer: the `End`, or the error that ended it. The stream is closed.
    Last(Result<Resp, ServerError>),
}

/// The streams a connection is sending, by the id of the call that opened each.
pub(crate) struct OpenStreams<Resp> {
    open: IdMap<Open<Resp>>,
    /// Credit granted to calls still running, which may yet open a stream (a client grants its
    /// window right after its request): at most one entry per call in flight.
    early: IdMap<i64>,
    /// Streams with credit, each waiting for its next item.
    pulling: FuturesUnordered<Abortable<Pull<Resp>>>,
}

impl<Resp> Default for OpenStreams<Resp> {
    fn default() -> Self {
        OpenStreams {
            open: IdMap::default(),
            early: IdMap::default(),
            pulling: FuturesUnordered::new(),
        }
    }
}

impl<Resp: Send + 'static> OpenStreams<Resp> {
    /// Streams open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether stream `id` is open.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.open.contains_key(&id)
    }

    /// Opens stream `id`, whose call has just finished, with the answers `answer` produces and
    /// the credit granted while the call ran.
    pub(crate) fn open(&mut self, id: u64, answer: StreamAnswer<Resp>) {
        let open = Open {
            credit: self.early.remove(&id).unwrap_or(0),
            abort: None,
            parked: Some(answer.events),
            end: Some(answer.end),
        };
        self.open.insert(id, open);
        self.resume(id);
    }

    /// Adds `bytes` to stream `id`'s credit, polling it again if it was waiting for some; or,
    /// while `id`'s call is `running` (it may yet open a stream), keeps it for that call. A grant
    /// for anything else (a stream ended or cancelled, an id never used) is ignored: it may cross
    /// the stream's last answer on the wire, and costs nothing.
    pub(crate) fn grant(&mut self, id: u64, bytes: u64, running: bool) {
        if let Some(open) = self.open.get_mut(&id) {
            add_credit(&mut open.credit, bytes);
            self.resume(id);
        } else if running {
            add_credit(self.early.entry(id).or_default(), bytes);
        }
    }

    /// Call `id` finished without opening a stream: forgets the credit granted to it.
    pub(crate) fn forget(&mut self, id: u64) {
        self.early.remove(&id);
    }

    /// Stream `id`'s item of `len` bytes was queued: takes it off the credit, and polls the
    /// producer again if credit is left.
    pub(crate) fn sent(&mut self, id: u64, len: usize) {
        if let Some(open) = self.open.get_mut(&id) {
            open.credit = open
                .credit
                .saturating_sub(i64::try_from(len).unwrap_or(i64::MAX));
            self.resume(id);
        }
    }

    /// Closes stream `id`, dropping its producer at once, or forgets what was granted to its
    /// call: the client cancelled it.
    pub(crate) fn cancel(&mut self, id: u64) {
        self.early.remove(&id);
        if let Some(abort) = self.open.remove(&id).and_then(|open| open.abort) {
            abort.abort();
        }
    }

    /// Closes every stream, dropping the producers; returns their ids, to be told why.
    pub(crate) fn close_all(&mut self) -> Vec<u64> {
        let ids = self.open.keys().copied().collect();
        self.open.clear();
        self.early.clear();
        // Every producer not parked is in a pull: dropping them all drops every producer.
        self.pulling.clear();
        ids
    }

    /// The next answer a stream with credit produced, with its stream's id. `Pending` when none
    /// is ready (and `cx` is woken when one is).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(u64, Yielded<Resp>)> {
        loop {
            let Poll::Ready(Some(pulled)) = self.pulling.poll_next_unpin(cx) else {
                return Poll::Pending;
            };
            // An aborted pull: its stream was cancelled, and its producer is now dropped.
            let Ok((id, stream, next)) = pulled else {
                continue;
            };
            let Some(open) = self.open.get_mut(&id) else {
                continue;
            };
            return Poll::Ready(match next {
                Some(Ok(item)) => {
                    // Parked until the item is sent and its length taken off the credit.
                    open.parked = Some(stream);
                    (id, Yielded::Item(item))
                }
                Some(Err(err)) => {
                    self.open.remove(&id);
                    (id, Yielded::Last(Err(err)))
                }
                None => {
                    let end = open.end.take();
                    self.open.remove(&id);
                    match end {
                        Some(end) => (id, Yielded::Last(Ok(end))),
                        None => continue,
                    }
                }
            });
        }
    }

    /// Polls stream `id`'s producer again if it is parked and has credit.
    fn resume(&mut self, id: u64) {
        let Some(open) = self.open.get_mut(&id) else {
            return;
        };
        if open.credit <= 0 {
            return;
        }
        let Some(stream) = open.parked.take() else {
            return;
        };
        let (abort, registration) = AbortHandle::new_pair();
        open.abort = Some(abort);
        self.pulling.push(Abortable::new(
            Pull {
                id,
                stream: Some(stream),
            },
            registration,
        ));
    }
}

/// Adds `bytes` to `credit`, up to [`MAX_STREAM_CREDIT`].
fn add_credit(credit: &mut i64, bytes: u64) {
    let cap = i64::try_from(MAX_STREAM_CREDIT).unwrap_or(i64::MAX);
    let bytes = i64::try_from(bytes.min(MAX_STREAM_CREDIT)).unwrap_or(cap);
    *credit = credit.saturating_add(bytes).min(cap);
}

/// A future for one stream's next item, which hands the stream back with it.
struct Pull<Resp> {
    id: u64,
    stream: Option<BoxStream<'static, Result<Resp, ServerError>>>,
}

/// What a pull yields: the stream's id, the stream, and its next item (`None` at its end).
type Pulled<Resp> = (
    u64,
    BoxStream<'static, Result<Resp, ServerError>>,
    Option<Result<Resp, ServerError>>,
);

impl<Resp> Future for Pull<Resp> {
    type Output = Pulled<Resp>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Pending;
        };
        // A producer that panics fails its own stream, not the connection (the process's panic
        // hook has reported it, as for a handler).
        let next = match std::panic::catch_unwind(AssertUnwindSafe(|| stream.poll_next_unpin(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(next)) => next,
            Err(_) => Some(Err(crate::refusals::panicked())),
        };
        let id = self.id;
        match self.stream.take() {
            Some(stream) => Poll::Ready((id, stream, next)),
            None => Poll::Pending,
        }
    }
}
