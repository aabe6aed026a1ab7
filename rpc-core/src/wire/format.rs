//! [`WireFormat`]: how a value becomes a frame body and back. The one place that names bincode.
//!
//! bincode 1.3, fixed-width little-endian integers, trailing bytes rejected. Bodies are decoded
//! only from a complete frame held in memory, or (for large frames) from a reader over the
//! frame's bytes that never claims more than the frame holds: bincode reading an `io::Read`
//! would allocate whatever length a peer claims.

use std::io;
use std::marker::PhantomData;

use bincode::Options;
use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::wire::{CodecError, FrameLimit, LENGTH_PREFIX_LEN};

/// What incoming messages are decoded with: a serde [`DeserializeSeed`] for every input lifetime
/// (a body lives in a buffer the reader reuses, so a message cannot borrow from it), cloned once
/// per decode. `PhantomData<M>` is one for every `M: DeserializeOwned`, the typed path, at no
/// cost: it is zero-sized and bincode's own typed decode is its seeded decode with
/// `PhantomData`. A seed holding a schema decodes messages whose type is known only at run time.
pub trait MessageSeed<M>: for<'de> DeserializeSeed<'de, Value = M> + Clone {}

impl<M, D> MessageSeed<M> for D where D: for<'de> DeserializeSeed<'de, Value = M> + Clone {}

/// The serialization format of frame bodies: bincode 1.3 with a size limit.
///
/// Little-endian fixed-width integers and trailing bytes rejected. Values are decoded only from
/// bytes already held in memory and bounded by their frame (a whole frame under 32 KiB; a larger
/// frame's leading bytes up to its first large field, see `large_field.rs`), so a string or byte
/// field cannot claim more than its frame holds (a longer claim fails as "unexpected end"); a
/// sequence claiming 2^60 elements gets at most serde's cautious pre-allocation (1 MiB) before it
/// fails. (bincode's own byte limit, set here too, only bounds encoding: bincode 1.3 ignores it
/// when decoding from a slice.)
#[derive(Debug, Clone, Copy)]
pub struct WireFormat {
    limit: FrameLimit,
}

impl WireFormat {
    /// A format that encodes and decodes at most `limit` bytes per value.
    pub const fn new(limit: FrameLimit) -> Self {
        WireFormat { limit }
    }

    /// The frame limit values are held to.
    pub(crate) fn limit(self) -> FrameLimit {
        self.limit
    }

    pub(crate) fn options(self) -> impl Options + Copy {
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_limit(self.limit.bytes() as u64)
    }

    /// The same format without the size limit, for values whose size has been checked already.
    pub(crate) fn unbounded_options(self) -> impl Options + Copy {
        bincode::DefaultOptions::new().with_fixint_encoding()
    }

    /// Decodes one value, as `seed` reads it, from a custom reader (the large-frame path of
    /// [`crate::transport::FrameReader`]).
    pub(crate) fn decode_from<'de, R, D>(self, reader: R, seed: D) -> bincode::Result<D::Value>
    where
        R: bincode::de::read::BincodeRead<'de>,
        D: DeserializeSeed<'de>,
    {
        self.options().deserialize_from_custom_seed(seed, reader)
    }

    /// Serializes `item` into `writer` without the size limit (its size was checked when it was
    /// queued): the large-message path of [`crate::transport::WireTransport`], which writes the
    /// message to the socket as it is serialized. An I/O error from `writer` comes back as
    /// [`CodecError::Io`].
    pub(crate) fn write_body<W: io::Write, T: Serialize>(
        self,
        writer: W,
        item: &T,
    ) -> Result<(), CodecError> {
        self.unbounded_options()
            .serialize_into(writer, item)
            .map_err(|err| match *err {
                bincode::ErrorKind::Io(err) => CodecError::Io(err),
                _ => CodecError::Encode(err),
            })
    }

