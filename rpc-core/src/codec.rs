//! The wire codec: length-delimited frames carrying bincode bodies, with a frame-size limit.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of body. Every message, the
//! handshake included, is one frame. This module is the one seam through which values become
//! bytes: swapping bincode for another format means changing [`WireFormat`] only.
//!
//! Two properties matter against hostile peers:
//! - a length prefix over the limit is refused as soon as its 4 bytes arrive, before anything is
//!   buffered;
//! - the read buffer grows with the bytes that actually arrived, never with the length a peer
//!   merely claims (tokio-util's `LengthDelimitedCodec` reserves the whole claimed frame up front),
//!   and bodies are decoded from the complete, bounded frame, so a body claiming a 2^60-element
//!   vector fails after at most serde's cautious 1 MiB pre-allocation.

use std::io;
use std::marker::PhantomData;

use bincode::Options;
use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

/// Bytes in a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The default largest frame body: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The smallest frame limit a server or client accepts: 4 KiB, room for any handshake.
pub const MIN_MAX_FRAME: usize = 4 * 1024;

/// How far the read buffer may grow ahead of the bytes received for a frame: at most this much,
/// or as much again as already arrived, whichever is larger (so a large frame costs a handful of
/// reallocations, and a peer that only claims a large frame gets almost nothing). A 1 MiB
/// read-ahead was tried and made no difference rpc-bench could see, so the tighter bound stays.
pub const READ_AHEAD: usize = 64 * 1024;

/// The largest frame body a connection accepts or sends, in bytes: from [`MIN_MAX_FRAME`]
/// (4 KiB, room for any handshake) to `u32::MAX` (what a length prefix can say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimit(usize);

impl FrameLimit {
    /// The smallest limit, [`MIN_MAX_FRAME`]: the handshake's.
    pub const MIN: FrameLimit = FrameLimit(MIN_MAX_FRAME);

    /// A limit of `bytes`, or why it cannot be one: a value outside the range is refused, never
    /// clamped behind the caller's back.
    pub fn new(bytes: usize) -> Result<Self, FrameLimitError> {
        if (MIN_MAX_FRAME..=u32::MAX as usize).contains(&bytes) {
            Ok(FrameLimit(bytes))
        } else {
            Err(FrameLimitError { bytes })
        }
    }

    /// The limit in bytes.
    pub fn bytes(self) -> usize {
        self.0
    }

    /// The smaller of two limits: what a connection honours when its two sides differ.
    pub fn min(self, other: FrameLimit) -> FrameLimit {
        FrameLimit(self.0.min(other.0))
    }
}

impl Default for FrameLimit {
    fn default() -> Self {
        FrameLimit(DEFAULT_MAX_FRAME)
    }
}

impl std::str::FromStr for FrameLimit {
    type Err = String;

    /// A number of bytes, as `--max-frame` takes it.
    fn from_str(text: &str) -> Result<Self, String> {
        let bytes = text
            .parse::<usize>()
            .map_err(|_| format!("`{text}` is not a number of bytes"))?;
        FrameLimit::new(bytes).map_err(|err| err.to_string())
    }
}

