//! The decode loops the fuzz targets run, shared with rpc-core's corpus replay test.
//!
//! `rpc-core/tests/fuzz_corpus.rs` includes this file as a module (`#[path]`), so `cargo test`
//! replays every corpus file through exactly the code that `cargo fuzz` runs. Keep it to what that
//! test can use too: rpc-core, bytes and tokio-util.
//!
//! Every input is decoded twice, delivered whole and delivered a byte at a time (a slow peer), and
//! the two deliveries must decode the same number of messages and both fail or both not. After
//! every decode call the read buffer's capacity must stay within [`capacity_bound`]: set by the
//! bytes that arrived, never by the length a peer claims.

use bytes::{BufMut, BytesMut};
use rpc_core::codec::{CodecError, DEFAULT_MAX_FRAME, FrameLimit, LENGTH_PREFIX_LEN, WireCodec};
use rpc_core::handshake::{HandshakeCodec, HandshakeError, Hello, HelloReply, MAX_HANDSHAKE_FRAME};
use rpc_core::services::echo::EchoRequest;
use rpc_core::services::kv::{KvRequest, KvResponse};
use rpc_core::tarpc::{ClientMessage, Response};
use tokio_util::codec::Decoder;

/// The frame limit the frame target decodes under: small enough for inputs to reach and pass it.
pub const FUZZ_FRAME_LIMIT: usize = 64 * 1024;

/// How far `split_frame` grows a buffer towards a frame.
use rpc_core::codec::READ_AHEAD;

/// What became of one input fed to one decoder.
#[derive(Debug)]
pub struct Outcome<T, E> {
    /// The messages decoded, in order.
    pub messages: Vec<T>,
    /// `Ok` if decoding stopped for want of bytes, else the error it stopped on.
    pub end: Result<(), E>,
}

/// One input read by both sides of a handshake.
#[derive(Debug)]
pub struct HandshakeOutcomes {
    /// A server reading hellos.
    pub hello: Outcome<Hello, HandshakeError>,
    /// A client reading replies.
    pub reply: Outcome<HelloReply, HandshakeError>,
}

/// One input read as frames of several message types.
#[derive(Debug)]
pub struct FrameOutcomes {
    /// A kv server's reads under [`FUZZ_FRAME_LIMIT`].
    pub kv_request: Outcome<ClientMessage<KvRequest>, CodecError>,
    /// An echo server's reads under [`FUZZ_FRAME_LIMIT`].
    pub echo_request: Outcome<ClientMessage<EchoRequest>, CodecError>,
    /// A kv client's reads under [`FUZZ_FRAME_LIMIT`]: the peer is a hostile server.
    pub kv_response: Outcome<Response<KvResponse>, CodecError>,
    /// A kv server's reads under the default limit, where a frame can claim far more than any
    /// input holds: only the read-ahead keeps the buffer small.
    pub kv_request_default_limit: Outcome<ClientMessage<KvRequest>, CodecError>,
}

/// Decodes `input` as handshake frames, the server's way and the client's way.
pub fn decode_handshake(input: &[u8]) -> HandshakeOutcomes {
    HandshakeOutcomes {
        hello: decode_both_ways(
            HandshakeCodec::<Hello, HelloReply>::new,
            input,
            MAX_HANDSHAKE_FRAME,
        ),
        reply: decode_both_ways(
            HandshakeCodec::<HelloReply, Hello>::new,
            input,
            MAX_HANDSHAKE_FRAME,
        ),
    }
}

/// Decodes `input` as post-handshake frames of each message type in [`FrameOutcomes`].
pub fn decode_frames(input: &[u8]) -> FrameOutcomes {
    let limit = FrameLimit::new(FUZZ_FRAME_LIMIT).expect("in range");
    let default = FrameLimit::default();
    FrameOutcomes {
        kv_request: decode_both_ways(
            || WireCodec::<ClientMessage<KvRequest>, Response<KvResponse>>::for_requests(limit),
            input,
            limit.bytes(),
        ),
        echo_request: decode_both_ways(
            || WireCodec::<ClientMessage<EchoRequest>, ()>::for_requests(limit),
            input,
            limit.bytes(),
        ),
        kv_response: decode_both_ways(
            || WireCodec::<Response<KvResponse>, ClientMessage<KvRequest>>::new(limit),
            input,
            limit.bytes(),
        ),
        kv_request_default_limit: decode_both_ways(
            || WireCodec::<ClientMessage<KvRequest>, Response<KvResponse>>::for_requests(default),
            input,
            DEFAULT_MAX_FRAME,
        ),
    }
}

/// The most capacity a read buffer may have after `received` bytes of frames of at most `limit`.
///
/// The buffer must hold what was received plus `split_frame`'s read-ahead towards an incomplete
/// frame (at most the rest of a frame within the limit, and at most `READ_AHEAD` or the bytes
/// received); `BytesMut` may double its allocation to get there. A claimed length, up to 4 GiB,
/// appears nowhere in this bound.
pub fn capacity_bound(received: usize, limit: usize) -> usize {
    let read_ahead = (LENGTH_PREFIX_LEN + limit).min(READ_AHEAD + received);
    2 * (received + read_ahead) + 64
}

/// Decodes `input` delivered whole and delivered a byte at a time; they must agree.
fn decode_both_ways<D: Decoder>(
    codec: impl Fn() -> D,
    input: &[u8],
    limit: usize,
) -> Outcome<D::Item, D::Error> {
    let bound = capacity_bound(input.len(), limit);
    let whole = decode_whole(codec(), input, bound);
    let bytewise = decode_bytewise(codec(), input, bound);
    assert_eq!(
        whole.messages.len(),
        bytewise.messages.len(),
        "whole and byte-by-byte delivery decoded different numbers of messages"
    );
    assert_eq!(
        whole.end.is_ok(),
        bytewise.end.is_ok(),
        "whole and byte-by-byte delivery disagree on whether the input is an error"
    );
    whole
}

fn decode_whole<D: Decoder>(
    mut codec: D,
    input: &[u8],
    bound: usize,
) -> Outcome<D::Item, D::Error> {
    let mut buf = BytesMut::from(input);
    let mut messages = Vec::new();
    let end = drain(&mut codec, &mut buf, &mut messages, bound);
    Outcome { messages, end }
}

fn decode_bytewise<D: Decoder>(
    mut codec: D,
    input: &[u8],
    bound: usize,
) -> Outcome<D::Item, D::Error> {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for &byte in input {
        buf.put_u8(byte);
        if let Err(err) = drain(&mut codec, &mut buf, &mut messages, bound) {
            return Outcome {
                messages,
                end: Err(err),
            };
        }
    }
    Outcome {
        messages,
        end: Ok(()),
    }
}

/// Decodes until the codec wants more bytes or fails, checking the buffer after every call.
fn drain<D: Decoder>(
    codec: &mut D,
    buf: &mut BytesMut,
    messages: &mut Vec<D::Item>,
    bound: usize,
) -> Result<(), D::Error> {
    loop {
        let decoded = codec.decode(buf);
        assert!(
            buf.capacity() <= bound,
            "read buffer grew to {} bytes, over the bound of {bound}",
            buf.capacity()
        );
        match decoded? {
            Some(message) => messages.push(message),
            None => return Ok(()),
        }
    }
}
