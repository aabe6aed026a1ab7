//! The decode loops the fuzz targets run, shared with rpc-core's corpus replay test.
//!
//! `rpc-core/tests/fuzz_corpus.rs` includes this file as a module (`#[path]`), so `cargo test`
//! replays every corpus file through exactly the code that `cargo fuzz` runs. Keep it to what that
//! test can use too: rpc-core and its dependencies (bytes, serde, serde_bytes, serde_json,
//! tokio-util). The `schema_json` loop lives in [`schema_json`], the `lane` loop (the
//! shared-memory lane's frames against a real region) in [`lane`].
//!
//! The handshake is decoded by its tokio codec; every frame after it by the transport's own
//! socket-free `FrameReader`, the code a server runs on what a peer sends. Every input is decoded
//! in several deliveries: whole, a byte at a time (a slow peer), and (for `large_frame`) in
//! pieces whose sizes are drawn from the input itself; all must decode the same number of
//! messages and all fail or none. After every decode call the memory the decoder holds must stay
//! within a bound set by the bytes that arrived (or that the peer has sent and the reader is told
//! are ready), never by a length a peer merely claims. A kv client's reads are also made through
//! `ResponseSeed`, the seeded decode of a client that knows its answers only at run time: it
//! must give the same messages and the same errors as the derived decode.

pub mod lane;
pub mod schema_json;

use bytes::{BufMut, BytesMut};
use rpc_core::handshake::{HandshakeCodec, HandshakeError, Hello, HelloReply, MAX_HANDSHAKE_FRAME};
use rpc_core::services::echo::EchoRequest;
use rpc_core::services::kv::{KvRequest, KvResponse};
use rpc_core::tarpc::Response;
use rpc_core::transport::{FrameReader, Need, field_room};
use rpc_core::wire::ClientMessage;
use rpc_core::wire::{
    CodecError, FrameLimit, LENGTH_PREFIX_LEN, MessageSeed, READ_AHEAD, ResponseSeed, WireCodec,
};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use tokio_util::codec::Decoder;

/// The frame limit the frame target decodes under: small enough for inputs to reach and pass it.
pub const FUZZ_FRAME_LIMIT: usize = 64 * 1024;

