//! What the call loop ([`crate::dispatch`]) needs of its transport beyond a tarpc `Stream` and
//! `Sink`: the length of the frame it last queued and whether its queue only waits for room in
//! the shared-memory region ([`OutgoingQueue`]), and a read that does not wait for the runtime
//! ([`ReceiveNow`]). Both are implemented by [`WireTransport`], by the server's
//! [`crate::guard::GuardedTransport`] around it, and by a pinned reference to either (as tests
//! pass one).

use std::pin::Pin;
use std::task::Poll;

use futures::Stream;
use rpc_core::WireTransport;
use rpc_core::transport::FieldRead;
use rpc_core::wire::MessageSeed;

/// What a transport says of its outgoing queue.
pub(crate) trait OutgoingQueue {
    /// The body length of the frame the last message queued went into: what a stream's credit
    /// counts.
    fn last_queued_len(&self) -> usize;

    /// Whether the `Sink` is not ready only because a message waits for room in the
    /// shared-memory region ([`WireTransport::waits_only_for_room`]).
    fn waits_only_for_room(&self) -> bool;
}

impl<T: OutgoingQueue + ?Sized> OutgoingQueue for Pin<&mut T> {
    fn last_queued_len(&self) -> usize {
        (**self).last_queued_len()
    }

    fn waits_only_for_room(&self) -> bool {
        (**self).waits_only_for_room()
    }
}

impl<S: FieldRead, In, Out, D> OutgoingQueue for WireTransport<S, In, Out, D> {
    fn last_queued_len(&self) -> usize {
        WireTransport::last_queued_len(self)
    }

    fn waits_only_for_room(&self) -> bool {
        WireTransport::waits_only_for_room(self)
    }
}

/// A transport that can take in a message whose bytes are here now, without waiting for the
/// runtime to report the socket readable (see [`WireTransport::receive_now`]). A connection
/// busy with a stream keeps its task running, and the runtime looks for new events only every
/// few dozen task polls: through `poll_next` alone, a call made beside a saturating stream
/// would be read only after about a thousand of its items.
pub(crate) trait ReceiveNow: Stream {
    /// The next message if its bytes are here now; `Pending`, registering no waker, if not.
    fn receive_now(self: Pin<&mut Self>) -> Poll<Option<Self::Item>>;
}

impl<T: ReceiveNow + ?Sized> ReceiveNow for Pin<&mut T> {
    fn receive_now(self: Pin<&mut Self>) -> Poll<Option<Self::Item>> {
        self.get_mut().as_mut().receive_now()
    }
}

impl<S, In, Out, D> ReceiveNow for WireTransport<S, In, Out, D>
where
    S: FieldRead,
    D: MessageSeed<In>,
{
    fn receive_now(self: Pin<&mut Self>) -> Poll<Option<Self::Item>> {
        WireTransport::receive_now(self.get_mut())
    }
}
