//! [`WireCodec`]: the frame limit, body format and body check one connection reads and writes
//! with.

use std::marker::PhantomData;

use crate::wire::{CodecError, FrameLimit, WireFormat};

pub use crate::limits::MAX_DEADLINE_SECS;

/// A check of a frame body made before it is decoded.
pub(crate) type BodyCheck = fn(&[u8]) -> Result<(), CodecError>;

/// What a connection's frames carry and how they are checked: `In` messages read, `Out` messages
/// written, the frame limit, and the check each incoming body passes before it is decoded.
///
/// A [`crate::WireTransport`] reads and writes with one: `WireCodec<ClientMessage<Req>,
/// Response<Resp>>` on the server ([`WireCodec::for_requests`]), `WireCodec<Response<Resp>,
/// ClientFrame<Req>>` on the client.
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

impl<In, Out> Clone for WireCodec<In, Out> {
    fn clone(&self) -> Self {
        WireCodec {
            check: self.check,
            ..WireCodec::new(self.limit)
        }
    }
}

impl<Req, Out> WireCodec<super::ClientMessage<Req>, Out> {
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
            return Err(CodecError::malformed(format!(
                "request deadline of {secs} s is beyond the maximum of {MAX_DEADLINE_SECS} s"
            )));
        }
    }
    Ok(())
}
