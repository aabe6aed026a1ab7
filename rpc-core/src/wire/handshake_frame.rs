//! The handshake's frames: a length prefix, the magic, a big-endian protocol version, then a
//! bincode body, each at most [`MAX_HANDSHAKE_FRAME`] bytes. The handshake's messages and rules
//! are in [`crate::handshake`]; how they become bytes is here, with the rest of the wire format.

use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::handshake::{
    HandshakeError, Hello, HelloBody, HelloReply, MAGIC, MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION,
    ReplyOfAnotherVersion,
};
use crate::wire::{CodecError, FrameLimit, WireFormat, split_frame};

/// A message that travels in a handshake frame: magic, version, then a bincode body.
pub trait HandshakeMessage: Sized {
    /// The protocol version the message carries in its header.
    fn version(&self) -> u16;
    /// Appends the bincode body.
    fn encode_body(&self, format: WireFormat, dst: &mut BytesMut) -> Result<(), CodecError>;
    /// Reads the bincode body of a message of `version`.
    fn decode_body(version: u16, format: WireFormat, body: &[u8]) -> Result<Self, HandshakeError>;
}

impl HandshakeMessage for Hello {
    fn version(&self) -> u16 {
        self.version
    }

    fn encode_body(&self, format: WireFormat, dst: &mut BytesMut) -> Result<(), CodecError> {
        let body = HelloBody {
            service: self.service.clone(),
            token: self.token.clone(),
            shm: self.shm,
        };
        format.encode_body(&body, dst)
    }

    fn decode_body(version: u16, format: WireFormat, body: &[u8]) -> Result<Self, HandshakeError> {
        // A client of another version may lay its body out differently: refuse on the version
        // alone, before reading anything else.
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        let HelloBody {
            service,
            token,
            shm,
        } = format.decode(body)?;
        Ok(Hello {
            version,
            service,
            token,
            shm,
        })
    }
}

impl HandshakeMessage for HelloReply {
    fn version(&self) -> u16 {
        PROTOCOL_VERSION
    }

    fn encode_body(&self, format: WireFormat, dst: &mut BytesMut) -> Result<(), CodecError> {
        format.encode_body(self, dst)
    }

    fn decode_body(version: u16, format: WireFormat, body: &[u8]) -> Result<Self, HandshakeError> {
        if version == PROTOCOL_VERSION {
            return Ok(format.decode(body)?);
        }
        // A server of another version lays out its acceptance differently but its refusal the
        // same way: read the refusal (most likely the one naming our version as unsupported),
        // and answer anything else with the version it came in.
        match format.decode(body) {
            Ok(ReplyOfAnotherVersion::Refused(refusal)) => Ok(HelloReply::Refused(refusal)),
            Ok(ReplyOfAnotherVersion::Accepted) | Err(_) => {
                Err(HandshakeError::UnsupportedVersion(version))
            }
        }
    }
}

/// A tokio codec for the handshake: reads `In` frames, writes `Out` frames, each at most
/// [`MAX_HANDSHAKE_FRAME`] bytes. The server uses `HandshakeCodec<Hello, HelloReply>`, the client
/// `HandshakeCodec<HelloReply, Hello>`.
#[derive(Debug)]
pub struct HandshakeCodec<In, Out> {
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> HandshakeCodec<In, Out> {
    /// The limit every handshake frame is held to.
    pub const LIMIT: usize = MAX_HANDSHAKE_FRAME;

    /// A new codec.
    pub fn new() -> Self {
        HandshakeCodec {
            _types: PhantomData,
        }
    }

    pub(crate) fn format() -> WireFormat {
        WireFormat::new(FrameLimit::MIN)
    }
}

impl<In, Out> Default for HandshakeCodec<In, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In: HandshakeMessage, Out> Decoder for HandshakeCodec<In, Out> {
    type Item = In;
    type Error = HandshakeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, HandshakeError> {
        // Check the magic as soon as it arrives, so a peer speaking another protocol (an HTTP
        // client, say) is told so instead of "frame too large".
        let seen = src.len().saturating_sub(4).min(MAGIC.len());
        if src.len() >= 4 && src[4..4 + seen] != MAGIC[..seen] {
            return Err(HandshakeError::BadMagic);
        }
        let Some(frame) = split_frame(src, FrameLimit::MIN)? else {
            return Ok(None);
        };
        if frame.len() < MAGIC.len() + 2 || frame[..MAGIC.len()] != MAGIC {
            return Err(HandshakeError::BadMagic);
        }
        let version = u16::from_be_bytes([frame[4], frame[5]]);
        In::decode_body(version, Self::format(), &frame[6..]).map(Some)
    }
}

impl<In, Out: HandshakeMessage> Encoder<Out> for HandshakeCodec<In, Out> {
    type Error = HandshakeError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), HandshakeError> {
        let start = dst.len();
        dst.put_u32(0);
        dst.put_slice(&MAGIC);
        dst.put_u16(item.version());
        if let Err(err) = item.encode_body(Self::format(), dst) {
            dst.truncate(start);
            return Err(err.into());
        }
        let len = dst.len() - start - 4;
        if len > Self::LIMIT {
            dst.truncate(start);
            return Err(CodecError::OutgoingTooLarge { limit: Self::LIMIT }.into());
        }
        dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}
