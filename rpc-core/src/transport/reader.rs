//! [`FrameReader`]: bytes in, messages out, with no socket in sight.
//!
//! The reader is a state machine fed from any byte source. It says what it needs next
//! ([`Need`]): more bytes in its buffer, or more bytes of the large field it is filling; the
//! caller puts them there (a socket reads straight into [`FrameReader::buffer_mut`] or
//! [`FrameReader::field_mut`], a test or fuzzer calls [`FrameReader::feed`]) and asks again. The
//! same bytes decode to the same messages whatever the split.
//!
//! Messages are decoded with a seed ([`MessageSeed`]): `PhantomData<In>` for a type known when
//! compiling, which costs nothing (it is zero-sized, and a typed decode is bincode's seeded decode
//! with it), or a seed that knows a shape read at run time, e.g. from a server's schema. Small
//! frames, probes and the decode of a large frame all read the message as the seed does.
//!
//! Frames under [`BIG_FIELD`] are buffered whole, then decoded. A larger frame usually carries one
//! large byte or string field (an echo payload, a file's contents), and copying that field
//! through a buffer is what made a 1 MiB call cost 2.5 times a raw echo. So its leading bytes are
//! decoded as far as the first large field (a "probe"), the field is then filled in place, in the
//! buffer that becomes the decoded `Vec<u8>`, and the message is decoded once every large field
//! is in.
//!
//! Against hostile peers: a length over the limit is refused when its 4 bytes arrive; a field
//! claiming more than its frame still holds is malformed at once; buffers grow only with bytes
//! that have arrived (those given plus those the caller says are ready, e.g. a socket's
//! `FIONREAD`), never with a length a peer merely claims: a field gets room for what has arrived
//! plus [`field_room`](crate::transport::field_room) (64 KiB, or 2 MiB where huge pages are off), or as much again as it holds;
//! and decoding work per frame is bounded,
//! because after [`MAX_PROBES`] probes the frame is read whole and decoded once.

use std::marker::PhantomData;
use std::os::fd::OwnedFd;

use bytes::{Buf, BytesMut};

use super::field_room::grow_towards;
use crate::lane::{LaneError, PeerRegion, ShmSize};
pub use crate::limits::MAX_PROBES;
use crate::wire::lane_frame::{LaneFrame, split_lane_frame};
use crate::wire::large_field::{self, Probe};
use crate::wire::{
    BIG_FIELD, BodyCheck, CodecError, FrameLimit, LENGTH_PREFIX_LEN, MessageSeed, READ_AHEAD,
    WireCodec, WireFormat, frame_len, split_frame,
};

/// Leading body bytes the body check needs (a request's variant and deadline).
const CHECKED_PREFIX: usize = 64;

/// Read buffer space kept free between frames: one read takes in many small frames at once.
const MIN_READ_SPACE: usize = 8 * 1024;

/// Where the bytes a [`FrameReader`] waits for go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Into [`FrameReader::buffer_mut`], which has been given room for them.
    Buffer,
    /// Into the large field of [`FrameReader::field_mut`], at most as many as it misses.
    Field,
}

/// Decodes a stream of frames into `In` messages, each read as the seed `D` reads it
/// ([`MessageSeed`]): `PhantomData<In>`, zero-sized, for a type known when compiling (the
/// default), or a seed carrying a schema for one known only at run time.
#[derive(Debug)]
pub struct FrameReader<In, D = PhantomData<In>> {
    limit: FrameLimit,
    format: WireFormat,
    check: Option<BodyCheck>,
    buf: BytesMut,
    large: Option<LargeFrame>,
    /// The body length of the frame the last message decoded came in.
    last_len: usize,
    /// The shared-memory lane's incoming side, when the handshake agreed on one.
    lane: Option<LaneIn>,
    seed: D,
    _in: PhantomData<fn() -> In>,
}

/// The incoming side of the shared-memory lane: the peer's region and the bookkeeping of its
/// slots.
#[derive(Debug)]
struct LaneIn {
    size: ShmSize,
    /// The peer's region, once its first lane frame has come.
    peer: Option<PeerRegion>,
    /// The descriptor the peer sent for its region, until its first lane frame.
    offered: Option<OwnedFd>,
    /// Position up to which the peer's slots were copied, not yet reported back.
    to_release: Option<u64>,
    /// The peer's latest report of this side's slots copied, not yet acted on.
    released: Option<u64>,
    /// The furthest report of this side's slots copied so far: reports only go forward.
    released_through: u64,
}

