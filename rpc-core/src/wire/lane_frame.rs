//! The shared-memory lane's frames: how a message whose large fields wait in a region travels
//! on the socket, and how a receiver gives the region's slots back.
//!
//! Both are **escape frames**: a length prefix of `0` (no message has an empty body, so such a
//! frame means nothing else), then a kind byte. They are sent only on a connection whose
//! handshake agreed on the lane; anywhere else a zero length is malformed, as before.
//!
//! ```text
//! fields:   00 00 00 00 | 01 | count: u8 | smalls_len: u32 BE | count x (pos: u64 LE, len: u64 LE) | smalls
//! released: 00 00 00 00 | 02 | through: u64 LE
//! ```
//!
//! - **fields** carries one message. `smalls` is its bincode body with the bytes of its first
//!   `count` large fields (byte or string fields of at least [`BIG_FIELD`] bytes, in order) left
//!   out; their lengths stay in `smalls`, as bincode writes them. The left-out bytes are in the
//!   sender's region, in slots at positions `pos` (a byte count that only grows; the place in
//!   the region is `pos` modulo its size) of `len` bytes each. At most [`LANE_MAX_FIELDS`]
//!   fields and [`LANE_MAX_SMALLS`] small bytes; every `len` at least [`BIG_FIELD`]; the whole
//!   message (small bytes and fields) at most the frame limit.
//! - **released** tells the sender that every slot up to position `through` has been copied
//!   out and may be reused.
//!
//! The region itself travels once, as an `SCM_RIGHTS` descriptor attached to the first byte of
//! the sender's first fields frame.

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;

use crate::lane::{LANE_AHEAD, LANE_MAX_FIELDS, LANE_MAX_SMALLS, OwnRegion};
use crate::wire::{BIG_FIELD, CodecError, FrameLimit, LENGTH_PREFIX_LEN, WireFormat};

/// The kind byte of a fields frame.
const KIND_FIELDS: u8 = 1;
/// The kind byte of a released frame.
const KIND_RELEASED: u8 = 2;
/// Bytes of a fields frame before its slots: prefix, kind, count, small bytes' length.
const FIELDS_HEADER: usize = LENGTH_PREFIX_LEN + 1 + 1 + 4;
/// Bytes of one slot: position and length.
const SLOT_LEN: usize = 16;
/// Bytes of a released frame.
pub(crate) const RELEASED_LEN: usize = LENGTH_PREFIX_LEN + 1 + 8;

/// An escape frame read from the socket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LaneFrame {
    /// A message whose large fields are in the peer's region.
    Fields {
        /// Each field's slot: position and length, in the order the fields come.
        slots: Vec<(u64, u64)>,
        /// The message's body without those fields' bytes.
        smalls: BytesMut,
    },
    /// The peer has copied every slot up to this position.
    Released(u64),
}

impl LaneFrame {
    /// The length of the message a fields frame carries (what a frame of it on the socket would
    /// hold); 0 for a released frame.
    pub(crate) fn message_len(&self) -> usize {
        match self {
            LaneFrame::Fields { slots, smalls } => {
                smalls.len() + slots.iter().map(|&(_, len)| len as usize).sum::<usize>()
            }
            LaneFrame::Released(_) => 0,
        }
    }
}