/// A frame limit outside the range a [`FrameLimit`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a frame limit of {bytes} bytes is out of range: it must be at least {MIN_MAX_FRAME} (room for a handshake) and at most {} (what a length prefix can say)",
    u32::MAX
)]
pub struct FrameLimitError {
    /// The value refused.
    pub bytes: usize,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("socket i/o failed")]
    Io(#[from] io::Error),
    /// A peer announced a frame larger than the limit; the connection cannot be resynchronised.
    #[error("peer announced a frame of {len} bytes, over the limit of {limit} bytes")]
    IncomingTooLarge {
        /// The announced length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A message to send encodes to more than the limit; nothing was sent.
    #[error(
        "message encodes to more than the frame limit of {limit} bytes: send less per call or raise --max-frame on both sides"
    )]
    OutgoingTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A frame's body is not a valid message of the expected type.
    #[error("frame body is not a valid message")]
    Malformed(#[source] bincode::Error),
    /// A message could not be encoded.
    #[error("message could not be encoded")]
    Encode(#[source] bincode::Error),
}

impl From<CodecError> for io::Error {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::Io(err) => err,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// An error and its causes on one line, `outer: inner: innermost`, for logs and CLI messages.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The serialization format of frame bodies: bincode 1.3 with a size limit.
///
/// Little-endian fixed-width integers and trailing bytes rejected. Values are decoded only from a
/// complete frame already held in memory, so a string or byte field cannot claim more than its
/// frame holds (a longer claim fails as "unexpected end"); a sequence claiming 2^60 elements gets
/// at most serde's cautious pre-allocation (1 MiB) before it fails. (bincode's own byte limit, set
/// here too, only bounds encoding: bincode 1.3 ignores it when decoding from a slice.)
#[derive(Debug, Clone, Copy)]
pub struct WireFormat {
    limit: FrameLimit,
}

impl WireFormat {
    /// A format that encodes and decodes at most `limit` bytes per value.
    pub fn new(limit: FrameLimit) -> Self {
        WireFormat { limit }
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

    /// Decodes one value from a custom reader (the large-frame path of
    /// [`crate::transport::WireTransport`]).
    pub(crate) fn decode_from<'de, R, T>(self, reader: R) -> bincode::Result<T>
    where
        R: bincode::de::read::BincodeRead<'de>,
        T: DeserializeOwned,
    {
        self.options().deserialize_from_custom(reader)
    }

    /// Decodes one value from a complete frame body.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, CodecError> {
        self.options()
            .deserialize(body)
            .map_err(CodecError::Malformed)
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

/// The body length a frame's prefix announces, once its 4 bytes are in `src`.
pub(crate) fn frame_len(src: &[u8]) -> Option<usize> {
    let prefix: [u8; LENGTH_PREFIX_LEN] = src.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

/// Splits a read buffer into frames, enforcing the limit; yields each complete body.
///
/// Returns `Ok(None)` while a frame is incomplete, after growing `src` towards it by at most
/// [`READ_AHEAD`] (64 KiB) or the bytes already received, whichever is larger.
pub fn split_frame(src: &mut BytesMut, limit: FrameLimit) -> Result<Option<BytesMut>, CodecError> {
    let Some(len) = frame_len(src) else {
        return Ok(None);
    };
    if len > limit.bytes() {
        return Err(CodecError::IncomingTooLarge {
            len,
            limit: limit.bytes(),
        });
    }
    let total = LENGTH_PREFIX_LEN + len;
    if src.len() < total {
        let missing = total - src.len();
        src.reserve(missing.min(READ_AHEAD.max(src.len())));
        return Ok(None);
    }
    src.advance(LENGTH_PREFIX_LEN);
    Ok(Some(src.split_to(len)))
}

/// A check of a frame body made before it is decoded.
pub(crate) type BodyCheck = fn(&[u8]) -> Result<(), CodecError>;

/// A tokio codec that reads frames of `In` and writes frames of `Out`.
///
/// Wrapped in [`tokio_util::codec::Framed`], it is a tarpc transport:
/// `Framed<S, WireCodec<ClientMessage<Req>, Response<Resp>>>` on the server,
/// `Framed<S, WireCodec<Response<Resp>, ClientMessage<Req>>>` on the client.
#[derive(Debug)]
pub struct WireCodec<In, Out> {
    limit: FrameLimit,
    format: WireFormat,
    check: Option<BodyCheck>,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> WireCodec<In, Out> {
    /// A codec enforcing `limit` in both directions.
    pub fn new(limit: FrameLimit) -> Self {
        WireCodec {
            limit,
            format: WireFormat::new(limit),
            check: None,
            _types: PhantomData,
        }
    }

    /// The limit in force.
    pub fn limit(&self) -> FrameLimit {
        self.limit
    }

    /// The body format.
    pub(crate) fn format(&self) -> WireFormat {
        self.format
    }

    /// The check made of each body before it is decoded, if any.
    pub(crate) fn check(&self) -> Option<BodyCheck> {
        self.check
    }
}

impl<In: DeserializeOwned, Out> WireCodec<In, Out> {
    /// Checks and decodes one complete frame body.
    pub(crate) fn decode_body(&self, body: &[u8]) -> Result<In, CodecError> {
        if let Some(check) = self.check {
            check(body)?;
        }
        self.format.decode(body)
    }
}

impl<In, Out> Clone for WireCodec<In, Out> {
    fn clone(&self) -> Self {
        WireCodec {
            check: self.check,
            ..WireCodec::new(self.limit)
        }
    }
}

/// The furthest deadline a request may carry: one year. tarpc turns a request's relative
/// deadline into `Instant::now() + deadline` without checking, which panics for a peer's huge
/// value; such requests are refused as malformed before tarpc sees them.
pub const MAX_DEADLINE_SECS: u64 = 365 * 24 * 60 * 60;

impl<Req, Out> WireCodec<tarpc::ClientMessage<Req>, Out> {
    /// The codec a server reads requests with: [`WireCodec::new`] plus a check of each
    /// request's deadline against [`MAX_DEADLINE_SECS`].
    pub fn for_requests(limit: FrameLimit) -> Self {
        WireCodec {
            check: Some(check_request_deadline),
            ..WireCodec::new(limit)
        }
    }
}

/// Refuses a `ClientMessage::Request` body whose deadline is beyond [`MAX_DEADLINE_SECS`].
/// Layout (bincode, fixed-width little-endian): u32 variant (0 = Request), then the context's
/// deadline as a `Duration`: u64 seconds, u32 nanoseconds.
fn check_request_deadline(body: &[u8]) -> Result<(), CodecError> {
    const REQUEST: [u8; 4] = 0u32.to_le_bytes();
    if body.len() >= 12 && body[..4] == REQUEST {
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&body[4..12]);
        let secs = u64::from_le_bytes(secs);
        if secs > MAX_DEADLINE_SECS {
            return Err(CodecError::Malformed(Box::new(bincode::ErrorKind::Custom(
                format!(
                    "request deadline of {secs} s is beyond the maximum of {MAX_DEADLINE_SECS} s"
                ),
            ))));
        }
    }
    Ok(())
}

impl<In: DeserializeOwned, Out> Decoder for WireCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        let Some(body) = split_frame(src, self.limit)? else {
            return Ok(None);
        };
        self.decode_body(&body).map(Some)
    }
}

impl<In, Out: Serialize> Encoder<Out> for WireCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.format.encode_frame(&item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> WireCodec<Vec<String>, Vec<String>> {
        WireCodec::new(FrameLimit::new(MIN_MAX_FRAME).expect("in range"))
    }

    #[test]
    fn a_message_survives_a_round_trip_even_when_fed_byte_by_byte() {
        let mut c = codec();
        let mut wire = BytesMut::new();
        let sent = vec!["hello".to_owned(), "world".to_owned()];
        c.encode(sent.clone(), &mut wire).expect("encodes");
        let mut src = BytesMut::new();
        let mut got = None;
        for byte in wire.iter() {
            assert!(got.is_none(), "decoded before the frame was complete");
            src.put_u8(*byte);
            got = c.decode(&mut src).expect("decodes");
        }
        assert_eq!(got, Some(sent));
        assert!(src.is_empty());
    }

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
    fn frame_limit_is_enforced_at_limit_and_limit_plus_one() {
        let limit = FrameLimit::new(MIN_MAX_FRAME).expect("in range");
        let mut at_limit = BytesMut::new();
        at_limit.put_u32(limit.bytes() as u32);
        assert!(
            split_frame(&mut at_limit, limit)
                .expect("at limit")
                .is_none()
        );

        let mut over = BytesMut::new();
        over.put_u32(limit.bytes() as u32 + 1);
        assert!(matches!(
            split_frame(&mut over, limit),
            Err(CodecError::IncomingTooLarge { .. })
        ));

        let mut huge = BytesMut::new();
        huge.put_u32(u32::MAX);
        assert!(split_frame(&mut huge, FrameLimit::default()).is_err());
    }

    #[test]
    fn a_claimed_frame_does_not_reserve_its_claimed_size() {
        let mut src = BytesMut::new();
        src.put_u32(DEFAULT_MAX_FRAME as u32);
        assert!(
            split_frame(&mut src, FrameLimit::default())
                .expect("under limit")
                .is_none()
        );
        assert!(src.capacity() <= LENGTH_PREFIX_LEN + READ_AHEAD + 64);
    }

    #[test]
    fn a_body_claiming_a_huge_vector_fails_instead_of_allocating_the_claim() {
        let mut src = BytesMut::new();
        src.put_u32(8);
        src.put_u64_le(1 << 60);
        assert!(matches!(
            codec().decode(&mut src),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn an_oversized_outgoing_message_is_refused_and_nothing_is_written() {
        let mut dst = BytesMut::new();
        let big = vec!["x".repeat(MIN_MAX_FRAME)];
        assert!(matches!(
            codec().encode(big, &mut dst),
            Err(CodecError::OutgoingTooLarge { .. })
        ));
        assert!(dst.is_empty());
    }
}