impl LaneIn {
    /// Copies out the fields of a lane frame, adopting the peer's region first if need be.
    fn copy_out(&mut self, slots: &[(u64, u64)]) -> Result<Vec<Vec<u8>>, LaneError> {
        let peer = match &mut self.peer {
            Some(peer) => peer,
            None => {
                let fd = self.offered.take().ok_or_else(|| {
                    LaneError::Protocol(
                        "a shared-memory frame came before the region's descriptor".to_owned(),
                    )
                })?;
                self.peer.insert(PeerRegion::adopt(fd, self.size)?)
            }
        };
        let fields = slots
            .iter()
            .map(|&(pos, len)| peer.copy_out(pos, len))
            .collect::<Result<Vec<_>, _>>()?;
        self.to_release = Some(peer.copied_through());
        Ok(fields)
    }
}

/// Progress through a frame of at least [`BIG_FIELD`] bytes.
#[derive(Debug)]
struct LargeFrame {
    /// The body length.
    len: usize,
    /// Body bytes taken so far that are not inside a large field, in order.
    smalls: BytesMut,
    /// Large fields read so far, in order.
    fields: Vec<Vec<u8>>,
    /// The large field being filled, and its length.
    filling: Option<(Vec<u8>, usize)>,
    /// Body bytes taken so far: `smalls`, `fields` and `filling` together.
    taken: usize,
    probes: usize,
    /// Whether the body check has passed on the frame's leading bytes.
    checked: bool,
    /// Given up probing: the rest of the frame is read into the buffer and decoded once.
    whole: bool,
}

/// What one step through a large frame came to.
enum Step {
    /// Waiting for bytes.
    Need(Need),
    /// Go on at once: the bytes needed may be buffered already.
    Again,
    /// Every byte of the frame is taken.
    Complete,
}

impl<In> FrameReader<In> {
    /// A reader with `codec`'s limit and check. `read_ahead` holds bytes already received (what
    /// a handshake read past its own frame); pass an empty buffer if there are none.
    pub fn new<Out>(codec: &WireCodec<In, Out>, read_ahead: BytesMut) -> Self {
        FrameReader::with_seed(codec, read_ahead, PhantomData)
    }
}

impl<In, D> FrameReader<In, D> {
    /// [`FrameReader::new`] for messages read as `seed` reads them (cloned for each message, and
    /// for each probe of a large frame).
    pub fn with_seed<Out>(codec: &WireCodec<In, Out>, read_ahead: BytesMut, seed: D) -> Self {
        FrameReader {
            limit: codec.limit(),
            format: codec.format(),
            check: codec.check(),
            buf: read_ahead,
            large: None,
            last_len: 0,
            lane: None,
            seed,
            _in: PhantomData,
        }
    }

    /// This reader taking lane frames (see `wire/lane_frame.rs`) whose fields are in a peer
    /// region of `size` bytes; [`ShmSize::OFF`] leaves the lane off, and a zero-length frame
    /// malformed.
    pub fn with_lane(mut self, size: ShmSize) -> Self {
        self.lane = (!size.is_off()).then_some(LaneIn {
            size,
            peer: None,
            offered: None,
            to_release: None,
            released: None,
            released_through: 0,
        });
        self
    }

    /// Hands the reader a descriptor the peer sent: its region, adopted with its first lane
    /// frame. Any other descriptor (a second one, or one without a lane) breaks the rules; it is
    /// closed.
    pub fn offer_descriptor(&mut self, fd: OwnedFd) -> Result<(), CodecError> {
        match &mut self.lane {
            Some(lane) if lane.peer.is_none() && lane.offered.is_none() => {
                lane.offered = Some(fd);
                Ok(())
            }
            _ => {
                Err(LaneError::Protocol("the peer sent a descriptor it may not".to_owned()).into())
            }
        }
    }

    /// The position up to which the peer's slots have been copied, if that has moved since the
    /// last call: to report back to the peer.
    pub fn take_release(&mut self) -> Option<u64> {
        self.lane.as_mut()?.to_release.take()
    }

    /// The peer's latest report of this side's slots it has copied, if one came since the last
    /// call.
    pub fn take_peer_released(&mut self) -> Option<u64> {
        self.lane.as_mut()?.released.take()
    }

    /// This reader decoding with `seed` from now on, e.g. a typed reader given the seed a
    /// caller's messages are read with. Bytes already taken stay taken; `seed` must read the
    /// messages the same way (a large frame part-read was probed with the old seed).
    pub fn reseed<E: MessageSeed<In>>(self, seed: E) -> FrameReader<In, E> {
        FrameReader {
            limit: self.limit,
            format: self.format,
            check: self.check,
            buf: self.buf,
            large: self.large,
            last_len: self.last_len,
            lane: self.lane,
            seed,
            _in: PhantomData,
        }
    }

    /// The body length (without its 4-byte prefix) of the frame the last message decoded came
    /// in: what a stream's credit counts.
    pub fn last_frame_len(&self) -> usize {
        self.last_len
    }

