//! `echo`: a liveness probe, a byte echo and a byte stream, the service the benchmark measures.

use serde_bytes::ByteBuf;

/// The name the echo service is hosted under.
pub const NAME: &str = <EchoClient as crate::Service>::NAME;

/// Answers pings and sends bytes back unchanged.
#[crate::service(name = "echo")]
pub trait Echo {
    /// Does nothing and returns: a round trip with no payload.
    async fn ping();
    /// Returns `bytes` unchanged. `ByteBuf` travels as one byte string, not byte by byte.
    async fn echo(bytes: ByteBuf) -> ByteBuf;
    /// Returns after `ms` milliseconds (at most [`MAX_DELAY_MS`]): a slow call, for trying
    /// deadlines, cancellation and reconnection.
    async fn delay(ms: u64);
    /// Streams `count` items (`None`: until cancelled) of `len` zero bytes each (at most
    /// [`MAX_STREAM_ITEM`]), as fast as the client's credit allows: a source for measuring and
    /// trying streams.
    async fn stream(len: u64, count: Option<u64>) -> crate::Streaming<ByteBuf>;
}

/// The largest item `stream` sends: 1 MiB. A longer `len` is refused, so a client cannot make
/// the server allocate what it names.
pub use crate::limits::ECHO_MAX_STREAM_ITEM as MAX_STREAM_ITEM;

/// The longest `delay` the built-in echo service waits: one minute.
pub use crate::limits::ECHO_MAX_DELAY_MS as MAX_DELAY_MS;