    /// Decodes one value from a complete frame body.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, CodecError> {
        self.decode_seed(body, PhantomData)
    }

    /// Decodes one value from a complete frame body as `seed` reads it: for a type known only
    /// at run time. With `PhantomData<T>` it is [`WireFormat::decode`] (bincode's own `decode`
    /// is this with `PhantomData`).
    pub fn decode_seed<'de, D: DeserializeSeed<'de>>(
        self,
        body: &'de [u8],
        seed: D,
    ) -> Result<D::Value, CodecError> {
        self.options()
            .deserialize_seed(seed, body)
            .map_err(CodecError::Malformed)
    }

    /// A copy of `value` made through its encoding under this format's limit: for messages that
    /// are serde types but not `Clone` (tarpc's generated requests), e.g. to send one again.
    pub fn copy<T: Serialize + DeserializeOwned>(self, value: &T) -> Result<T, CodecError> {
        let mut body = BytesMut::new();
        self.encode_body(value, &mut body)?;
        self.decode(&body)
    }

    /// Appends one value's body, without a length prefix, to `dst`.
    pub fn encode_body<T: Serialize>(self, item: &T, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.options()
            .serialize_into(dst.writer(), item)
            .map_err(|err| self.encode_error(err))
    }

    /// The length of `item`'s body, or why it cannot be sent.
    pub fn body_len<T: Serialize>(self, item: &T) -> Result<usize, CodecError> {
        self.options()
            .serialized_size(item)
            .map(|len| len as usize)
            .map_err(|err| self.encode_error(err))
    }

    fn encode_error(self, err: bincode::Error) -> CodecError {
        match *err {
            bincode::ErrorKind::SizeLimit => CodecError::OutgoingTooLarge {
                limit: self.limit.bytes(),
            },
            _ => CodecError::Encode(err),
        }
    }

    /// Appends `item` as a complete frame to `dst` in one pass, if its body is shorter than
    /// `below` bytes: `Ok(false)`, with `dst` unchanged, when it is not. Saves the sizing pass
    /// [`Self::body_len`] makes over the whole value, about a third of encoding a small call.
    pub(crate) fn encode_small_frame<T: Serialize>(
        self,
        item: &T,
        below: usize,
        dst: &mut BytesMut,
    ) -> Result<bool, CodecError> {
        let start = dst.len();
        dst.put_u32(0);
        let body_start = dst.len();
        let mut writer = CappedWriter {
            dst: &mut *dst,
            room: below.min(self.limit.bytes().saturating_add(1)),
            start,
            done: false,
        };
        let result = self.unbounded_options().serialize_into(&mut writer, item);
        match result {
            Ok(()) => {
                let len = writer.dst.len() - body_start;
                debug_assert!(
                    len <= self.limit.bytes(),
                    "the writer's room includes the limit"
                );
                writer.dst[start..body_start].copy_from_slice(&(len as u32).to_be_bytes());
                writer.done = true;
                Ok(true)
            }
            Err(err) => {
                drop(writer);
                match *err {
                    bincode::ErrorKind::Io(ref io) if io.kind() == io::ErrorKind::WriteZero => {
                        if below > self.limit.bytes() {
                            // The cap that stopped it was the frame limit.
                            return Err(CodecError::OutgoingTooLarge {
                                limit: self.limit.bytes(),
                            });
                        }
                        Ok(false)
                    }
                    _ => Err(CodecError::Encode(err)),
                }
            }
        }
    }

    /// Appends one value as a complete frame (length prefix and body) to `dst`.
    pub fn encode_frame<T: Serialize>(
        self,
        item: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let len = self.body_len(item)?;
        dst.reserve(LENGTH_PREFIX_LEN + len);
        dst.put_u32(len as u32);
        let start = dst.len();
        if let Err(err) = self.unbounded_options().serialize_into(dst.writer(), item) {
            dst.truncate(start - LENGTH_PREFIX_LEN);
            return Err(CodecError::Encode(err));
        }
        debug_assert_eq!(dst.len() - start, len);
        Ok(())
    }
}

