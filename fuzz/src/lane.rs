//! The `lane` target's loop: the shared-memory lane's escape frames (`rpc-core/src/wire/
//! lane_frame.rs`) read by a [`FrameReader`] with the lane on, against a real region.
//!
//! An input is a small header, the bytes the region is filled with, then the byte stream:
//!
//! ```text
//! descriptors: u8 | piece seed: u8 | pattern_len: u16 LE | pattern | stream
//! ```
//!
//! The region is an [`OwnRegion`] of [`LANE_REGION_SIZE`] bytes filled with `pattern` repeated
//! (zeros if it is empty), so a slot's bytes are whatever the pattern makes them: a pattern of
//! ASCII gives string fields that are valid UTF-8, one with a stray `0xff` gives fields that are
//! not. `descriptors` says what the reader is handed ([`Descriptors`]): a dup of the region's
//! memfd, as a socket's `SCM_RIGHTS` would pass it, none, the same twice (the second must be
//! refused), or a reader with the lane off. The stream is read by an echo server
//! (`ClientMessage<EchoRequest>`, with the request check) and a kv client
//! (`Response<KvResponse>`), both at the default frame limit, delivered whole, a byte at a time
//! and in pieces drawn from the piece seed.
//!
//! Beyond the checks of the other frame loops (no panic, deliveries agree on how many messages
//! decode and whether the input is an error, the reader's memory within [`reader_bound`]),
//! every decode call's peak heap use on this thread must stay within [`lane_bound`], and after
//! each message [`FrameReader::take_release`] must give the end of the last slot its frame named
//! (nothing for a message that came through the socket). The peak is measured by
//! [`CountingAlloc`], which the binary running this loop must install as its global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use rpc_core::lane::{LANE_MAX_FIELDS, OwnRegion, ShmSize};
use rpc_core::services::echo::EchoRequest;
use rpc_core::services::kv::KvResponse;
use rpc_core::tarpc::Response;
use rpc_core::transport::FrameReader;
use rpc_core::wire::{ClientMessage, CodecError, FrameLimit, MessageSeed, WireCodec};
use serde::de::DeserializeOwned;

use super::{Outcome, PieceSizes, assert_agree, feed_piece, reader_bound};

/// The size of the peer region the readers are given: small, so that slots at its end, slots
/// bigger than it and slots in later laps of the ring are all a few bytes of input away.
pub const LANE_REGION_SIZE: u64 = 256 * 1024;

/// Bytes before the pattern: descriptors, piece seed, pattern length.
const HEADER_LEN: usize = 4;

/// Bytes one slot takes in a fields frame (position and length, u64 each).
const SLOT_WIRE_LEN: usize = 16;

/// The most serde preallocates for a sequence whose length a peer claims, before any element
/// has arrived (`size_hint::cautious`, 1 MiB): a kv client's 28-byte frame claiming a huge
/// `List` costs this for a moment. The messages read here hold no sequence inside another, so
/// one decode preallocates it at most once at a time.
const SEQUENCE_PREALLOC: usize = 1024 * 1024;

/// What the reader is handed before the stream, as the header's first byte (modulo 4) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptors {
    /// No descriptor: a fields frame is a protocol error.
    None,
    /// The region's descriptor, once.
    Once,
    /// The region's descriptor twice: the second offer must be refused, the first kept.
    Twice,
    /// A reader with the lane off, offered the descriptor anyway: the offer must be refused, and
    /// a zero-length frame is malformed as it is without a lane.
    LaneOff,
}

impl Descriptors {
    fn from_byte(byte: u8) -> Self {
        match byte % 4 {
            0 => Descriptors::None,
            1 => Descriptors::Once,
            2 => Descriptors::Twice,
            _ => Descriptors::LaneOff,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Descriptors::None => 0,
            Descriptors::Once => 1,
            Descriptors::Twice => 2,
            Descriptors::LaneOff => 3,
        }
    }
}

/// One `lane` input, split into its parts (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct LaneInput<'a> {
    /// What the reader is handed.
    pub descriptors: Descriptors,
    /// Seeds the piece sizes of the piecewise delivery.
    pub piece_seed: u8,
    /// Repeated to fill the region.
    pub pattern: &'a [u8],
    /// The bytes the reader is fed.
    pub stream: &'a [u8],
}

