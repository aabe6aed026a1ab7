//! [`WireTransport`]: the tarpc transport both sides use, which moves large byte fields between
//! the socket and the message without copying them in user space.
//!
//! Frames are the same as [`WireCodec`]'s (a 4-byte big-endian length, then a bincode body), and
//! frames under [`BIG_FIELD`] take the same path: buffered, then decoded from the complete frame.
//! A larger frame usually carries one large `serde_bytes` or string field (an echo payload, a
//! file's contents), and copying that field is what made a 1 MiB call cost 2.5 times a raw echo
//! of the same bytes. So for these frames:
//!
//! - **Writing:** the message stays in the queue and is serialized as it is written. Small pieces
//!   are staged; a field of [`BIG_FIELD`] bytes or more goes to the kernel in one `writev` with the
//!   staged bytes, straight from the message's own memory. If the socket fills up, the next flush
//!   serializes the message again and skips the bytes already sent: only the small pieces are
//!   re-encoded, never the large field copied.
//! - **Reading:** the frame's leading bytes are decoded as far as the first large field (a
//!   "probe"); that field is then read from the socket directly into the buffer that becomes the
//!   decoded `Vec<u8>`. Once every large field is in, the message is decoded for real, taking those
//!   buffers as they are.
//!
//! The hostile-peer properties of [`WireCodec`] hold here too: a length over the limit is refused
//! when its 4 bytes arrive; a field claiming more than its frame still holds is malformed at once;
//! buffers grow only with bytes the peer has actually sent (what is buffered here plus what the
//! kernel already holds for this socket), never with a length it merely claims, except that a
//! large field gets up to [`FIELD_RESERVE`] (2 MiB) of room when it starts; and decoding work
//! per frame is bounded, because after [`MAX_PROBES`] probes the frame falls back to being read
//! whole and decoded once.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bincode::Options;
use bincode::de::read::BincodeRead;
use bytes::{Buf, BytesMut};
use futures::{Sink, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::io::poll_read_buf;

use crate::codec::{CodecError, LENGTH_PREFIX_LEN, READ_AHEAD, WireCodec, frame_len, split_frame};
use crate::stream::LocalStream;

mod link;

pub use link::Link;

/// Byte and string fields at least this long (32 KiB) are written from, and read into, their own
/// memory instead of being copied through the frame buffers; frames at least this long take the
/// direct path.
pub const BIG_FIELD: usize = 32 * 1024;

/// How many times one frame's leading bytes may be decoded in search of its next large field
/// before the frame is read whole and decoded once instead (so a frame made of many small fields
/// costs a bounded amount of decoding, not one pass per read).
pub const MAX_PROBES: usize = 8;

/// Room reserved for a large field before its bytes arrive: 2 MiB, about what the kernel
/// already holds in flight for one connection (two 1 MiB socket buffers). Reserving a field's
/// whole length up front is what spares it a copy each time it would otherwise grow (the
/// reallocation copies were a tenth of a 1 MiB call's time); past this size a field grows with
/// the bytes that have actually arrived. Reserved pages the peer never fills are mostly address
/// space: they are not touched, and a stalled frame is dropped at the server's read timeout.
pub const FIELD_RESERVE: usize = 2 * 1024 * 1024;

/// Leading body bytes the codec's body check needs (a request's variant and deadline).
const CHECKED_PREFIX: usize = 64;

/// Small-piece bytes staged before they are written even without a large field to go with them.
const STAGE_LIMIT: usize = 64 * 1024;

/// Read buffer space kept free between frames: one read takes in many small frames at once.
const MIN_READ_SPACE: usize = 8 * 1024;

/// Room made in an encoding buffer before a small message is written into it, so that most
/// messages need no growth while being written.
const SMALL_RESERVE: usize = 1024;

/// Largest emptied encoding buffer kept for reuse: 64 KiB.
const SPARE_LIMIT: usize = 64 * 1024;

/// Buffered outgoing bytes above which [`Sink::poll_ready`] first flushes.
const BACKPRESSURE: usize = 64 * 1024;

/// A framed connection: a [`Stream`] of `In` and a [`Sink`] of `Out`, which is what tarpc takes
/// as a transport (`ClientMessage<Req>` in and `Response<Resp>` out on the server, the reverse
/// on the client).
#[derive(Debug)]
pub struct WireTransport<S, In, Out> {
    io: S,
    codec: WireCodec<In, Out>,
    read_buf: BytesMut,
    large: Option<LargeFrame>,
    queue: VecDeque<Outgoing<Out>>,
    buffered: usize,
    stage: BytesMut,
    /// An emptied buffer of encoded frames, kept for the next one: encoding into a fresh buffer
    /// grew it several times per small call.
    spare: BytesMut,
}

impl<S, In, Out> WireTransport<S, In, Out>
where
    S: FieldRead,
{
    /// Frames `io` with `codec`'s limit and checks. `read_buf` holds bytes already read from
    /// `io` (what a handshake read past its own frame); pass an empty buffer if there are none.
    pub fn new(io: S, read_buf: BytesMut, codec: WireCodec<In, Out>) -> Self {
        WireTransport {
            io,
            codec,
            read_buf,
            large: None,
            queue: VecDeque::new(),
            buffered: 0,
            stage: BytesMut::new(),
            spare: BytesMut::new(),
        }
    }

    /// Whether part of a frame has arrived and the rest has not: what a read timeout guards.
    pub fn is_mid_frame(&self) -> bool {
        !self.read_buf.is_empty() || self.large.is_some()
    }

    /// Whether queued messages are still to be written (the socket was full).
    pub fn has_unsent(&self) -> bool {
        !self.queue.is_empty()
    }
}

/// A socket a [`WireTransport`] runs over: readable and writable, with a descriptor (to ask the
/// kernel how much has arrived), and able to read a large field straight into its buffer.
pub trait FieldRead: AsyncRead + AsyncWrite + AsFd + Unpin {
    /// Reads into `buf`'s spare capacity, at most `max` bytes, without zeroing it first;
    /// `Ok(0)` at the end of the stream.
    fn poll_read_field(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
        max: usize,
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
}

// Nothing in a transport is ever pinned in place: its messages are plain values in a queue.
impl<S: Unpin, In, Out> Unpin for WireTransport<S, In, Out> {}

/// Progress through a frame of at least [`BIG_FIELD`] bytes.
#[derive(Debug)]
struct LargeFrame {
    /// The body length.
    len: usize,
    /// Body bytes taken so far that are not inside a large field, in order.
    smalls: BytesMut,
    /// Large fields read so far, in order.
    fields: Vec<Vec<u8>>,
    /// The large field being read, and its length.
    filling: Option<(Vec<u8>, usize)>,
    /// Body bytes taken so far: `smalls`, `fields` and `filling` together.
    taken: usize,
    probes: usize,
    /// Whether the codec's body check has passed on the frame's leading bytes.
    checked: bool,
    /// Given up probing: the rest of the frame is read into the buffer and decoded once.
    whole: bool,
}

/// What the reader needs before it can go on.
enum Need {
    /// More bytes in the read buffer, which has been given room for them.
    Buffer,
    /// More bytes read straight into the large field being filled.
    Field,
}

impl<S, In, Out> WireTransport<S, In, Out>
where
    S: FieldRead,
    In: DeserializeOwned,
{
    /// Decodes the next message if its bytes are all here, or says what to read next.
    fn advance(&mut self) -> Result<Result<In, Need>, CodecError> {
        let limit = self.codec.limit();
        let Some(large) = self.large.as_mut() else {
            let Some(len) = frame_len(&self.read_buf) else {
                self.read_buf.reserve(MIN_READ_SPACE);
                return Ok(Err(Need::Buffer));
            };
            if len < BIG_FIELD || len > limit.bytes() {
                // Small frames (and refusals of oversized ones) take the buffered path.
                return match split_frame(&mut self.read_buf, limit)? {
                    Some(body) => self.codec.decode_body(&body).map(Ok),
                    None => Ok(Err(Need::Buffer)),
                };
            }
            self.read_buf.advance(LENGTH_PREFIX_LEN);
            self.large = Some(LargeFrame {
                len,
                smalls: BytesMut::new(),
                fields: Vec::new(),
                filling: None,
                taken: 0,
                probes: 0,
                checked: false,
                whole: false,
            });
            // The frame's leading bytes are usually here already: probe them now.
            return self.advance();
        };

        if let Some((field, want)) = large.filling.as_mut() {
            let from_buffer = (*want - field.len()).min(self.read_buf.len());
            field.extend_from_slice(&self.read_buf[..from_buffer]);
            self.read_buf.advance(from_buffer);
            if field.len() < *want {
                let queued = queued_bytes(&self.io);
                grow_towards(field, *want, queued);
                return Ok(Err(Need::Field));
            }
            let (field, _) = large.filling.take().unwrap_or_default();
            large.fields.push(field);
        }

        let remaining = large.len - large.taken;
        if large.whole {
            if self.read_buf.len() < remaining {
                let missing = remaining - self.read_buf.len();
                let room = missing.min(READ_AHEAD.max(self.read_buf.len()));
                self.read_buf
                    .reserve(room.max(queued_bytes(&self.io).min(missing)));
                return Ok(Err(Need::Buffer));
            }
            let rest = self.read_buf.split_to(remaining);
            large.smalls.extend_from_slice(&rest);
            large.taken += remaining;
            return self.finish_large().map(Ok);
        }

        let available = self.read_buf.len().min(remaining);
        if !large.checked {
            // The body check (a request's deadline) must pass before any decoding: tarpc turns a
            // deadline into `Instant::now() + deadline` as it decodes, which panics for a huge one.
            if let Some(check) = self.codec.check() {
                let needed = CHECKED_PREFIX.min(remaining);
                if available < needed {
                    self.read_buf.reserve(needed);
                    return Ok(Err(Need::Buffer));
                }
                check(&self.read_buf[..available])?;
            }
            large.checked = true;
        }
        let mut state = ReadState::probe(large.fields.len());
        let outcome = self.codec.format().decode_from::<_, In>(FieldReader {
            head: &large.smalls,
            tail: &self.read_buf[..available],
            fields: &mut large.fields,
            state: &mut state,
        });
        large.probes += 1;
        let consumed = state.pos.saturating_sub(large.smalls.len());
        match (outcome, state.stop) {
            (_, Some(Stop::Field(want))) => {
                if want > remaining - consumed {
                    return Err(malformed(format!(
                        "a field claims {want} bytes but its frame holds only {} more",
                        remaining - consumed
                    )));
                }
                let head = self.read_buf.split_to(consumed);
                large.smalls.extend_from_slice(&head);
                large.taken += consumed + want;
                let mut field = Vec::new();
                grow_towards(
                    &mut field,
                    want,
                    self.read_buf.len() + queued_bytes(&self.io),
                );
                large.filling = Some((field, want));
                if large.probes >= MAX_PROBES {
                    large.whole = true;
                }
                // Part of the field may be in the read buffer already: take that first.
                self.advance()
            }
            (_, Some(Stop::OutOfData)) => {
                if available == remaining || large.probes >= MAX_PROBES || available >= READ_AHEAD {
                    // Read the rest whole and decode once (when every byte is here already, that
                    // decode reports exactly what is wrong with the message). Go on at once: the
                    // bytes may all be buffered, and the socket may have nothing more to wake us.
                    large.whole = true;
                    return self.advance();
                }
                let room = (remaining - available).min(READ_AHEAD);
                self.read_buf.reserve(room);
                Ok(Err(Need::Buffer))
            }
            (Ok(_), None) => {
                if consumed < remaining {
                    return Err(malformed(format!(
                        "{} bytes left over after the message",
                        remaining - consumed
                    )));
                }
                let head = self.read_buf.split_to(consumed);
                large.smalls.extend_from_slice(&head);
                large.taken += consumed;
                self.finish_large().map(Ok)
            }
            (Err(err), None) => {
                if large.fields.is_empty() {
                    Err(CodecError::Malformed(err))
                } else {
                    // The probe saw empty stand-ins for the fields already read; let the real
                    // decode, with the real fields, have the last word (at once: the rest may
                    // be buffered already).
                    large.whole = true;
                    self.advance()
                }
            }
        }
    }

    /// Decodes a large frame whose bytes have all been taken.
    fn finish_large(&mut self) -> Result<In, CodecError> {
        let Some(large) = self.large.take() else {
            return Err(malformed("no frame in progress".to_owned()));
        };
        let mut fields = large.fields;
        let known = fields.len();
        let mut state = ReadState::decode(known);
        let value = self
            .codec
            .format()
            .decode_from(FieldReader {
                head: &large.smalls,
                tail: &[],
                fields: &mut fields,
                state: &mut state,
            })
            .map_err(CodecError::Malformed)?;
        if state.pos != large.smalls.len() || state.fields_seen < known {
            return Err(malformed("bytes left over after the message".to_owned()));
        }
        Ok(value)
    }
}

/// Bytes the kernel holds for this socket, ready to read: what the peer has really sent.
fn queued_bytes(io: &impl AsFd) -> usize {
    rustix::io::ioctl_fionread(io).map_or(0, |n| n as usize)
}

/// Makes room in `field` (which is to hold `want` bytes) for the bytes already sent: at least
/// [`FIELD_RESERVE`] or as much again as it holds, and at most what is still missing.
fn grow_towards(field: &mut Vec<u8>, want: usize, sent: usize) {
    let missing = want - field.len();
    let room = missing.min(sent.max(FIELD_RESERVE).max(field.len()));
    if field.capacity() - field.len() < room {
        field.reserve_exact(room);
    }
}

fn malformed(message: String) -> CodecError {
    CodecError::Malformed(Box::new(bincode::ErrorKind::Custom(message)))
}

impl<S, In, Out> Stream for WireTransport<S, In, Out>
where
    S: FieldRead,
    In: DeserializeOwned,
{
    type Item = Result<In, CodecError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_receive(cx)
    }
}

impl<S, In, Out> WireTransport<S, In, Out>
where
    S: FieldRead,
    In: DeserializeOwned,
{
    /// The next message, `None` at a clean end of the connection, or an error (after which the
    /// connection cannot be resynchronised). What [`Stream::poll_next`] returns.
    pub fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<In, CodecError>>> {
        loop {
            let need = match self.advance() {
                Ok(Ok(item)) => return Poll::Ready(Some(Ok(item))),
                Ok(Err(need)) => need,
                Err(err) => return Poll::Ready(Some(Err(err))),
            };
            let read = match need {
                Need::Buffer => poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf),
                Need::Field => {
                    let Some((field, want)) = self.large.as_mut().and_then(|l| l.filling.as_mut())
                    else {
                        continue;
                    };
                    let missing = *want - field.len();
                    self.io.poll_read_field(cx, field, missing)
                }
            };
            match ready!(read) {
                Ok(0) if self.is_mid_frame() => {
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
}

/// Where a [`FieldReader`] stopped, when it stopped early.
enum Stop {
    /// At a large field not read yet, of this many bytes.
    Field(usize),
    /// At the end of the bytes available.
    OutOfData,
}

/// A [`FieldReader`]'s progress, kept outside it so it can be read after bincode is done.
struct ReadState {
    /// True while probing: large fields already read are stood in for by empty ones, and the
    /// first one not read yet stops the decode.
    probing: bool,
    /// Large fields read so far.
    known: usize,
    /// Large fields met so far.
    fields_seen: usize,
    /// Bytes taken from `head` then `tail`.
    pos: usize,
    stop: Option<Stop>,
}

impl ReadState {
    fn probe(known: usize) -> Self {
        ReadState {
            probing: true,
            known,
            fields_seen: 0,
            pos: 0,
            stop: None,
        }
    }

    fn decode(known: usize) -> Self {
        ReadState {
            probing: false,
            ..ReadState::probe(known)
        }
    }
}

/// A large field as a [`FieldReader`] hands it out.
enum Field {
    /// Read earlier into its own buffer (empty while probing).
    Ready(Vec<u8>),
    /// Not a large field, or a large one decoded from the frame's bytes: read it inline.
    Inline,
}

/// bincode's view of a frame body: its small bytes (`head`, then `tail`) with the large fields
/// already read slotted in wherever bincode asks for a byte buffer of [`BIG_FIELD`] or more.
struct FieldReader<'a> {
    head: &'a [u8],
    tail: &'a [u8],
    fields: &'a mut Vec<Vec<u8>>,
    state: &'a mut ReadState,
}

impl FieldReader<'_> {
    fn stop(&mut self, stop: Stop) -> bincode::Error {
        self.state.stop = Some(stop);
        Box::new(bincode::ErrorKind::Custom("stopped early".to_owned()))
    }

    /// Decides where the next byte buffer of `len` bytes comes from.
    fn field(&mut self, len: usize) -> bincode::Result<Field> {
        if len < BIG_FIELD {
            return Ok(Field::Inline);
        }
        let index = self.state.fields_seen;
        self.state.fields_seen += 1;
        if index >= self.state.known {
            return if self.state.probing {
                Err(self.stop(Stop::Field(len)))
            } else {
                Ok(Field::Inline)
            };
        }
        if self.state.probing {
            return Ok(Field::Ready(Vec::new()));
        }
        let field = std::mem::take(&mut self.fields[index]);
        if field.len() != len {
            return Err(Box::new(bincode::ErrorKind::Custom(format!(
                "field {index} was read as {} bytes but is decoded as {len}",
                field.len()
            ))));
        }
        Ok(Field::Ready(field))
    }

    /// The next `len` small bytes, borrowed when they lie in one slice.
    fn take(&mut self, len: usize) -> bincode::Result<std::borrow::Cow<'_, [u8]>> {
        let pos = self.state.pos;
        let total = self.head.len() + self.tail.len();
        if total - pos < len {
            return Err(self.stop(Stop::OutOfData));
        }
        self.state.pos += len;
        let end = pos + len;
        let head_len = self.head.len();
        Ok(if end <= head_len {
            self.head[pos..end].into()
        } else if pos >= head_len {
            self.tail[pos - head_len..end - head_len].into()
        } else {
            let mut joined = self.head[pos..].to_vec();
            joined.extend_from_slice(&self.tail[..end - head_len]);
            joined.into()
        })
    }
}

impl Read for FieldReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.take(out.len()) {
            Ok(bytes) => {
                out.copy_from_slice(&bytes);
                Ok(out.len())
            }
            Err(_) => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

impl<'de> BincodeRead<'de> for FieldReader<'_> {
    fn forward_read_str<V>(&mut self, length: usize, visitor: V) -> bincode::Result<V::Value>
    where
        V: serde::de::Visitor<'de>,
    {
        let invalid = |err| Box::new(bincode::ErrorKind::InvalidUtf8Encoding(err));
        match self.field(length)? {
            Field::Ready(field) => visitor.visit_str(std::str::from_utf8(&field).map_err(invalid)?),
            Field::Inline => {
                let bytes = self.take(length)?;
                visitor.visit_str(std::str::from_utf8(&bytes).map_err(invalid)?)
            }
        }
    }

    fn get_byte_buffer(&mut self, length: usize) -> bincode::Result<Vec<u8>> {
        match self.field(length)? {
            Field::Ready(field) => Ok(field),
            Field::Inline => Ok(self.take(length)?.into_owned()),
        }
    }

    fn forward_read_bytes<V>(&mut self, length: usize, visitor: V) -> bincode::Result<V::Value>
    where
        V: serde::de::Visitor<'de>,
    {
        match self.field(length)? {
            Field::Ready(field) => visitor.visit_byte_buf(field),
            Field::Inline => visitor.visit_bytes(&self.take(length)?),
        }
    }
}

/// One entry of the outgoing queue.
#[derive(Debug)]
enum Outgoing<Out> {
    /// Encoded frames of small messages, written as one; the first `written` bytes have been
    /// sent. (Counted rather than advanced past, so the buffer's capacity stays measurable for
    /// reuse.)
    Encoded { buf: BytesMut, written: usize },
    /// A large message, serialized as it is written; `written` frame bytes have been sent.
    Direct {
        item: Out,
        body_len: usize,
        written: usize,
    },
}

impl<S, In, Out> WireTransport<S, In, Out>
where
    S: FieldRead,
    Out: Serialize,
{
    /// Queues `item` to be written by the next [`WireTransport::poll_send`] (or flush): encoded
    /// now when small, kept for a direct write when large. Unlike [`Sink::start_send`] it needs
    /// no `poll_ready` first: the queue is bounded by the caller (one entry per call in flight).
    /// Fails, queueing nothing, if `item` encodes to more than the frame limit.
    pub fn queue(&mut self, item: Out) -> Result<(), CodecError> {
        let format = self.codec.format();
        // Appended to the last buffer only if none of it has been written: a buffer is freed
        // only once written out whole, so one that kept growing while the socket was full would
        // keep every byte ever sent on the connection.
        if !matches!(
            self.queue.back(),
            Some(Outgoing::Encoded { written: 0, .. })
        ) {
            let mut buf = std::mem::take(&mut self.spare);
            buf.reserve(SMALL_RESERVE);
            self.queue.push_back(Outgoing::Encoded { buf, written: 0 });
        }
        if let Some(Outgoing::Encoded { buf, written: 0 }) = self.queue.back_mut() {
            let before = buf.len();
            let encoded = format.encode_small_frame(&item, BIG_FIELD, buf);
            self.buffered += buf.len() - before;
            if buf.is_empty() {
                if let Some(Outgoing::Encoded { buf, .. }) = self.queue.pop_back() {
                    self.spare = buf;
                }
            }
            if encoded? {
                return Ok(());
            }
        }
        // A body of 32 KiB or more: sized now, written from the message itself.
        let body_len = format.body_len(&item)?;
        self.queue.push_back(Outgoing::Direct {
            item,
            body_len,
            written: 0,
        });
        Ok(())
    }

    /// Writes the queue out and flushes the socket, or registers `cx` to be woken when the
    /// socket has room again.
    pub fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.poll_write_queue(cx))?;
        Pin::new(&mut self.io)
            .poll_flush(cx)
            .map_err(CodecError::Io)
    }

    /// Writes the queue out until it is empty or the socket is full.
    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        while let Some(entry) = self.queue.front_mut() {
            match entry {
                Outgoing::Encoded { buf, written } => {
                    while *written < buf.len() {
                        let n = ready!(Pin::new(&mut self.io).poll_write(cx, &buf[*written..]))?;
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
                        io: Pin::new(&mut self.io),
                        cx: &mut *cx,
                        skip: *written,
                        stage: &mut self.stage,
                        sent: 0,
                        blocked: false,
                    };
                    let prefix = (*body_len as u32).to_be_bytes();
                    let result = match writer.write_all(&prefix) {
                        Ok(()) => self
                            .codec
                            .format()
                            .unbounded_options()
                            .serialize_into(&mut writer, item)
                            .and_then(|()| writer.flush().map_err(bincode::Error::from)),
                        Err(err) => Err(err.into()),
                    };
                    *written += writer.sent;
                    if writer.blocked {
                        return Poll::Pending;
                    }
                    if let Err(err) = result {
                        return Poll::Ready(Err(match *err {
                            bincode::ErrorKind::Io(err) => CodecError::Io(err),
                            _ => CodecError::Encode(err),
                        }));
                    }
                    if *written != LENGTH_PREFIX_LEN + *body_len {
                        return Poll::Ready(Err(CodecError::Encode(Box::new(
                            bincode::ErrorKind::Custom(
                                "a message encoded to a different length the second time"
                                    .to_owned(),
                            ),
                        ))));
                    }
                }
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

impl<S, In, Out> Sink<Out> for WireTransport<S, In, Out>
where
    S: FieldRead,
    Out: Serialize,
{
    type Error = CodecError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        let this = self.get_mut();
        let direct_queued = this
            .queue
            .iter()
            .any(|entry| matches!(entry, Outgoing::Direct { .. }));
        if this.buffered >= BACKPRESSURE || direct_queued {
            ready!(this.poll_write_queue(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), CodecError> {
        self.get_mut().queue(item)
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
mod tests {
    use super::*;
    use crate::codec::{FrameLimit, MIN_MAX_FRAME, WireFormat};
    use futures::{SinkExt, StreamExt};
    use serde::Deserialize;
    use serde_bytes::ByteBuf;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixStream;

    /// A message with small fields around large ones, as a service's request might be.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Message {
        id: u64,
        name: String,
        first: ByteBuf,
        note: String,
        second: ByteBuf,
        tail: Vec<u32>,
    }

    fn message(id: u64, first: usize, second: usize, note: usize) -> Message {
        Message {
            id,
            name: format!("message {id}"),
            first: ByteBuf::from(
                (0..first)
                    .map(|i| (i * 7 + id as usize) as u8)
                    .collect::<Vec<_>>(),
            ),
            note: "n".repeat(note),
            second: ByteBuf::from(vec![id as u8; second]),
            tail: vec![1, 2, 3, id as u32],
        }
    }

    type Transport = WireTransport<LocalStream, Message, Message>;

    fn local(stream: UnixStream) -> LocalStream {
        LocalStream::unix(stream).expect("registers")
    }

    fn pair(limit: usize) -> (Transport, Transport) {
        let (a, b) = UnixStream::pair().expect("socket pair");
        let codec = || WireCodec::new(FrameLimit::new(limit).expect("in range"));
        (
            WireTransport::new(local(a), BytesMut::new(), codec()),
            WireTransport::new(local(b), BytesMut::new(), codec()),
        )
    }

    /// Mixed sizes, sent back to back without waiting, so writes fill the socket and resume and
    /// reads find several frames (and parts of frames) in one buffer.
    fn mixed() -> Vec<Message> {
        let sizes = [
            (0, 0, 0),
            (BIG_FIELD, 0, 10),
            (1 << 20, 3, 0),
            (5, BIG_FIELD * 3, BIG_FIELD),
            (BIG_FIELD - 1, BIG_FIELD - 1, 0),
            (3 << 20, 1 << 20, 100),
            (10, 10, 10),
        ];
        (0..3)
            .flat_map(|round| {
                sizes
                    .iter()
                    .enumerate()
                    .map(move |(i, &(a, b, n))| message((round * sizes.len() + i) as u64, a, b, n))
            })
            .collect()
    }

    #[tokio::test]
    async fn mixed_messages_arrive_intact_and_in_order() {
        let (mut a, mut b) = pair(crate::codec::DEFAULT_MAX_FRAME);
        let sent = mixed();
        let to_send = sent.clone();
        let writer = tokio::spawn(async move {
            for m in to_send {
                a.feed(m).await.expect("queues");
            }
            a.flush().await.expect("flushes");
            a
        });
        for expected in &sent {
            let got = b
                .next()
                .await
                .expect("a message")
                .unwrap_or_else(|e| panic!("message {}: {e:?}", expected.id));
            assert_eq!(&got, expected);
        }
        let a = writer.await.expect("writer");
        drop(a);
        assert!(b.next().await.is_none(), "clean end after the last frame");
    }

    /// Encodes `messages` the way a transport writes them, as raw bytes.
    async fn wire_bytes(messages: Vec<Message>) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let (a, mut raw) = UnixStream::pair().expect("socket pair");
        let mut a: Transport = WireTransport::new(
            local(a),
            BytesMut::new(),
            WireCodec::new(FrameLimit::default()),
        );
        let writer = tokio::spawn(async move {
            for m in messages {
                a.feed(m).await.expect("queues");
            }
            a.close().await.expect("closes");
        });
        let mut wire = Vec::new();
        raw.read_to_end(&mut wire).await.expect("reads");
        writer.await.expect("writer");
        wire
    }

    #[tokio::test]
    async fn messages_arriving_in_odd_pieces_decode_the_same() {
        let sent = mixed();
        let wire = wire_bytes(sent.clone()).await;
        let (b, mut raw) = UnixStream::pair().expect("socket pair");
        let mut b: Transport = WireTransport::new(
            local(b),
            BytesMut::new(),
            WireCodec::new(FrameLimit::default()),
        );
        let feeder = tokio::spawn(async move {
            // Odd piece sizes land frame and field boundaries everywhere; yielding after each
            // piece lets the reader see every partial state.
            let sizes = [1, 7, 4_093, 65_537, 13, 200_003];
            let mut rest = &wire[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*size).min(rest.len()));
                raw.write_all(piece).await.expect("writes");
                rest = tail;
                tokio::task::yield_now().await;
            }
        });
        for expected in &sent {
            let got = b.next().await.expect("a message").expect("decodes");
            assert_eq!(&got, expected);
        }
        feeder.await.expect("feeder");
        assert!(b.next().await.is_none());
    }

    /// A frame (after the prefix) whose body is `body`.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(body);
        wire
    }

    async fn decode_raw(wire: Vec<u8>) -> Result<Message, CodecError> {
        let (b, mut raw) = UnixStream::pair().expect("socket pair");
        let mut b: Transport = WireTransport::new(
            local(b),
            BytesMut::new(),
            WireCodec::new(FrameLimit::default()),
        );
        tokio::spawn(async move {
            let _ = raw.write_all(&wire).await;
            let _ = raw.shutdown().await;
            // Keep the socket open until the reader is done.
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        b.next().await.expect("an item")
    }

    fn body_of(m: &Message) -> Vec<u8> {
        WireFormat::new(FrameLimit::default())
            .unbounded_options()
            .serialize(m)
            .expect("encodes")
    }

    #[tokio::test]
    async fn a_field_claiming_more_than_its_frame_holds_is_malformed() {
        let mut body = body_of(&message(1, BIG_FIELD, 0, 0));
        // Claim a 12 MiB field in a frame that holds 32 KiB.
        let name_end = 8 + 8 + "message 1".len();
        body[name_end..name_end + 8].copy_from_slice(&(12u64 << 20).to_le_bytes());
        let err = decode_raw(frame(&body)).await.expect_err("refused");
        assert!(err.to_string().contains("not a valid message"), "{err}");
        assert!(
            error_text(&err).contains("holds only"),
            "{}",
            error_text(&err)
        );
    }

    fn error_text(err: &CodecError) -> String {
        crate::codec::error_chain(err)
    }

    #[tokio::test]
    async fn trailing_bytes_after_a_large_message_are_malformed() {
        let mut body = body_of(&message(1, BIG_FIELD, 0, 0));
        body.extend_from_slice(b"junk");
        let err = decode_raw(frame(&body)).await.expect_err("refused");
        assert!(
            error_text(&err).contains("left over"),
            "{}",
            error_text(&err)
        );
    }

    #[tokio::test]
    async fn a_large_frame_cut_short_is_an_error_not_a_hang() {
        let body = body_of(&message(1, 1 << 20, 0, 0));
        let mut wire = frame(&body);
        wire.truncate(wire.len() / 2);
        let err = decode_raw(wire).await.expect_err("refused");
        assert!(
            error_text(&err).contains("middle of a frame"),
            "{}",
            error_text(&err)
        );
    }

    #[tokio::test]
    async fn a_large_frame_of_small_fields_falls_back_to_one_whole_decode() {
        // 20,000 short strings: no large field for the probe to find.
        let many: Vec<String> = (0..20_000).map(|i| format!("item {i}")).collect();
        let (a, b) = UnixStream::pair().expect("socket pair");
        let codec = || WireCodec::<Vec<String>, Vec<String>>::new(FrameLimit::default());
        let mut a = WireTransport::new(local(a), BytesMut::new(), codec());
        let mut b = WireTransport::new(local(b), BytesMut::new(), codec());
        let sent = many.clone();
        tokio::spawn(async move { a.send(sent).await.expect("sends") });
        assert_eq!(b.next().await.expect("an item").expect("decodes"), many);
    }

    #[tokio::test]
    async fn a_buffer_partly_written_takes_no_more_frames_so_sent_bytes_are_freed() {
        let (mut a, mut b) = pair(crate::codec::DEFAULT_MAX_FRAME);
        // Small frames, several per buffer, until the socket is full partway through a buffer.
        let mut queued = 0;
        let noop = &mut Context::from_waker(std::task::Waker::noop());
        let partly_written = |a: &Transport| {
            matches!(
                a.queue.front(),
                Some(Outgoing::Encoded { written, buf }) if *written > 0 && *written < buf.len()
            )
        };
        while !partly_written(&a) {
            assert!(
                queued < 10_000,
                "the socket never filled partway through a buffer"
            );
            for _ in 0..4 {
                a.queue(message(queued, 20_000, 0, 0)).expect("queues");
                queued += 1;
            }
            let _ = a.poll_send(noop);
        }
        a.queue(message(queued, 100, 0, 0)).expect("queues");
        queued += 1;
        assert_eq!(
            a.queue.len(),
            2,
            "a new buffer for the frame queued behind the partial one"
        );
        let reader = tokio::spawn(async move {
            for id in 0..queued {
                let got = b.next().await.expect("a message").expect("decodes");
                assert_eq!(got.id, id);
            }
        });
        a.flush().await.expect("flushes");
        reader.await.expect("reader");
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_before_anything_is_sent() {
        let (mut a, mut b) = pair(MIN_MAX_FRAME);
        let err = a
            .send(message(1, BIG_FIELD, 0, 0))
            .await
            .expect_err("too large");
        assert!(matches!(err, CodecError::OutgoingTooLarge { .. }), "{err}");
        a.send(message(2, 10, 10, 10))
            .await
            .expect("a small one still goes");
        assert_eq!(b.next().await.expect("item").expect("decodes").id, 2);
    }

    #[tokio::test]
    async fn corrupted_leading_bytes_of_large_frames_end_in_a_message_or_an_error() {
        // Every byte of the small part of two large frames, set to values that make lengths
        // huge, zero or negative-looking and variants unknown: the reader must finish each one
        // with a message or an error (no panic, no hang), whatever the probe made of it.
        let sent = frame(&body_of(&message(1, BIG_FIELD, BIG_FIELD, 3)));
        let mut wire = sent.clone();
        wire.extend_from_slice(&frame(&body_of(&message(2, 1 << 20, 0, 0))));
        let first_field = LENGTH_PREFIX_LEN + 8 + 8 + "message 1".len() + 8;
        let second_frame = sent.len();
        let positions = (LENGTH_PREFIX_LEN..first_field + 16)
            .chain(first_field + BIG_FIELD..first_field + BIG_FIELD + 40)
            .chain(second_frame..second_frame + 60);
        for position in positions {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut wire = wire.clone();
                wire[position] = value;
                let (b, mut raw) = UnixStream::pair().expect("socket pair");
                let mut b: Transport = WireTransport::new(
                    local(b),
                    BytesMut::new(),
                    WireCodec::new(FrameLimit::default()),
                );
                let writer = tokio::spawn(async move {
                    let _ = raw.write_all(&wire).await;
                    let _ = raw.shutdown().await;
                    raw
                });
                let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while let Some(item) = b.next().await {
                        if item.is_err() {
                            break;
                        }
                    }
                })
                .await;
                assert!(
                    outcome.is_ok(),
                    "byte {position} set to {value:#x}: the reader hung"
                );
                drop(b);
                let _ = writer.await;
            }
        }
    }

    #[tokio::test]
    async fn a_large_request_with_a_huge_deadline_is_refused_before_it_is_decoded() {
        use crate::services::echo::{EchoRequest, EchoResponse};
        use tarpc::{ClientMessage, Request, Response, context};
        let request = ClientMessage::Request(Request {
            context: context::current(),
            id: 1,
            message: EchoRequest::Echo {
                bytes: ByteBuf::from(vec![1u8; 2 * BIG_FIELD]),
            },
        });
        let mut body = WireFormat::new(FrameLimit::default())
            .unbounded_options()
            .serialize(&request)
            .expect("encodes");
        // The deadline's seconds, right after the variant: far beyond what `Instant` can hold.
        body[4..12].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        let (b, raw) = UnixStream::pair().expect("socket pair");
        let mut server =
            WireTransport::<_, ClientMessage<EchoRequest>, Response<EchoResponse>>::new(
                local(b),
                BytesMut::new(),
                WireCodec::for_requests(FrameLimit::default()),
            );
        let mut raw = raw;
        tokio::spawn(async move {
            let _ = raw.write_all(&frame(&body)).await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let err = server
            .next()
            .await
            .expect("an item")
            .expect_err("refused, not decoded (decoding would panic)");
        assert!(
            error_text(&err).contains("beyond the maximum"),
            "{}",
            error_text(&err)
        );
    }

    /// A message whose `Deserialize` rejects an empty byte field: the probe's stand-in.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Strict {
        #[serde(deserialize_with = "non_empty")]
        first: ByteBuf,
        tail: u32,
    }

    fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        let bytes = ByteBuf::deserialize(d)?;
        if bytes.is_empty() {
            return Err(serde::de::Error::custom("empty"));
        }
        Ok(bytes)
    }

    #[tokio::test]
    async fn a_message_that_rejects_the_probes_stand_ins_decodes_without_more_bytes_arriving() {
        let sent = Strict {
            first: ByteBuf::from(vec![9u8; 2 * BIG_FIELD]),
            tail: 7,
        };
        let body = WireFormat::new(FrameLimit::default())
            .unbounded_options()
            .serialize(&sent)
            .expect("encodes");
        let (b, raw) = UnixStream::pair().expect("socket pair");
        // The whole frame is already buffered (as bytes read past a handshake can be), and the
        // socket stays silent.
        let mut b = WireTransport::<_, Strict, ()>::new(
            local(b),
            BytesMut::from(&frame(&body)[..]),
            WireCodec::new(FrameLimit::default()),
        );
        let started = std::time::Instant::now();
        // (A timeout's own wake-up would poll the reader again and hide the bug: time it.)
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), b.next())
            .await
            .expect("decoded")
            .expect("an item")
            .expect("decodes");
        assert_eq!(got, sent);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "decoding waited {:?} for bytes that were already buffered",
            started.elapsed()
        );
        drop(raw);
    }
}
