//! [`FrameWriter`]: the outgoing queue, written to any `AsyncWrite` without copying large fields.
//!
//! Small messages are encoded into a buffer as they are queued, several frames per buffer, and
//! the buffer is written as one. A message of [`BIG_FIELD`] bytes or more stays in the queue and
//! is serialized as it is written: small pieces are staged, and a field of [`BIG_FIELD`] bytes or
//! more goes to the kernel in one vectored write with the staged bytes, straight from the
//! message's own memory. If the socket fills up, the next flush serializes the message again and
//! skips the bytes already sent: only the small pieces are re-encoded, never the large field
//! copied. With the shared-memory lane on, large fields go into this side's region instead
//! where they fit (`writer_lane.rs`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use serde::Serialize;
use tokio::io::AsyncWrite;

use crate::lane::ShmSize;
use crate::transport::FieldRead;
use crate::wire::{BIG_FIELD, CodecError, LENGTH_PREFIX_LEN, WireFormat};

/// Small-piece bytes staged before they are written even without a large field to go with them.
const STAGE_LIMIT: usize = 64 * 1024;

/// Room made in an encoding buffer before a small message is written into it, so that most
/// messages need no growth while being written.
const SMALL_RESERVE: usize = 1024;

/// Largest emptied encoding buffer kept for reuse: 64 KiB.
const SPARE_LIMIT: usize = 64 * 1024;

/// Buffered outgoing bytes above which a sink's `poll_ready` first writes them out.
const BACKPRESSURE: usize = 64 * 1024;

#[path = "writer_lane.rs"]
mod lane;

use lane::{LaneOut, LaneQueued};

/// The messages queued to be written, and the state of the one being written.
#[derive(Debug)]
pub struct FrameWriter<Out> {
    format: WireFormat,
    queue: VecDeque<Outgoing<Out>>,
    /// Encoded bytes queued and not yet written.
    buffered: usize,
    stage: BytesMut,
    /// An emptied buffer of encoded frames, kept for the next one: encoding into a fresh buffer
    /// grew it several times per small call.
    spare: BytesMut,
    /// The shared-memory lane's outgoing side, when the handshake agreed on one.
    lane: Option<LaneOut>,
}

/// One entry of the outgoing queue.
#[derive(Debug)]
enum Outgoing<Out> {
    /// Encoded frames of small messages (and lane frames), written as one; the first `written`
    /// bytes have been sent. (Counted rather than advanced past, so the buffer's capacity stays
    /// measurable for reuse.) With `with_fd`, the lane's region goes with the first byte.
    Encoded {
        buf: BytesMut,
        written: usize,
        with_fd: bool,
    },
    /// A large message, serialized as it is written; `written` frame bytes have been sent.
    Direct {
        item: Out,
        body_len: usize,
        written: usize,
    },
    /// A message for the lane that waits for room in the region, at most
    /// [`crate::lane::LANE_WAIT`] once at the front; then it goes through the socket, as a
    /// `Direct` entry.
    AwaitingRoom { item: Out, body_len: usize },
}

impl<Out> FrameWriter<Out> {
    /// An empty queue writing frames in `format` (whose limit outgoing messages are held to).
    pub fn new(format: WireFormat) -> Self {
        FrameWriter {
            format,
            queue: VecDeque::new(),
            buffered: 0,
            stage: BytesMut::new(),
            spare: BytesMut::new(),
            lane: None,
        }
    }

    /// This writer sending large fields through a shared-memory region of `size` bytes (made
    /// when the first one is queued) where they fit; [`ShmSize::OFF`] leaves the lane off.
    pub fn with_lane(mut self, size: ShmSize) -> Self {
        self.lane = (!size.is_off()).then(|| LaneOut::new(size));
        self
    }

    /// The encoding buffer at the back of the queue, none of which has been written, added if
    /// need be. (Appended to only while none of it has been written: a buffer is freed only once
    /// written out whole, so one that kept growing while the socket was full would keep every
    /// byte ever sent on the connection.)
    fn open_buffer(&mut self) -> &mut BytesMut {
        if !matches!(
            self.queue.back(),
            Some(Outgoing::Encoded { written: 0, .. })
        ) {
            let mut buf = std::mem::take(&mut self.spare);
            buf.reserve(SMALL_RESERVE);
            self.queue.push_back(Outgoing::Encoded {
                buf,
                written: 0,
                with_fd: false,
            });
        }
        match self.queue.back_mut() {
            Some(Outgoing::Encoded { buf, .. }) => buf,
            _ => unreachable!("an encoding buffer was just put at the back"),
        }
    }

