//! Frames: a 4-byte big-endian body length, then the body, never longer than a [`FrameLimit`].
//!
//! Two properties matter against hostile peers: a length prefix over the limit is refused as soon
//! as its 4 bytes arrive, before anything is buffered; and a read buffer grows with the bytes that
//! actually arrived, never with the length a peer merely claims (tokio-util's
//! `LengthDelimitedCodec` reserves the whole claimed frame up front).

use bytes::{Buf, BytesMut};

use crate::wire::CodecError;

pub use crate::limits::{DEFAULT_MAX_FRAME, MIN_MAX_FRAME, READ_AHEAD};

/// Bytes in a frame's length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The largest frame body a connection accepts or sends, in bytes: from [`MIN_MAX_FRAME`]
/// (4 KiB, room for any handshake) to `u32::MAX` (what a length prefix can say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimit(usize);

impl FrameLimit {
    /// The smallest limit, [`MIN_MAX_FRAME`]: the handshake's.
    pub const MIN: FrameLimit = FrameLimit(MIN_MAX_FRAME);

    /// The largest limit, `u32::MAX`: what a length prefix can say.
    pub const MAX: FrameLimit = FrameLimit(u32::MAX as usize);

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

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

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
}