impl<'a> LaneInput<'a> {
    /// Splits `input`; a header cut short reads as zeros, a pattern length past the end as the
    /// rest of the input.
    pub fn parse(input: &'a [u8]) -> Self {
        let mut header = [0u8; HEADER_LEN];
        let header_len = input.len().min(HEADER_LEN);
        header[..header_len].copy_from_slice(&input[..header_len]);
        let rest = &input[header_len..];
        let pattern_len = usize::from(u16::from_le_bytes([header[2], header[3]])).min(rest.len());
        let (pattern, stream) = rest.split_at(pattern_len);
        LaneInput {
            descriptors: Descriptors::from_byte(header[0]),
            piece_seed: header[1],
            pattern,
            stream,
        }
    }

    /// The input's bytes, for writing seeds.
    pub fn join(&self) -> Vec<u8> {
        let pattern_len = u16::try_from(self.pattern.len()).expect("a pattern of at most 64 KiB");
        let mut input = vec![self.descriptors.byte(), self.piece_seed];
        input.extend_from_slice(&pattern_len.to_le_bytes());
        input.extend_from_slice(self.pattern);
        input.extend_from_slice(self.stream);
        input
    }
}

/// The region's contents for `pattern`: it repeated over [`LANE_REGION_SIZE`] bytes, or zeros.
pub fn region_bytes(pattern: &[u8]) -> Vec<u8> {
    let size = LANE_REGION_SIZE as usize;
    if pattern.is_empty() {
        return vec![0; size];
    }
    // Doubled with `memcpy` rather than cycled byte by byte: under the fuzzer's coverage
    // instrumentation a per-byte loop over the region was most of each run's time.
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&pattern[..pattern.len().min(size)]);
    while bytes.len() < size {
        // `bytes` is a whole number of patterns until this last step, so its start continues it.
        let more = bytes.len().min(size - bytes.len());
        bytes.extend_from_within(..more);
    }
    bytes
}

/// What became of one input fed to one lane reader (the whole delivery's).
#[derive(Debug)]
pub struct LaneOutcome<T> {
    /// The messages decoded and how decoding ended.
    pub outcome: Outcome<T, CodecError>,
    /// How many of the messages came through the lane (their fields copied out of the region).
    pub through_lane: usize,
    /// The peer's latest report of slots released, as the reader last gave it.
    pub peer_released: Option<u64>,
}

/// One input read by an echo server and a kv client with the lane on.
#[derive(Debug)]
pub struct LaneOutcomes {
    /// An echo server's reads (byte fields) under the default limit.
    pub echo_request: LaneOutcome<ClientMessage<EchoRequest>>,
    /// A kv client's reads (string fields) under the default limit: the peer is a hostile
    /// server.
    pub kv_response: LaneOutcome<Response<KvResponse>>,
}

/// Decodes a `lane` input (see the module's documentation) with both readers, each delivered
/// whole, a byte at a time and in pieces.
pub fn decode_lane_frames(input: &[u8]) -> LaneOutcomes {
    assert_counting();
    let input = LaneInput::parse(input);
    let size = ShmSize::new(LANE_REGION_SIZE).expect("in range");
    // Failing to make a memfd is this machine's trouble, not the input's.
    let mut region = OwnRegion::new(size).expect("a shared-memory region");
    let whole = usize::try_from(LANE_REGION_SIZE).expect("fits");
    let pos = region.alloc(whole).expect("an empty region has room");
    region.write(pos, &region_bytes(input.pattern));
    let shape = StreamShape::of(input.stream);
    let echo = WireCodec::<ClientMessage<EchoRequest>, ()>::for_requests(FrameLimit::default());
    let kv = WireCodec::<Response<KvResponse>, ()>::new(FrameLimit::default());
    LaneOutcomes {
        echo_request: lane_deliveries(&echo, &region, &input, &shape),
        kv_response: lane_deliveries(&kv, &region, &input, &shape),
    }
}

/// The most heap one decode call of a lane reader may take on top of what was live before it,
/// once `arrived` bytes have been given to it or reported ready:
///
/// - twice [`reader_bound`]: the reader's own memory stays within that bound, and may be moved
///   into a bigger allocation while the old one still lives; decoding a message costs at most
///   what the reader held for it (its fields are moved into the message, not copied);
/// - plus [`SEQUENCE_PREALLOC`], serde's preallocation for a sequence of a claimed length;
/// - plus [`LANE_REGION_SIZE`] for each slot the bytes that arrived can name, at most
///   [`LANE_MAX_FIELDS`]: `copy_out` allocates a slot's length only after checking the slot
///   lies inside the region, so a slot costs at most the region's size, and it costs 16 bytes on
///   the wire. One call decodes at most one fields frame; the copies of an earlier one are in
///   its message (live before the call) or freed.
///
/// A slot's claimed length, up to 2^64, appears nowhere in this bound: a frame claiming 16 MiB
/// of slots in a 256 KiB region must not cost 16 MiB.
pub fn lane_bound(arrived: usize) -> usize {
    let slots = (arrived / SLOT_WIRE_LEN).min(LANE_MAX_FIELDS);
    let region = usize::try_from(LANE_REGION_SIZE).expect("fits");
    2 * reader_bound(arrived) + SEQUENCE_PREALLOC + slots * region
}