    /// Whether queued messages (or reports of released slots) are still to be written.
    pub fn has_unsent(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the queue should be written out before more is queued: enough small bytes are
    /// buffered, or a large message waits (it holds its caller's memory until written).
    pub fn is_backed_up(&self) -> bool {
        self.buffered >= BACKPRESSURE || self.writes_direct() || self.awaits_room()
    }

    /// Whether the queue is backed up ([`FrameWriter::is_backed_up`]) only by a message waiting
    /// for room in the shared-memory region. Writing does not free that, the peer's report
    /// does, which must be read; a small message queued meanwhile waits behind it, within the
    /// bytes buffered that would back the queue up.
    pub fn waits_only_for_room(&self) -> bool {
        self.buffered < BACKPRESSURE && !self.writes_direct() && self.awaits_room()
    }

    /// Whether a large message is queued to be written from its own memory.
    fn writes_direct(&self) -> bool {
        self.queue
            .iter()
            .any(|entry| matches!(entry, Outgoing::Direct { .. }))
    }
}

#[cfg(test)]
impl<Out> FrameWriter<Out> {
    /// Whether the first queued buffer has been written in part.
    pub(super) fn front_is_partly_written(&self) -> bool {
        matches!(
            self.queue.front(),
            Some(Outgoing::Encoded { written, buf, .. }) if *written > 0 && *written < buf.len()
        )
    }

    /// Entries in the queue.
    pub(super) fn queued_entries(&self) -> usize {
        self.queue.len()
    }

    /// Bytes of this side's region handed out since the connection began (slots' positions
    /// only grow): what went through the lane.
    pub(super) fn lane_handed_out(&self) -> u64 {
        self.own_region().map_or(0, |region| region.mark())
    }
}

impl<Out: Serialize> FrameWriter<Out> {
    /// Queues `item`: encoded now when small, kept for a direct write when large. Returns its
    /// body length (without the 4-byte prefix: what a stream's credit counts). Fails, queueing
    /// nothing, if `item` encodes to more than the frame limit.
    pub fn queue(&mut self, item: Out) -> Result<usize, CodecError> {
        let format = self.format;
        let buf = self.open_buffer();
        let before = buf.len();
        let encoded = format.encode_small_frame(&item, BIG_FIELD, buf);
        let added = buf.len() - before;
        let emptied = buf.is_empty();
        self.buffered += added;
        if emptied {
            if let Some(Outgoing::Encoded { buf, .. }) = self.queue.pop_back() {
                self.spare = buf;
            }
        }
        if encoded? {
            return Ok(added - LENGTH_PREFIX_LEN);
        }
        let waits = match self.queue_lane(&item)? {
            LaneQueued::Sent(len) => return Ok(len),
            LaneQueued::Wait => true,
            LaneQueued::Socket => false,
        };
        // A body of 32 KiB or more: sized now, written from the message itself.
        let body_len = self.format.body_len(&item)?;
        self.queue.push_back(if waits {
            if let Some(lane) = self.lane.as_mut() {
                lane.awaiting += 1;
            }
            Outgoing::AwaitingRoom { item, body_len }
        } else {
            Outgoing::Direct {
                item,
                body_len,
                written: 0,
            }
        });
        Ok(body_len)
    }