/// Appends to a buffer until `room` runs out, then fails with `WriteZero`, writing nothing of
/// the write that would not fit. Unless marked `done`, it removes what it wrote (and the length
/// prefix before it, from `start`) when dropped, also when a `Serialize` impl panics: a half
/// frame left in a connection's queue would be sent.
struct CappedWriter<'a> {
    dst: &'a mut BytesMut,
    room: usize,
    start: usize,
    done: bool,
}

impl Drop for CappedWriter<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.dst.truncate(self.start);
        }
    }
}

impl io::Write for CappedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.len() >= self.room {
            // Stays full: a serializer that swallowed this error must not write past the cap.
            self.room = 0;
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.room -= buf.len();
        self.dst.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `value`'s bincode encoding with the wire's integer layout and no size limit, or nothing if it
/// cannot be encoded: the bytes [`crate::schema::ServiceSchema::hash`] is taken over (the same
/// bytes `bincode::serialize` gives).
pub(crate) fn canonical_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .serialize(value)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MIN_MAX_FRAME;

    #[test]
    fn the_one_pass_encoder_matches_the_sized_one_and_stops_at_its_cap_or_the_limit() {
        let format = WireFormat::new(FrameLimit::new(MIN_MAX_FRAME).expect("in range"));
        // A Vec<u8> body: an 8-byte length, then the bytes.
        let body = |n: usize| vec![7u8; n - 8];
        let mut sized = BytesMut::new();
        format
            .encode_frame(&body(100), &mut sized)
            .expect("encodes");
        let mut one_pass = BytesMut::from(&b"kept"[..]);
        assert!(
            format
                .encode_small_frame(&body(100), 101, &mut one_pass)
                .expect("encodes")
        );
        assert_eq!(&one_pass[..4], b"kept");
        assert_eq!(one_pass[4..], sized[..]);

        // At the cap: not encoded, and nothing left behind.
        assert!(
            !format
                .encode_small_frame(&body(100), 100, &mut one_pass)
                .expect("no error")
        );
        assert_eq!(one_pass.len(), 4 + sized.len());

        // The frame limit, when it is below the cap: at the limit fits, one more is refused.
        let limit = MIN_MAX_FRAME;
        let mut dst = BytesMut::new();
        assert!(
            format
                .encode_small_frame(&body(limit), usize::MAX, &mut dst)
                .expect("at the limit")
        );
        assert_eq!(dst.len(), LENGTH_PREFIX_LEN + limit);
        dst.clear();
        assert!(matches!(
            format.encode_small_frame(&body(limit + 1), usize::MAX, &mut dst),
            Err(CodecError::OutgoingTooLarge { .. })
        ));
        assert!(dst.is_empty());
    }

    #[test]
    fn a_copy_through_the_encoding_equals_the_value_and_respects_the_limit() {
        let value = vec!["a".to_owned(), "b".repeat(100)];
        let format = WireFormat::new(FrameLimit::MIN);
        assert_eq!(format.copy(&value).expect("copies"), value);
        let big = vec!["x".repeat(MIN_MAX_FRAME)];
        assert!(matches!(
            format.copy(&big),
            Err(CodecError::OutgoingTooLarge { .. })
        ));
    }

    #[test]
    fn a_body_claiming_a_huge_vector_fails_instead_of_allocating_the_claim() {
        let mut src = BytesMut::new();
        src.put_u32(8);
        src.put_u64_le(1 << 60);
        assert!(matches!(
            WireFormat::new(FrameLimit::MIN).decode::<Vec<String>>(&src[4..]),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn an_oversized_outgoing_message_is_refused_and_nothing_is_written() {
        let mut dst = BytesMut::new();
        let big = vec!["x".repeat(MIN_MAX_FRAME)];
        assert!(matches!(
            WireFormat::new(FrameLimit::MIN).encode_frame(&big, &mut dst),
            Err(CodecError::OutgoingTooLarge { .. })
        ));
        assert!(dst.is_empty());
    }
}