/// Takes one escape frame off the front of `src`, which starts with a zero length prefix:
/// `Ok(None)` (with room reserved for the rest) until all of it is here.
pub(crate) fn split_lane_frame(
    src: &mut BytesMut,
    limit: FrameLimit,
) -> Result<Option<LaneFrame>, CodecError> {
    debug_assert!(src.len() >= LENGTH_PREFIX_LEN && src[..LENGTH_PREFIX_LEN] == [0; 4]);
    let Some(&kind) = src.get(LENGTH_PREFIX_LEN) else {
        return Ok(None);
    };
    match kind {
        KIND_RELEASED => {
            if src.len() < RELEASED_LEN {
                src.reserve(RELEASED_LEN);
                return Ok(None);
            }
            src.advance(LENGTH_PREFIX_LEN + 1);
            Ok(Some(LaneFrame::Released(src.get_u64_le())))
        }
        KIND_FIELDS => {
            if src.len() < FIELDS_HEADER {
                src.reserve(FIELDS_HEADER);
                return Ok(None);
            }
            let count = src[LENGTH_PREFIX_LEN + 1] as usize;
            let mut len_bytes = [0; 4];
            len_bytes.copy_from_slice(&src[FIELDS_HEADER - 4..FIELDS_HEADER]);
            let smalls_len = u32::from_be_bytes(len_bytes) as usize;
            if count == 0 || count > LANE_MAX_FIELDS {
                return Err(CodecError::malformed(format!(
                    "a shared-memory frame names {count} fields (1 to {LANE_MAX_FIELDS} allowed)"
                )));
            }
            if smalls_len > LANE_MAX_SMALLS {
                return Err(CodecError::malformed(format!(
                    "a shared-memory frame claims {smalls_len} small bytes (at most {LANE_MAX_SMALLS})"
                )));
            }
            let total = FIELDS_HEADER + count * SLOT_LEN + smalls_len;
            if src.len() < total {
                src.reserve(total - src.len());
                return Ok(None);
            }
            src.advance(FIELDS_HEADER);
            let mut slots = Vec::with_capacity(count);
            let mut message_len = smalls_len as u64;
            for _ in 0..count {
                let (pos, len) = (src.get_u64_le(), src.get_u64_le());
                if len < BIG_FIELD as u64 {
                    return Err(CodecError::malformed(format!(
                        "a shared-memory field of {len} bytes (fields under {BIG_FIELD} travel in the frame)"
                    )));
                }
                message_len = message_len.saturating_add(len);
                slots.push((pos, len));
            }
            if message_len > limit.bytes() as u64 {
                return Err(CodecError::IncomingTooLarge {
                    len: usize::try_from(message_len).unwrap_or(usize::MAX),
                    limit: limit.bytes(),
                });
            }
            let smalls = src.split_to(smalls_len);
            Ok(Some(LaneFrame::Fields { slots, smalls }))
        }
        other => Err(CodecError::malformed(format!(
            "an escape frame of unknown kind {other}"
        ))),
    }
}

/// Appends a released frame for every slot up to `through` to `dst`.
pub(crate) fn encode_released(through: u64, dst: &mut BytesMut) {
    dst.put_u32(0);
    dst.put_u8(KIND_RELEASED);
    dst.put_u64_le(through);
}

/// Where [`encode_fields`] put a message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Through the region: a fields frame was appended, for a message of this length (what a
    /// frame of it would hold).
    Placed(usize),
    /// Not now: the region is short of room, or the message would take the bytes out past
    /// [`LANE_AHEAD`], while slots of earlier messages are out; it may go once the peer gives
    /// them back.
    Full,
    /// Not through the lane at all: no large field, too many, too many small bytes, or more
    /// than the whole region holds.
    Elsewhere,
}

/// Encodes `item` as a fields frame, appended to `dst`, with its large fields written into
/// slots of `region`; with `dst` and the region as they were when it cannot go that way now
/// ([`Placement`]). Fails, with nothing written, when the message is over the frame `limit` or
/// cannot be encoded.
pub(crate) fn encode_fields<T: Serialize>(
    format: WireFormat,
    limit: FrameLimit,
    region: &mut OwnRegion,
    item: &T,
    dst: &mut BytesMut,
) -> Result<Placement, CodecError> {
    let mark = region.mark();
    let others_out = region.in_use() > 0;
    let mut writer = SlotWriter {
        region,
        others_out,
        smalls: BytesMut::new(),
        slots: Vec::new(),
        message_len: 0,
        no_room: false,
        short: None,
    };
    let result = format.write_body(&mut writer, item);
    let SlotWriter {
        region,
        others_out: _,
        smalls,
        slots,
        message_len,
        no_room,
        short,
    } = writer;
    let outcome = match result {
        // Short of room now (or past `LANE_AHEAD`): worth waiting for only if slots of earlier
        // messages are out and the fields fit the region once they are back.
        Ok(()) if short.is_some_and(|needed| others_out && needed <= region.size()) => {
            Ok(Placement::Full)
        }
        Ok(()) if short.is_some() => Ok(Placement::Elsewhere),
        Ok(()) if slots.is_empty() => Ok(Placement::Elsewhere),
        Ok(()) if message_len > limit.bytes() => Err(CodecError::OutgoingTooLarge {
            limit: limit.bytes(),
        }),
        Ok(()) => Ok(Placement::Placed(message_len)),
        Err(CodecError::Io(_)) if no_room => Ok(Placement::Elsewhere),
        Err(err) => Err(err),
    };
    if !matches!(outcome, Ok(Placement::Placed(_))) {
        region.rollback(mark);
        return outcome;
    }
    dst.reserve(FIELDS_HEADER + slots.len() * SLOT_LEN + smalls.len());
    dst.put_u32(0);
    dst.put_u8(KIND_FIELDS);
    dst.put_u8(slots.len() as u8);
    dst.put_u32(smalls.len() as u32);
    for (pos, len) in slots {
        dst.put_u64_le(pos);
        dst.put_u64_le(len);
    }
    dst.extend_from_slice(&smalls);
    outcome
}