    /// Writes the queue to `io` until it is empty or `io` is full (then `cx` is woken when it
    /// has room). Does not flush `io`.
    pub fn poll_write<S: FieldRead>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), CodecError>> {
        loop {
            if matches!(self.queue.front(), Some(Outgoing::AwaitingRoom { .. })) {
                ready!(self.poll_room(cx))?;
                continue;
            }
            let Some(entry) = self.queue.front_mut() else {
                break;
            };
            match entry {
                Outgoing::Encoded {
                    buf,
                    written,
                    with_fd,
                } => {
                    if *with_fd {
                        let region = self.lane.as_ref().and_then(|lane| lane.region.as_ref());
                        let Some(region) = region else {
                            return Poll::Ready(Err(CodecError::unencodable(
                                "a lane frame without a region",
                            )));
                        };
                        let n = ready!(io.as_mut().get_mut().poll_write_with_descriptor(
                            cx,
                            &buf[*written..],
                            region.fd()
                        ))?;
                        if n == 0 {
                            return Poll::Ready(Err(write_zero()));
                        }
                        *with_fd = false;
                        *written += n;
                        self.buffered -= n;
                    }
                    while *written < buf.len() {
                        let n = ready!(io.as_mut().poll_write(cx, &buf[*written..]))?;
                        if n == 0 {
                            return Poll::Ready(Err(write_zero()));
                        }
                        *written += n;
                        self.buffered -= n;
                    }
                }
                Outgoing::Direct {
                    item,
                    body_len,
                    written,
                } => {
                    self.stage.clear();
                    let mut writer = DirectWriter {
                        io: io.as_mut(),
                        cx: &mut *cx,
                        skip: *written,
                        stage: &mut self.stage,
                        sent: 0,
                        blocked: false,
                    };
                    let prefix = (*body_len as u32).to_be_bytes();
                    let result = match writer.write_all(&prefix) {
                        Ok(()) => self
                            .format
                            .write_body(&mut writer, item)
                            .and_then(|()| writer.flush().map_err(CodecError::Io)),
                        Err(err) => Err(CodecError::Io(err)),
                    };
                    *written += writer.sent;
                    if writer.blocked {
                        return Poll::Pending;
                    }
                    result?;
                    if *written != LENGTH_PREFIX_LEN + *body_len {
                        return Poll::Ready(Err(CodecError::unencodable(
                            "a message encoded to a different length the second time",
                        )));
                    }
                }
                Outgoing::AwaitingRoom { .. } => unreachable!("moved on by poll_room above"),
            }
            if let Some(Outgoing::Encoded { mut buf, .. }) = self.queue.pop_front() {
                if buf.capacity() <= SPARE_LIMIT {
                    buf.clear();
                    self.spare = buf;
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn write_zero() -> CodecError {
    CodecError::Io(io::Error::new(
        io::ErrorKind::WriteZero,
        "the socket accepted no bytes",
    ))
}

/// The `io::Write` a large message is serialized into: skips the `skip` bytes an earlier flush
/// already sent, stages small pieces, and writes each large piece with the staged bytes in one
/// vectored write, from the message's own memory. When the socket is full it records `blocked`
/// (the task is registered for wake-up) and fails the serialization, which the next flush redoes.
struct DirectWriter<'a, 'c, S> {
    io: Pin<&'a mut S>,
    cx: &'a mut Context<'c>,
    skip: usize,
    stage: &'a mut BytesMut,
    /// Bytes handed to the socket by this pass.
    sent: usize,
    blocked: bool,
}

impl<S: AsyncWrite> DirectWriter<'_, '_, S> {
    /// Writes the staged bytes and then `piece`, all of them or until the socket is full.
    fn send(&mut self, mut piece: &[u8]) -> io::Result<()> {
        while !self.stage.is_empty() || !piece.is_empty() {
            let slices = [IoSlice::new(&self.stage[..]), IoSlice::new(piece)];
            let n = match self.io.as_mut().poll_write_vectored(self.cx, &slices) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => n,
                // Retried here: an `Interrupted` returned to `write_all` would make it send the
                // same piece again.
                Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => {
                    self.blocked = true;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            };
            self.sent += n;
            let from_stage = n.min(self.stage.len());
            self.stage.advance(from_stage);
            piece = &piece[n - from_stage..];
        }
        Ok(())
    }
}

impl<S: AsyncWrite> Write for DirectWriter<'_, '_, S> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        if self.blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.skip >= len {
            self.skip -= len;
            return Ok(len);
        }
        buf = &buf[self.skip..];
        self.skip = 0;
        if buf.len() >= BIG_FIELD {
            self.send(buf)?;
        } else {
            self.stage.extend_from_slice(buf);
            if self.stage.len() >= STAGE_LIMIT {
                self.send(&[])?;
            }
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send(&[])
    }
}
