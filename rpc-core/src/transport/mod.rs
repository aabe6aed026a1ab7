//! [`WireTransport`]: the tarpc transport both sides use after the handshake, in three parts.
//!
//! - [`FrameReader`] (`reader.rs`): bytes in, messages out, with no socket in sight; it owns the
//!   probe and large-field logic and can be driven byte by byte, or in any split, by a test or a
//!   fuzzer.
//! - [`FrameWriter`] (`writer.rs`): the outgoing queue, written with `writev` straight from large
//!   fields.
//! - This module: the glue that moves bytes between a socket and those two, and makes them a
//!   tarpc transport (a [`Stream`] of incoming and a [`Sink`] of outgoing messages).
//! - [`Link`] (`link.rs`): a socket past its handshake, turned into a transport.
//! - [`field_room`] (`field_room.rs`): how much room the reader gives a large field as its bytes
//!   arrive.
//!
//! Frames are those of [`crate::wire`]; the socket is usually a [`LocalStream`].

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use futures::{Sink, Stream};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::poll_read_buf;

use crate::lane::ShmSize;
use crate::stream::LocalStream;
use crate::wire::{CodecError, MessageSeed, WireCodec};

mod field_room;
mod link;
mod reader;
mod writer;

pub use crate::wire::BIG_FIELD;
pub use field_room::{FIELD_RESERVE, FIELD_STEP, field_room};
pub use link::Link;
pub use reader::{FrameReader, MAX_PROBES, Need};
pub use writer::FrameWriter;

/// Bytes [`WireTransport::receive_now`] reads at least when the reader reserved no room.
const RECEIVE_NOW_MIN: usize = 4096;

/// A framed connection: a [`Stream`] of `In` and a [`Sink`] of `Out`, which is what tarpc takes
/// as a transport (`ClientMessage<Req>` in and `Response<Resp>` out on the server, the reverse
/// on the client). Incoming messages are read as the seed `D` reads them ([`FrameReader`]):
/// `PhantomData<In>` by default.
#[derive(Debug)]
pub struct WireTransport<S, In, Out, D = PhantomData<In>> {
    io: S,
    reader: FrameReader<In, D>,
    writer: FrameWriter<Out>,
    /// The body length of the last message queued.
    last_queued: usize,
}

impl<S, In, Out> WireTransport<S, In, Out>
where
    S: FieldRead,
{
    /// Frames `io` with `codec`'s limit and checks. `read_buf` holds bytes already read from
    /// `io` (what a handshake read past its own frame); pass an empty buffer if there are none.
    pub fn new(io: S, read_buf: BytesMut, codec: WireCodec<In, Out>) -> Self {
        WireTransport::with_seed(io, read_buf, codec, PhantomData)
    }
}

impl<S, In, Out, D> WireTransport<S, In, Out, D>
where
    S: FieldRead,
{
    /// [`WireTransport::new`] for incoming messages read as `seed` reads them: e.g. responses
    /// whose type is known only at run time.
    pub fn with_seed(io: S, read_buf: BytesMut, codec: WireCodec<In, Out>, seed: D) -> Self {
        WireTransport {
            io,
            reader: FrameReader::with_seed(&codec, read_buf, seed),
            writer: FrameWriter::new(codec.format()),
            last_queued: 0,
        }
    }

    /// This transport reading incoming messages as `seed` reads them from now on: how a
    /// client's typed channel gets the seed it reads responses with from the transport a
    /// [`Link`] made. See [`FrameReader::reseed`].
    pub fn reseed<E: MessageSeed<In>>(self, seed: E) -> WireTransport<S, In, Out, E> {
        WireTransport {
            io: self.io,
            reader: self.reader.reseed(seed),
            writer: self.writer,
            last_queued: self.last_queued,
        }
    }

    /// This transport with the shared-memory lane on, both ways, with regions of `size` bytes
    /// (what the handshake agreed; [`ShmSize::OFF`] changes nothing). Unix sockets only: the
    /// regions travel as descriptors.
    pub fn with_lane(mut self, size: ShmSize) -> Self {
        if !size.is_off() {
            self.io.accept_descriptors();
            self.reader = self.reader.with_lane(size);
            self.writer = self.writer.with_lane(size);
        }
        self
    }

    /// Bytes of this side's shared-memory region the peer has not given back yet.
    pub fn lane_in_use(&self) -> u64 {
        self.writer.lane_in_use()
    }

    /// Whether part of a frame has arrived and the rest has not: what a read timeout guards.
    pub fn is_mid_frame(&self) -> bool {
        self.reader.is_mid_frame()
    }

    /// The body length of the frame the last message received came in (see
    /// [`FrameReader::last_frame_len`]).
    pub fn last_frame_len(&self) -> usize {
        self.reader.last_frame_len()
    }

    /// The body length of the last message queued (through [`WireTransport::queue`] or the
    /// `Sink`): what a stream's credit counts on the server.
    pub fn last_queued_len(&self) -> usize {
        self.last_queued
    }

    /// Whether queued messages are still to be written (the socket was full).
    pub fn has_unsent(&self) -> bool {
        self.writer.has_unsent()
    }

    /// Whether the `Sink` is not ready only because a message waits for room in the
    /// shared-memory region (see [`crate::lane`]): reading the peer's reports of slots copied
    /// is what lets it go, and a small message may still be queued behind it.
    pub fn waits_only_for_room(&self) -> bool {
        self.writer.waits_only_for_room()
    }

    /// Whether the peer has hung up, asked of the kernel now (see
    /// [`crate::stream::peer_hung_up`]), whatever the runtime has or has not noticed.
    pub fn peer_hung_up(&self) -> bool {
        crate::stream::peer_hung_up(&self.io)
    }
}