/// The frames of a stream as a plain reading of their layout sees them, without any of the
/// reader's checks: what `take_release` and `take_peer_released` must agree with.
struct StreamShape {
    /// For each frame that can carry a message, in order: the end of the last slot a fields
    /// frame names (position plus length), or `None` for a frame on the socket.
    slot_ends: Vec<Option<u64>>,
    /// Every position a released frame names.
    released: Vec<u64>,
}

impl StreamShape {
    fn of(stream: &[u8]) -> Self {
        let mut shape = StreamShape {
            slot_ends: Vec::new(),
            released: Vec::new(),
        };
        let u64_at = |at: usize| {
            let bytes = stream.get(at..at.checked_add(8)?)?;
            Some(u64::from_le_bytes(bytes.try_into().ok()?))
        };
        let mut at = 0usize;
        while let Some(prefix) = stream.get(at..at + 4) {
            let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            if len != 0 {
                shape.slot_ends.push(None);
                at += 4 + len;
                continue;
            }
            match stream.get(at + 4) {
                Some(2) => {
                    let Some(through) = u64_at(at + 5) else { break };
                    shape.released.push(through);
                    at += 13;
                }
                Some(1) => {
                    let (Some(&count), Some(smalls_len)) =
                        (stream.get(at + 5), stream.get(at + 6..at + 10))
                    else {
                        break;
                    };
                    let count = usize::from(count);
                    if count == 0 {
                        break;
                    }
                    let smalls_len =
                        u32::from_be_bytes(smalls_len.try_into().expect("4 bytes")) as usize;
                    let last = at + 10 + (count - 1) * SLOT_WIRE_LEN;
                    let (Some(pos), Some(len)) = (u64_at(last), u64_at(last + 8)) else {
                        break;
                    };
                    shape.slot_ends.push(Some(pos.wrapping_add(len)));
                    at += 10 + count * SLOT_WIRE_LEN + smalls_len;
                }
                _ => break,
            }
        }
        shape
    }
}