/// The `io::Write` a lane message is serialized into: large pieces go into slots of the region,
/// the rest into `smalls`. Fails with `no_room` set when a limit of the lane is reached. When
/// the region's free room is too short for a field, or the field would take the bytes out past
/// [`LANE_AHEAD`] while slots of earlier messages are out, it writes nothing more but counts on,
/// in `short`, the bytes the message's fields need from an empty region.
struct SlotWriter<'a> {
    region: &'a mut OwnRegion,
    /// Whether slots of earlier messages were out when this one started.
    others_out: bool,
    smalls: BytesMut,
    slots: Vec<(u64, u64)>,
    message_len: usize,
    no_room: bool,
    short: Option<u64>,
}

impl SlotWriter<'_> {
    fn no_room(&mut self) -> std::io::Error {
        self.no_room = true;
        std::io::ErrorKind::WriteZero.into()
    }
}

impl std::io::Write for SlotWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.no_room {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        if buf.len() >= BIG_FIELD {
            if self.slots.len() == LANE_MAX_FIELDS {
                return Err(self.no_room());
            }
            let len = buf.len() as u64;
            let ahead = self.others_out && self.region.out() + len > LANE_AHEAD;
            let pos = match self.short {
                None if !ahead => self.region.alloc(buf.len()),
                _ => None,
            };
            if let Some(pos) = pos {
                self.region.write(pos, buf);
                self.slots.push((pos, len));
            } else {
                // Short of room: written nowhere from here on, counted as a slot all the same.
                let packed = self.short.unwrap_or_else(|| {
                    let slots = self.slots.iter();
                    slots.fold(0, |packed, &(_, len)| OwnRegion::packed_end(packed, len))
                });
                self.short = Some(OwnRegion::packed_end(packed, len));
                self.slots.push((0, len));
            }
        } else {
            if self.smalls.len() + buf.len() > LANE_MAX_SMALLS {
                return Err(self.no_room());
            }
            self.smalls.extend_from_slice(buf);
        }
        self.message_len += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::{PeerRegion, ShmSize};
    use crate::wire::large_field::decode_with_fields;

    const SIZE: u64 = 256 * 1024;

    fn regions() -> (OwnRegion, PeerRegion) {
        let size = ShmSize::new(SIZE).expect("in range");
        let own = OwnRegion::new(size).expect("a memfd");
        let fd = own.fd().try_clone_to_owned().expect("dup");
        (own, PeerRegion::adopt(fd, size).expect("adopted"))
    }

    type Message = (u32, Vec<u8>, String, serde_bytes::ByteBuf);

    fn message() -> Message {
        (
            7,
            vec![1u8; 10],
            "s".repeat(BIG_FIELD),
            serde_bytes::ByteBuf::from(vec![9u8; 100_000]),
        )
    }

    #[test]
    fn a_message_goes_through_the_region_and_decodes_from_the_copies() {
        let (mut own, mut peer) = regions();
        let format = WireFormat::new(FrameLimit::default());
        let mut dst = BytesMut::new();
        let len = encode_fields(
            format,
            FrameLimit::default(),
            &mut own,
            &message(),
            &mut dst,
        )
        .expect("encodes");
        assert_eq!(
            len,
            Placement::Placed(format.body_len(&message()).expect("sized"))
        );
        assert!(
            dst.len() < 200,
            "only the small bytes travel: {}",
            dst.len()
        );

        dst.extend_from_slice(&{
            let mut released = BytesMut::new();
            encode_released(42, &mut released);
            released
        });
        let Some(LaneFrame::Fields { slots, smalls }) =
            split_lane_frame(&mut dst, FrameLimit::default()).expect("valid")
        else {
            panic!("a fields frame");
        };
        let fields = slots
            .iter()
            .map(|&(pos, len)| peer.copy_out(pos, len).expect("in bounds"))
            .collect();
        let decoded: Message =
            decode_with_fields(format, std::marker::PhantomData, &smalls, fields).expect("decodes");
        assert_eq!(decoded, message());
        assert_eq!(
            split_lane_frame(&mut dst, FrameLimit::default()).expect("valid"),
            Some(LaneFrame::Released(42))
        );
        assert!(dst.is_empty());
    }