/// A socket a [`WireTransport`] runs over: readable and writable, with a descriptor (to ask the
/// kernel how much has arrived), able to read a large field straight into its buffer, and (for
/// the shared-memory lane) to pass descriptors.
pub trait FieldRead: AsyncRead + AsyncWrite + AsFd + Unpin {
    /// Reads into `buf`'s spare capacity, at most `max` bytes, without zeroing it first;
    /// `Ok(0)` at the end of the stream.
    fn poll_read_field(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Poll<io::Result<usize>>;

    /// From now on, keeps the descriptors the peer sends (see
    /// [`LocalStream::accept_descriptors`]).
    fn accept_descriptors(&mut self);

    /// The descriptors received since the last call.
    fn take_descriptors(&mut self) -> io::Result<Vec<OwnedFd>>;

    /// Reads at most `max` bytes the kernel holds now, without waiting, and hands them to
    /// `take` (see [`LocalStream::read_now`]): `Err(WouldBlock)` when nothing has arrived. By
    /// default nothing ever has: [`WireTransport::receive_now`] then only decodes what was read
    /// before.
    fn read_now(&mut self, max: usize, take: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let _ = (max, take);
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// [`FieldRead::poll_read_field`] without waiting (see [`LocalStream::read_vec_now`]):
    /// `Err(WouldBlock)` when nothing has arrived, as by default.
    fn read_field_now(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let _ = (buf, max);
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Writes `buf` with `fd` attached to its first byte.
    fn poll_write_with_descriptor(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        fd: BorrowedFd<'_>,
    ) -> Poll<io::Result<usize>>;
}

impl FieldRead for LocalStream {
    fn poll_read_field(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_read_vec(cx, buf, max)
    }

    fn accept_descriptors(&mut self) {
        LocalStream::accept_descriptors(self);
    }

    fn take_descriptors(&mut self) -> io::Result<Vec<OwnedFd>> {
        LocalStream::take_descriptors(self)
    }

    fn read_now(&mut self, max: usize, take: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        LocalStream::read_now(self, max, take)
    }

    fn read_field_now(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.read_vec_now(buf, max)
    }

    fn poll_write_with_descriptor(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        fd: BorrowedFd<'_>,
    ) -> Poll<io::Result<usize>> {
        LocalStream::poll_write_with_descriptor(self, cx, buf, fd)
    }
}

// Nothing in a transport is ever pinned in place: its messages are plain values in a queue.
impl<S: Unpin, In, Out, D> Unpin for WireTransport<S, In, Out, D> {}

/// Bytes the kernel holds for this socket, ready to read: what the peer has really sent.
fn queued_bytes(io: &impl AsFd) -> usize {
    rustix::io::ioctl_fionread(io).map_or(0, |n| n as usize)
}

impl<S, In, Out, D> WireTransport<S, In, Out, D>
where
    S: FieldRead,
    D: MessageSeed<In>,
{
    /// The next message, `None` at a clean end of the connection, or an error (after which the
    /// connection cannot be resynchronised). What [`Stream::poll_next`] returns.
    pub fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<In, CodecError>>> {
        self.receive(Some(cx))
    }

    /// The next message if its bytes are here now: decoded from what was read before, or from
    /// what the kernel holds, read at once whatever the runtime's readiness says (see
    /// [`LocalStream::read_now`]). `Pending` when nothing more has arrived, with no task
    /// registered to be woken: the task the socket wakes stays the one that last polled
    /// [`WireTransport::poll_receive`]. Otherwise as `poll_receive`.
    ///
    /// For a task that runs on with work in hand (a stream's consumer with answers waiting) and
    /// must still see, now and then, what arrives meanwhile: the runtime reports new bytes only
    /// when its event loop next runs. Each call that finds the buffer short costs a `read`.
    pub fn receive_now(&mut self) -> Poll<Option<Result<In, CodecError>>> {
        self.receive(None)
    }

    /// [`WireTransport::poll_receive`] with `cx`, [`WireTransport::receive_now`] without.
    fn receive(
        &mut self,
        mut cx: Option<&mut Context<'_>>,
    ) -> Poll<Option<Result<In, CodecError>>> {
        loop {
            if let Err(err) = self.pass_descriptors() {
                return Poll::Ready(Some(Err(err)));
            }
            let io = &self.io;
            let decoded = self.reader.decode(&mut || queued_bytes(io));
            if let Err(err) = self.settle_lane() {
                return Poll::Ready(Some(Err(err)));
            }
            let need = match decoded {
                Ok(Ok(item)) => return Poll::Ready(Some(Ok(item))),
                Ok(Err(need)) => need,
                Err(err) => return Poll::Ready(Some(Err(err))),
            };
            let read = match (&mut cx, need) {
                (None, need) => match self.read_now(need) {
                    None => continue,
                    Some(Err(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                        return Poll::Pending;
                    }
                    Some(read) => read,
                },
                (Some(cx), Need::Buffer) => {
                    ready!(poll_read_buf(
                        Pin::new(&mut self.io),
                        cx,
                        self.reader.buffer_mut()
                    ))
                }
                (Some(cx), Need::Field) => {
                    let Some((field, missing)) = self.reader.field_mut() else {
                        continue;
                    };
                    ready!(self.io.poll_read_field(cx, field, missing))
                }
            };
            match read {
                Ok(0) if self.reader.is_mid_frame() => {
                    return Poll::Ready(Some(Err(CodecError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection in the middle of a frame",
                    )))));
                }
                Ok(0) => return Poll::Ready(None),
                Ok(_) => {}
                Err(err) => return Poll::Ready(Some(Err(CodecError::Io(err)))),
            }
        }
    }

    /// Reads what the kernel holds now into where the reader wants it (`need`), without
    /// waiting: `Err(WouldBlock)` when nothing has arrived; `None` when no field is being filled
    /// after all (decode again).
    fn read_now(&mut self, need: Need) -> Option<io::Result<usize>> {
        let read = match need {
            Need::Buffer => {
                let buf = self.reader.buffer_mut();
                // The room the reader reserved (the read takes at most 64 KiB of it), or some.
                let room = (buf.capacity() - buf.len()).max(RECEIVE_NOW_MIN);
                self.io
                    .read_now(room, &mut |bytes| buf.extend_from_slice(bytes))
            }
            Need::Field => {
                let (field, missing) = self.reader.field_mut()?;
                self.io.read_field_now(field, missing)
            }
        };
        Some(read)
    }
}

impl<S, In, Out, D> WireTransport<S, In, Out, D>
where
    S: FieldRead,
{
    /// Hands the descriptors the socket received to the reader (the peer's region).
    fn pass_descriptors(&mut self) -> Result<(), CodecError> {
        for fd in self.io.take_descriptors()? {
            self.reader.offer_descriptor(fd)?;
        }
        Ok(())
    }

    /// Moves the lane's bookkeeping between reader and writer: slots copied out of the peer's
    /// region are reported to it, and slots the peer reports copied are freed.
    fn settle_lane(&mut self) -> Result<(), CodecError> {
        if let Some(through) = self.reader.take_release() {
            self.writer.queue_release(through);
        }
        if let Some(through) = self.reader.take_peer_released() {
            self.writer.release_slots(through)?;
        }
        Ok(())
    }
}

impl<S, In, Out, D> Stream for WireTransport<S, In, Out, D>
where
    S: FieldRead,
    D: MessageSeed<In>,
{
    type Item = Result<In, CodecError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_receive(cx)
    }
}

impl<S, In, Out, D> WireTransport<S, In, Out, D>
where
    S: FieldRead,
    Out: Serialize,
{
    /// Queues `item` to be written by the next [`WireTransport::poll_send`] (or flush): encoded
    /// now when small, kept for a direct write when large. Unlike [`Sink::start_send`] it needs
    /// no `poll_ready` first: the queue is bounded by the caller (one entry per call in flight).
    /// Returns its body length (what a stream's credit counts). Fails, queueing nothing, if
    /// `item` encodes to more than the frame limit.
    pub fn queue(&mut self, item: Out) -> Result<usize, CodecError> {
        let len = self.writer.queue(item)?;
        self.last_queued = len;
        Ok(len)
    }

    /// Writes the queue out and flushes the socket, or registers `cx` to be woken when the
    /// socket has room again.
    pub fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.writer.poll_write(Pin::new(&mut self.io), cx))?;
        Pin::new(&mut self.io)
            .poll_flush(cx)
            .map_err(CodecError::Io)
    }
}

impl<S, In, Out, D> Sink<Out> for WireTransport<S, In, Out, D>
where
    S: FieldRead,
    Out: Serialize,
{
    type Error = CodecError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        let this = self.get_mut();
        if this.writer.is_backed_up() {
            ready!(this.writer.poll_write(Pin::new(&mut this.io), cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), CodecError> {
        self.get_mut().queue(item).map(drop)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().io)
            .poll_shutdown(cx)
            .map_err(CodecError::Io)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lane_tests;
