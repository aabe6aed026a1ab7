//! Fuzzes the shared-memory lane's frames: an echo server and a kv client reading a stream of
//! fields and released frames (and ordinary ones) against a real region filled from the input,
//! handed its descriptor once, twice or not at all. See `src/lane.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The loop measures each decode call's peak heap use: it needs the counting allocator.
#[global_allocator]
static ALLOC: rpc_core_fuzz::lane::CountingAlloc = rpc_core_fuzz::lane::CountingAlloc;

fuzz_target!(|input: &[u8]| {
    rpc_core_fuzz::lane::decode_lane_frames(input);
});