    #[test]
    fn without_room_or_over_the_limit_nothing_is_written_or_taken() {
        let (mut own, _peer) = regions();
        let format = WireFormat::new(FrameLimit::default());
        let mut dst = BytesMut::new();
        let big = serde_bytes::ByteBuf::from(vec![0u8; SIZE as usize + 1]);
        assert_eq!(
            encode_fields(format, FrameLimit::default(), &mut own, &big, &mut dst).expect("ok"),
            Placement::Elsewhere
        );
        // Two fields where only the first fits an empty region: the first's slot is given
        // back, and waiting would not help.
        let two = (
            serde_bytes::ByteBuf::from(vec![0u8; 200_000]),
            serde_bytes::ByteBuf::from(vec![0u8; 200_000]),
        );
        assert_eq!(
            encode_fields(format, FrameLimit::default(), &mut own, &two, &mut dst).expect("ok"),
            Placement::Elsewhere
        );
        assert_eq!(own.in_use(), 0);
        let limit = FrameLimit::new(64 * 1024).expect("in range");
        assert!(matches!(
            encode_fields(format, limit, &mut own, &message(), &mut dst),
            Err(CodecError::OutgoingTooLarge { .. })
        ));
        assert_eq!(own.in_use(), 0);
        assert!(dst.is_empty());
    }

    #[test]
    fn a_message_that_fits_once_earlier_slots_are_back_is_told_the_region_is_full() {
        let (mut own, _peer) = regions();
        let format = WireFormat::new(FrameLimit::default());
        let mut dst = BytesMut::new();
        let one = serde_bytes::ByteBuf::from(vec![0u8; 200_000]);
        let encode = |own: &mut OwnRegion, dst: &mut BytesMut| {
            encode_fields(format, FrameLimit::default(), own, &one, dst).expect("encodes")
        };
        assert!(matches!(encode(&mut own, &mut dst), Placement::Placed(_)));
        let sent = dst.len();
        let out = own.in_use();
        assert_eq!(encode(&mut own, &mut dst), Placement::Full);
        assert_eq!((dst.len(), own.in_use()), (sent, out), "nothing taken");
        // Fields that would not fit the region even with every slot back are not worth waiting
        // for: one larger than the region, or two that together are.
        let larger = serde_bytes::ByteBuf::from(vec![0u8; SIZE as usize + 1]);
        let together = (one.clone(), one.clone());
        let format = WireFormat::new(FrameLimit::default());
        for placement in [
            encode_fields(format, FrameLimit::default(), &mut own, &larger, &mut dst),
            encode_fields(format, FrameLimit::default(), &mut own, &together, &mut dst),
        ] {
            assert_eq!(placement.expect("encodes"), Placement::Elsewhere);
        }
        assert_eq!((dst.len(), own.in_use()), (sent, out), "nothing taken");
        own.release(own.mark()).expect("every slot back");
        assert!(matches!(encode(&mut own, &mut dst), Placement::Placed(_)));
    }

    #[test]
    fn bad_escape_frames_are_refused_with_a_reason() {
        let refused = |bytes: &[u8]| {
            let mut src = BytesMut::from(bytes);
            match split_lane_frame(&mut src, FrameLimit::MIN) {
                Err(err) => err.to_string() + &format!(" {err:?}"),
                Ok(frame) => panic!("accepted {frame:?}"),
            }
        };
        assert!(refused(&[0, 0, 0, 0, 9]).contains("unknown kind 9"));
        assert!(refused(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]).contains("0 fields"));
        assert!(refused(&[0, 0, 0, 0, 1, 65, 0, 0, 0, 0]).contains("65 fields"));
        assert!(refused(&[0, 0, 0, 0, 1, 1, 0, 1, 0, 0]).contains("small bytes"));
        let mut small_field = vec![0, 0, 0, 0, 1, 1, 0, 0, 0, 0];
        small_field.extend_from_slice(&0u64.to_le_bytes());
        small_field.extend_from_slice(&100u64.to_le_bytes());
        assert!(refused(&small_field).contains("100 bytes"));
        let mut too_large = vec![0, 0, 0, 0, 1, 1, 0, 0, 0, 0];
        too_large.extend_from_slice(&0u64.to_le_bytes());
        too_large.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(refused(&too_large).contains("IncomingTooLarge"));
        // Incomplete: waits, takes nothing.
        let mut partial = BytesMut::from(&[0u8, 0, 0, 0, 2, 1][..]);
        assert_eq!(
            split_lane_frame(&mut partial, FrameLimit::MIN).expect("ok"),
            None
        );
        assert_eq!(partial.len(), 6);
    }
}
