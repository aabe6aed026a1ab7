//! Fuzzes the frame and body decoder: kv and echo servers reading requests, a kv client reading
//! responses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    rpc_core_fuzz::decode_frames(input);
});