/// What became of one input fed to one decoder.
#[derive(Debug)]
pub struct Outcome<T, E> {
    /// The messages decoded, in order.
    pub messages: Vec<T>,
    /// `Ok` if decoding stopped for want of bytes, else the error it stopped on.
    pub end: Result<(), E>,
    /// Whether the input ended inside a frame (bytes of an unfinished frame were held).
    pub mid_frame: bool,
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

/// One input read as frames carrying large byte and string fields, in arbitrary pieces.
#[derive(Debug)]
pub struct LargeFrameOutcomes {
    /// An echo server's reads (byte fields) under the default limit.
    pub echo_request: Outcome<ClientMessage<EchoRequest>, CodecError>,
    /// A kv server's reads (string fields) under the default limit.
    pub kv_request: Outcome<ClientMessage<KvRequest>, CodecError>,
    /// A kv client's reads (a list of strings) under [`FUZZ_FRAME_LIMIT`].
    pub kv_response: Outcome<Response<KvResponse>, CodecError>,
}

/// Decodes `input` as handshake frames, the server's way and the client's way.
pub fn decode_handshake(input: &[u8]) -> HandshakeOutcomes {
    HandshakeOutcomes {
        hello: handshake_both_ways(HandshakeCodec::<Hello, HelloReply>::new, input),
        reply: handshake_both_ways(HandshakeCodec::<HelloReply, Hello>::new, input),
    }
}

/// Decodes `input` as post-handshake frames of each message type in [`FrameOutcomes`], delivered
/// whole and a byte at a time.
pub fn decode_frames(input: &[u8]) -> FrameOutcomes {
    let limit = FrameLimit::new(FUZZ_FRAME_LIMIT).expect("in range");
    let default = FrameLimit::default();
    FrameOutcomes {
        kv_request: frames_both_ways(
            &WireCodec::<ClientMessage<KvRequest>, ()>::for_requests(limit),
            input,
        ),
        echo_request: frames_both_ways(
            &WireCodec::<ClientMessage<EchoRequest>, ()>::for_requests(limit),
            input,
        ),
        kv_response: kv_responses_both_ways(limit, input),
        kv_request_default_limit: frames_both_ways(
            &WireCodec::<ClientMessage<KvRequest>, ()>::for_requests(default),
            input,
        ),
    }
}

/// Decodes `input` (after its first 8 bytes, which seed the piece sizes) as frames with large
/// fields, delivered whole, a byte at a time, and in pieces of sizes drawn from the seed; the
/// pieces also come with the number of bytes still to come reported as ready, as a socket's
/// `FIONREAD` would, so the reader's room for large fields is exercised too.
pub fn decode_large_frames(input: &[u8]) -> LargeFrameOutcomes {
    let (seed, stream) = match input.split_first_chunk::<8>() {
        Some((seed, stream)) => (u64::from_le_bytes(*seed), stream),
        None => (0, input),
    };
    let limit = FrameLimit::new(FUZZ_FRAME_LIMIT).expect("in range");
    let default = FrameLimit::default();
    LargeFrameOutcomes {
        echo_request: frames_in_pieces(
            &WireCodec::<ClientMessage<EchoRequest>, ()>::for_requests(default),
            stream,
            seed,
        ),
        kv_request: frames_in_pieces(
            &WireCodec::<ClientMessage<KvRequest>, ()>::for_requests(default),
            stream,
            seed,
        ),
        kv_response: kv_responses_in_pieces(limit, stream, seed),
    }
}

/// The most memory a handshake codec's buffer may hold after `received` bytes: what was
/// received plus `split_frame`'s read-ahead towards an incomplete frame (at most the rest of a
/// frame within the limit, and at most `READ_AHEAD` or the bytes received), doubled for
/// `BytesMut`'s growth. A claimed length, up to 4 GiB, appears nowhere in this bound.
pub fn capacity_bound(received: usize, limit: usize) -> usize {
    let read_ahead = (LENGTH_PREFIX_LEN + limit).min(READ_AHEAD + received);
    2 * (received + read_ahead) + 64
}

/// The most memory a [`FrameReader`] may hold once `arrived` bytes have been given to it or
/// reported ready: its buffer (what arrived plus a read-ahead, doubled for `BytesMut`'s growth),
/// the small bytes of a large frame taken so far (doubled likewise), and the large fields: the
/// one being filled has room for what arrived plus `field_room()`, or as much again as it
/// holds. Independent of any claimed length: a frame claiming 16 MiB that sends 100 bytes must
/// not cost megabytes.
pub fn reader_bound(arrived: usize) -> usize {
    6 * arrived + 2 * (READ_AHEAD + field_room()) + 32 * 1024
}

/// Decodes `input` with a handshake codec delivered whole and a byte at a time; they must agree.
fn handshake_both_ways<D: Decoder>(
    codec: impl Fn() -> D,
    input: &[u8],
) -> Outcome<D::Item, D::Error> {
    let bound = capacity_bound(input.len(), MAX_HANDSHAKE_FRAME);
    let whole = {
        let mut codec = codec();
        let mut buf = BytesMut::from(input);
        let mut messages = Vec::new();
        let end = drain_codec(&mut codec, &mut buf, &mut messages, bound);
        let mid_frame = !buf.is_empty();
        Outcome {
            messages,
            end,
            mid_frame,
        }
    };
    let bytewise = {
        let mut codec = codec();
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        let mut end = Ok(());
        for &byte in input {
            buf.put_u8(byte);
            end = drain_codec(&mut codec, &mut buf, &mut messages, bound);
            if end.is_err() {
                break;
            }
        }
        let mid_frame = !buf.is_empty();
        Outcome {
            messages,
            end,
            mid_frame,
        }
    };
    assert_agree(&whole, &bytewise, "byte-by-byte");
    whole
}

/// Decodes with a handshake codec until it wants more bytes or fails, checking the buffer after
/// every call.
fn drain_codec<D: Decoder>(
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

/// Decodes `input` as a kv client's answers, derived and seeded, delivered whole and a byte at a
/// time.
fn kv_responses_both_ways(
    limit: FrameLimit,
    input: &[u8],
) -> Outcome<Response<KvResponse>, CodecError> {
    let codec = WireCodec::<Response<KvResponse>, ()>::new(limit);
    let whole = frames_both_ways(&codec, input);
    // Like against like: the same delivery, derived and seeded. Deliveries differ on their own
    // (a frame cut short may be found malformed whole, yet still awaited byte by byte once its
    // probes are spent), which `frames_both_ways` allows for.
    for size in [input.len(), 1] {
        let derived = read_in_pieces(
            FrameReader::new(&codec, BytesMut::new()),
            input,
            |_| size,
            false,
        );
        let seeded = read_in_pieces(seeded_kv_reader(&codec), input, |_| size, false);
        assert_seeded_agrees(&derived, &seeded);
    }
    whole
}

/// Decodes `input` as a kv client's answers, derived and seeded, delivered whole, a byte at a
/// time and in pieces drawn from `seed`.
fn kv_responses_in_pieces(
    limit: FrameLimit,
    input: &[u8],
    seed: u64,
) -> Outcome<Response<KvResponse>, CodecError> {
    let codec = WireCodec::<Response<KvResponse>, ()>::new(limit);
    let whole = frames_in_pieces(&codec, input, seed);
    // The same pieces, derived and seeded (see `kv_responses_both_ways`).
    let mut sizes = PieceSizes(seed | 1);
    let derived = read_in_pieces(
        FrameReader::new(&codec, BytesMut::new()),
        input,
        |_| sizes.next(),
        true,
    );
    let mut sizes = PieceSizes(seed | 1);
    let seeded = read_in_pieces(seeded_kv_reader(&codec), input, |_| sizes.next(), true);
    assert_seeded_agrees(&derived, &seeded);
    whole
}

/// A kv client's reader decoding through `ResponseSeed` rather than `Response`'s derive.
fn seeded_kv_reader(
    codec: &WireCodec<Response<KvResponse>, ()>,
) -> FrameReader<Response<KvResponse>, ResponseSeed<PhantomData<KvResponse>>> {
    FrameReader::with_seed(codec, BytesMut::new(), ResponseSeed::new(PhantomData))
}

/// Asserts that the seeded decode gave exactly what the derived one did: the same messages (as
/// printed: `KvResponse` has no `PartialEq`) and the same end, errors included.
fn assert_seeded_agrees(
    derived: &Outcome<Response<KvResponse>, CodecError>,
    seeded: &Outcome<Response<KvResponse>, CodecError>,
) {
    assert_eq!(
        format!("{:?}", derived.messages),
        format!("{:?}", seeded.messages),
        "the seeded decode read different messages"
    );
    let end = |outcome: &Outcome<Response<KvResponse>, CodecError>| {
        outcome
            .end
            .as_ref()
            .err()
            .map(|err| rpc_core::error_chain(err))
    };
    assert_eq!(
        end(derived),
        end(seeded),
        "the seeded decode ended differently"
    );
}

/// Decodes `input` with a [`FrameReader`] delivered whole and a byte at a time.
fn frames_both_ways<In: DeserializeOwned>(
    codec: &WireCodec<In, ()>,
    input: &[u8],
) -> Outcome<In, CodecError> {
    let reader = || FrameReader::new(codec, BytesMut::new());
    let whole = read_in_pieces(reader(), input, |_| input.len(), false);
    let bytewise = read_in_pieces(reader(), input, |_| 1, false);
    assert_agree(&whole, &bytewise, "byte-by-byte");
    whole
}

/// Decodes `input` with a [`FrameReader`] delivered whole, a byte at a time, and in pieces drawn
/// from `seed` (with the rest reported ready).
fn frames_in_pieces<In: DeserializeOwned>(
    codec: &WireCodec<In, ()>,
    input: &[u8],
    seed: u64,
) -> Outcome<In, CodecError> {
    let whole = frames_both_ways(codec, input);
    let mut sizes = PieceSizes(seed | 1);
    let reader = FrameReader::new(codec, BytesMut::new());
    let pieces = read_in_pieces(reader, input, |_| sizes.next(), true);
    assert_agree(&whole, &pieces, "piecewise");
    whole
}

/// Feeds `input` to `reader`, a fresh one, in pieces of `piece(offset)` bytes (at least one),
/// decoding after each until the reader needs more; with `report_ready`, the bytes not yet fed
/// are reported ready. Checks the reader's memory against [`reader_bound`] after every call.
fn read_in_pieces<In, D: MessageSeed<In>>(
    mut reader: FrameReader<In, D>,
    input: &[u8],
    mut piece: impl FnMut(usize) -> usize,
    report_ready: bool,
) -> Outcome<In, CodecError> {
    let mut messages = Vec::new();
    let mut fed = 0;
    loop {
        let ready = if report_ready { input.len() - fed } else { 0 };
        let decoded = reader.decode(&mut || ready);
        let bound = reader_bound(fed + ready);
        assert!(
            reader.held_bytes() <= bound,
            "the reader holds {} bytes after {fed} arrived and {ready} ready, over the bound of \
             {bound}",
            reader.held_bytes()
        );
        match decoded {
            Ok(Ok(message)) => messages.push(message),
            Ok(Err(need)) => {
                if fed == input.len() {
                    return Outcome {
                        messages,
                        end: Ok(()),
                        mid_frame: reader.is_mid_frame(),
                    };
                }
                fed += feed_piece(&mut reader, &input[fed..], piece(fed), need);
            }
            Err(err) => {
                return Outcome {
                    messages,
                    end: Err(err),
                    mid_frame: reader.is_mid_frame(),
                };
            }
        }
    }
}

/// Feeds `reader`, which needs `need`, the first `size` bytes of `rest` (at least one, at most
/// all): returns how many it took, checking that it took some, and all of them when they go to
/// its buffer.
fn feed_piece<In, D: MessageSeed<In>>(
    reader: &mut FrameReader<In, D>,
    rest: &[u8],
    size: usize,
    need: Need,
) -> usize {
    let size = size.clamp(1, rest.len());
    let taken = reader.feed(&rest[..size]);
    assert!(
        taken > 0,
        "the reader took nothing though it needs {need:?}"
    );
    if need == Need::Buffer {
        assert_eq!(taken, size, "bytes for the buffer are all taken");
    }
    taken
}

/// Asserts that two deliveries of one input decoded alike: the same number of messages, and both
/// failing or neither, except that a frame cut short may be found malformed in one delivery
/// (which saw enough of it to tell) while the other still waits for its rest.
fn assert_agree<T, U, E, F>(first: &Outcome<T, E>, other: &Outcome<U, F>, how: &str) {
    assert_eq!(
        first.messages.len(),
        other.messages.len(),
        "whole and {how} delivery decoded different numbers of messages"
    );
    let waiting = |end_ok: bool, mid_frame: bool| end_ok && mid_frame;
    assert!(
        first.end.is_ok() == other.end.is_ok()
            || waiting(first.end.is_ok(), first.mid_frame)
            || waiting(other.end.is_ok(), other.mid_frame),
        "whole and {how} delivery disagree on whether the input is an error"
    );
}

/// Piece sizes from a seed (xorshift64): mostly small, sometimes a few KiB, now and then up to
/// 128 KiB, so that piece ends land inside prefixes, small fields and large fields alike.
struct PieceSizes(u64);

impl PieceSizes {
    fn next(&mut self) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let n = (x >> 8) as usize;
        match x & 7 {
            0..=3 => 1 + n % 16,
            4..=6 => 1 + n % 4096,
            _ => 1 + n % (128 * 1024),
        }
    }
}