    /// Whether part of a frame has arrived and the rest has not: what a read timeout guards.
    pub fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty() || self.large.is_some()
    }

    /// Where bytes go after [`Need::Buffer`]: append them (it has room reserved for them).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Where bytes go after [`Need::Field`]: the field being filled, and how many bytes it
    /// still misses (append at most that many). `None` when no field is being filled.
    pub fn field_mut(&mut self) -> Option<(&mut Vec<u8>, usize)> {
        let (field, want) = self.large.as_mut()?.filling.as_mut()?;
        let missing = *want - field.len();
        Some((field, missing))
    }

    /// Hands `bytes` to the reader, as a socket read would: into the room of the field being
    /// filled (at most what it misses, and no more than its room: the reader, not the caller,
    /// decides when a field grows) or else into the buffer. Returns how many were taken, 0 when
    /// the field's room is used up; call [`FrameReader::decode`] and feed the rest.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if let Some((field, missing)) = self.field_mut() {
            if missing > 0 {
                let room = field.capacity() - field.len();
                let n = missing.min(room).min(bytes.len());
                field.extend_from_slice(&bytes[..n]);
                return n;
            }
        }
        self.buf.extend_from_slice(bytes);
        bytes.len()
    }

    /// Memory the reader holds for the frame in progress (buffer and field capacities): what a
    /// peer that stalls mid-frame costs.
    pub fn held_bytes(&self) -> usize {
        let large = self.large.as_ref().map_or(0, |large| {
            large.smalls.capacity()
                + large.fields.iter().map(Vec::capacity).sum::<usize>()
                + large
                    .filling
                    .as_ref()
                    .map_or(0, |(field, _)| field.capacity())
        });
        self.buf.capacity() + large
    }
}

impl<In, D: MessageSeed<In>> FrameReader<In, D> {
    /// The next message if all its bytes are here, or where the bytes it waits for go. An error
    /// means the stream cannot be resynchronised: close it.
    ///
    /// `ready` tells how many bytes beyond those given are ready to be read (a socket's
    /// `FIONREAD`; 0 if unknown). It is asked only when a large frame needs room (a field that is
    /// full, or the rest of a frame read whole), and room is made for those bytes, never for what
    /// a frame merely claims.
    pub fn decode(
        &mut self,
        ready: &mut impl FnMut() -> usize,
    ) -> Result<Result<In, Need>, CodecError> {
        loop {
            let Some(large) = self.large.as_mut() else {
                let Some(len) = frame_len(&self.buf) else {
                    self.buf.reserve(MIN_READ_SPACE);
                    return Ok(Err(Need::Buffer));
                };
                if len == 0 && self.lane.is_some() {
                    match self.decode_lane_frame()? {
                        Some(Some(item)) => return Ok(Ok(item)),
                        Some(None) => continue,
                        None => return Ok(Err(Need::Buffer)),
                    }
                }
                if len < BIG_FIELD || len > self.limit.bytes() {
                    // Small frames (and refusals of oversized ones) are buffered whole.
                    return match split_frame(&mut self.buf, self.limit)? {
                        Some(body) => {
                            self.last_len = body.len();
                            self.decode_body(&body).map(Ok)
                        }
                        None => Ok(Err(Need::Buffer)),
                    };
                }
                self.buf.advance(LENGTH_PREFIX_LEN);
                self.large = Some(LargeFrame::new(len));
                // The frame's leading bytes are usually here already: probe them now.
                continue;
            };
            match large.step(&mut self.buf, self.format, self.check, &self.seed, ready)? {
                Step::Need(need) => return Ok(Err(need)),
                Step::Again => continue,
                Step::Complete => {
                    let large = self
                        .large
                        .take()
                        .ok_or_else(|| CodecError::malformed("no frame in progress"))?;
                    self.last_len = large.len;
                    return large_field::decode_with_fields(
                        self.format,
                        self.seed.clone(),
                        &large.smalls,
                        large.fields,
                    )
                    .map(Ok);
                }
            }
        }
    }

    /// Takes a lane frame off the buffer: `Some(Some(message))` for a message whose fields were
    /// in the peer's region, `Some(None)` for a report of slots released (noted), `None` until
    /// the whole frame is here.
    fn decode_lane_frame(&mut self) -> Result<Option<Option<In>>, CodecError> {
        let Some(lane) = self.lane.as_mut() else {
            return Ok(None);
        };
        let frame = match split_lane_frame(&mut self.buf, self.limit)? {
            None => return Ok(None),
            Some(frame) => frame,
        };
        let message_len = frame.message_len();
        match frame {
            LaneFrame::Released(through) => {
                // Checked here as well as by the writer, which sees only the last of several
                // reports read together.
                if through < lane.released_through {
                    return Err(LaneError::Protocol(format!(
                        "the peer gave back slots up to {through} after giving back up to {}",
                        lane.released_through
                    ))
                    .into());
                }
                lane.released_through = through;
                lane.released = Some(through);
                Ok(Some(None))
            }
            LaneFrame::Fields { slots, smalls } => {
                // The request check (its deadline) first: a refused request costs no copies.
                if let Some(check) = self.check {
                    check(&smalls)?;
                }
                let fields = lane.copy_out(&slots)?;
                self.last_len = message_len;
                let item = large_field::decode_with_fields(
                    self.format,
                    self.seed.clone(),
                    &smalls,
                    fields,
                )?;
                Ok(Some(Some(item)))
            }
        }
    }

