//! Fuzzes the transport's large-frame reader (the probe, fields filled in place, the whole-frame
//! fallback) with arbitrary bytes in arbitrary pieces: echo and kv servers reading requests, a
//! kv client reading responses. The input's first 8 bytes seed the piece sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    rpc_core_fuzz::decode_large_frames(input);
});