/// Decodes the stream with a lane reader delivered whole, a byte at a time and in pieces; they
/// must agree.
fn lane_deliveries<In: DeserializeOwned>(
    codec: &WireCodec<In, ()>,
    region: &OwnRegion,
    input: &LaneInput<'_>,
    shape: &StreamShape,
) -> LaneOutcome<In> {
    let stream = input.stream;
    let reader = || lane_reader(codec, region, input.descriptors);
    let whole = read_lane_in_pieces(reader(), stream, |_| stream.len(), false, shape);
    let bytewise = read_lane_in_pieces(reader(), stream, |_| 1, false, shape);
    assert_agree(&whole.outcome, &bytewise.outcome, "byte-by-byte");
    let mut sizes = PieceSizes(u64::from(input.piece_seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let pieces = read_lane_in_pieces(reader(), stream, |_| sizes.next(), true, shape);
    assert_agree(&whole.outcome, &pieces.outcome, "piecewise");
    whole
}

/// A fresh reader with the lane on (or off), handed the region's descriptor as `descriptors`
/// says.
fn lane_reader<In>(
    codec: &WireCodec<In, ()>,
    region: &OwnRegion,
    descriptors: Descriptors,
) -> FrameReader<In> {
    let size = ShmSize::new(LANE_REGION_SIZE).expect("in range");
    let lane = if descriptors == Descriptors::LaneOff {
        ShmSize::OFF
    } else {
        size
    };
    let mut reader = FrameReader::new(codec, BytesMut::new()).with_lane(lane);
    let offers = match descriptors {
        Descriptors::None => 0,
        Descriptors::Once | Descriptors::LaneOff => 1,
        Descriptors::Twice => 2,
    };
    for offer in 0..offers {
        let fd = region
            .fd()
            .try_clone_to_owned()
            .expect("a dup of the region's memfd");
        let taken = reader.offer_descriptor(fd);
        let allowed = offer == 0 && descriptors != Descriptors::LaneOff;
        assert_eq!(
            taken.is_ok(),
            allowed,
            "offer {offer} of the region's descriptor ({descriptors:?}): {taken:?}"
        );
    }
    reader
}

/// `read_in_pieces` for a lane reader: after every decode call also checks its peak
/// heap use against [`lane_bound`], the slot end it reports after a message against the
/// stream's shape, and a peer's release against the positions the stream names.
fn read_lane_in_pieces<In, D: MessageSeed<In>>(
    mut reader: FrameReader<In, D>,
    input: &[u8],
    mut piece: impl FnMut(usize) -> usize,
    report_ready: bool,
    shape: &StreamShape,
) -> LaneOutcome<In> {
    let mut messages = Vec::new();
    let mut through_lane = 0;
    let mut peer_released = None;
    let mut fed = 0;
    let end = loop {
        let ready = if report_ready { input.len() - fed } else { 0 };
        let (decoded, peak) = peak_during(|| reader.decode(&mut || ready));
        let arrived = fed + ready;
        let bound = reader_bound(arrived);
        assert!(
            reader.held_bytes() <= bound,
            "the reader holds {} bytes after {arrived} arrived, over the bound of {bound}",
            reader.held_bytes()
        );
        let bound = lane_bound(arrived);
        assert!(
            peak <= bound,
            "a decode call took {peak} bytes of heap after {arrived} arrived, over the lane's \
             bound of {bound}"
        );
        if let Some(through) = reader.take_peer_released() {
            assert!(
                shape.released.contains(&through),
                "the reader reports slots released through {through}, which no frame named"
            );
            peer_released = Some(through);
        }
        match decoded {
            Ok(Ok(message)) => {
                let slot_end = *shape
                    .slot_ends
                    .get(messages.len())
                    .expect("a message decodes only from a whole frame");
                assert_eq!(
                    reader.take_release(),
                    slot_end,
                    "after message {}, the release is not the end of its last slot",
                    messages.len()
                );
                through_lane += usize::from(slot_end.is_some());
                messages.push(message);
            }
            Ok(Err(need)) => {
                if fed == input.len() {
                    break Ok(());
                }
                fed += feed_piece(&mut reader, &input[fed..], piece(fed), need);
            }
            Err(err) => break Err(err),
        }
    };
    LaneOutcome {
        outcome: Outcome {
            messages,
            end,
            mid_frame: reader.is_mid_frame(),
        },
        through_lane,
        peer_released,
    }
}

thread_local! {
    /// Heap bytes this thread has allocated and not freed (negative when it frees what another
    /// thread allocated).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most [`LIVE`] has been since the last [`peak_during`] began.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting each thread's live heap bytes and their peak, so that a
/// decode call's memory is measured where it is allocated (a copy of a slot, a buffer's growth)
/// rather than only where the reader keeps it. Install it with `#[global_allocator]` in the
/// binary that runs [`decode_lane_frames`] (the `lane` fuzz target, the corpus replay test).
pub struct CountingAlloc;

impl CountingAlloc {
    fn grew(bytes: usize) {
        // The counters are plain `const` thread-locals without a destructor: reading them never
        // allocates, and they stay readable while a thread exits.
        let _ = LIVE.try_with(|live| {
            let now = live.get().wrapping_add_unsigned(bytes);
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    fn shrank(bytes: usize) {
        let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub_unsigned(bytes)));
    }
}

// SAFETY: every call goes to `System` with the caller's arguments unchanged; the counting only
// reads and writes thread-local integers, which neither allocates nor unwinds.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the copy it may be: both blocks live for a moment.
            Self::grew(new_size);
            Self::shrank(layout.size());
        }
        new
    }
}

/// Runs `f`, returning what it returns and the most heap it had allocated on this thread at any
/// moment beyond what was live when it began.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.get();
    PEAK.set(start);
    let result = f();
    let peak = PEAK.get().wrapping_sub(start);
    (result, usize::try_from(peak).unwrap_or(0))
}

/// Panics unless [`CountingAlloc`] is the global allocator: without it every peak reads 0 and
/// [`lane_bound`] would hold vacuously.
fn assert_counting() {
    let ((), peak) = peak_during(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(4096))));
    assert!(
        peak >= 4096,
        "install rpc_core_fuzz::lane::CountingAlloc as the #[global_allocator] to run this loop"
    );
}