    /// Checks and decodes one complete small frame body.
    fn decode_body(&self, body: &[u8]) -> Result<In, CodecError> {
        if let Some(check) = self.check {
            check(body)?;
        }
        self.format.decode_seed(body, self.seed.clone())
    }
}

impl LargeFrame {
    fn new(len: usize) -> Self {
        LargeFrame {
            len,
            smalls: BytesMut::new(),
            fields: Vec::new(),
            filling: None,
            taken: 0,
            probes: 0,
            checked: false,
            whole: false,
        }
    }

    /// Takes what it can from `buf` and says what comes next.
    fn step<In>(
        &mut self,
        buf: &mut BytesMut,
        format: WireFormat,
        check: Option<BodyCheck>,
        seed: &impl MessageSeed<In>,
        ready: &mut impl FnMut() -> usize,
    ) -> Result<Step, CodecError> {
        if let Some((field, want)) = self.filling.as_mut() {
            let from_buffer = (*want - field.len()).min(buf.len());
            field.extend_from_slice(&buf[..from_buffer]);
            buf.advance(from_buffer);
            if field.len() < *want {
                grow_towards(field, *want, ready);
                return Ok(Step::Need(Need::Field));
            }
            if let Some((field, _)) = self.filling.take() {
                self.fields.push(field);
            }
        }

        let remaining = self.len - self.taken;
        if self.whole {
            if buf.len() < remaining {
                let missing = remaining - buf.len();
                let room = missing.min(READ_AHEAD.max(buf.len()));
                buf.reserve(room.max(ready().min(missing)));
                return Ok(Step::Need(Need::Buffer));
            }
            let rest = buf.split_to(remaining);
            self.smalls.extend_from_slice(&rest);
            self.taken += remaining;
            return Ok(Step::Complete);
        }

        let available = buf.len().min(remaining);
        if !self.checked {
            // The body check (a request's deadline) must pass before any decoding: tarpc turns a
            // deadline into `Instant::now() + deadline` as it decodes, which panics for a huge one.
            if let Some(check) = check {
                let needed = CHECKED_PREFIX.min(remaining);
                if available < needed {
                    buf.reserve(needed);
                    return Ok(Step::Need(Need::Buffer));
                }
                check(&buf[..available])?;
            }
            self.checked = true;
        }
        let probe = large_field::probe(
            format,
            seed.clone(),
            &self.smalls,
            &buf[..available],
            self.fields.len(),
        );
        self.probes += 1;
        match probe {
            Probe::Field { consumed, len } => {
                if len > remaining - consumed {
                    return Err(CodecError::malformed(format!(
                        "a field claims {len} bytes but its frame holds only {} more",
                        remaining - consumed
                    )));
                }
                let head = buf.split_to(consumed);
                self.smalls.extend_from_slice(&head);
                self.taken += consumed + len;
                let mut field = Vec::new();
                let buffered = buf.len();
                grow_towards(&mut field, len, &mut || buffered + ready());
                self.filling = Some((field, len));
                if self.probes >= MAX_PROBES {
                    self.whole = true;
                }
                // Part of the field may be in the buffer already: take that first.
                Ok(Step::Again)
            }
            Probe::OutOfData => {
                if available == remaining || self.probes >= MAX_PROBES || available >= READ_AHEAD {
                    // Read the rest whole and decode once (when every byte is here already, that
                    // decode reports exactly what is wrong with the message). Go on at once: the
                    // bytes may all be buffered, and the socket may have nothing more to wake us.
                    self.whole = true;
                    return Ok(Step::Again);
                }
                buf.reserve((remaining - available).min(READ_AHEAD));
                Ok(Step::Need(Need::Buffer))
            }
            Probe::Complete { consumed } => {
                if consumed < remaining {
                    return Err(CodecError::malformed(format!(
                        "{} bytes left over after the message",
                        remaining - consumed
                    )));
                }
                let head = buf.split_to(consumed);
                self.smalls.extend_from_slice(&head);
                self.taken += consumed;
                Ok(Step::Complete)
            }
            Probe::Invalid(err) if self.fields.is_empty() => Err(err),
            Probe::Invalid(_) => {
                // The probe saw empty stand-ins for the fields already read; let the real
                // decode, with the real fields, have the last word (at once: the rest may be
                // buffered already).
                self.whole = true;
                Ok(Step::Again)
            }
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
