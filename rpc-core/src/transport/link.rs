//! [`Link`]: a connection whose handshake is done, on its way to becoming a [`WireTransport`].
//!
//! Both sides read the handshake through a `Framed` codec, which may read past the handshake's
//! own frame: the first request (or response) can arrive in the same read. A `Link` keeps those
//! bytes with the socket, so that no side can drop them, and carries the frame limit the
//! connection honours. It is the one place where a handshaken stream becomes a transport.

use crate::wire::ClientMessage;
use bytes::BytesMut;
use tokio_util::codec::Framed;

use crate::handshake::HandshakeCodec;
use crate::lane::ShmSize;
use crate::stream::LocalStream;
use crate::transport::WireTransport;
use crate::wire::{FrameLimit, MessageSeed, WireCodec};

/// A socket past an accepted handshake: the stream, the bytes read beyond the handshake, the
/// frame limit in force on it, and the size of its shared-memory regions (if any).
#[derive(Debug)]
pub struct Link {
    io: LocalStream,
    read_ahead: BytesMut,
    limit: FrameLimit,
    shm: ShmSize,
}

impl Link {
    /// Takes the socket out of the handshake's framing, keeping whatever was read past the
    /// handshake. The handshake's last frame must have been flushed (sending it does so).
    pub fn from_handshake<In, Out>(
        framed: Framed<LocalStream, HandshakeCodec<In, Out>>,
        limit: FrameLimit,
    ) -> Self {
        let parts = framed.into_parts();
        debug_assert!(
            parts.write_buf.is_empty(),
            "the handshake's last frame was flushed"
        );
        Link {
            io: parts.io,
            read_ahead: parts.read_buf,
            limit,
            shm: ShmSize::OFF,
        }
    }

    /// This link using the shared-memory lane with regions of `shm` bytes, as the handshake
    /// agreed: only on a Unix socket on Linux, and [`ShmSize::OFF`] changes nothing.
    pub fn with_shm(mut self, shm: ShmSize) -> Self {
        let usable = cfg!(any(target_os = "linux", target_os = "android"))
            && matches!(self.io, LocalStream::Unix(_));
        self.shm = if usable { shm } else { ShmSize::OFF };
        self
    }

    /// The frame limit the connection honours.
    pub fn limit(&self) -> FrameLimit {
        self.limit
    }

    /// The size of the connection's shared-memory regions, [`ShmSize::OFF`] without the lane.
    pub fn shm(&self) -> ShmSize {
        self.shm
    }

    /// The transport a client speaks, or any peer that checks nothing before decoding.
    pub fn transport<In, Out>(self) -> WireTransport<LocalStream, In, Out> {
        WireTransport::new(self.io, self.read_ahead, WireCodec::new(self.limit)).with_lane(self.shm)
    }

    /// [`Link::transport`] reading incoming messages as `seed` reads them: for messages whose
    /// type is known only at run time (a client's responses decoded from a fetched schema,
    /// through a [`crate::wire::ResponseSeed`]).
    pub fn transport_with_seed<In, Out, D: MessageSeed<In>>(
        self,
        seed: D,
    ) -> WireTransport<LocalStream, In, Out, D> {
        WireTransport::with_seed(self.io, self.read_ahead, WireCodec::new(self.limit), seed)
            .with_lane(self.shm)
    }

    /// The transport a server reads requests from: each request's deadline is checked before it
    /// is decoded (see [`WireCodec::for_requests`]).
    pub fn request_transport<Req, Out>(
        self,
    ) -> WireTransport<LocalStream, ClientMessage<Req>, Out> {
        WireTransport::new(
            self.io,
            self.read_ahead,
            WireCodec::for_requests(self.limit),
        )
        .with_lane(self.shm)
    }
}
