//! Fuzzes the handshake decoder: a server reading hellos and a client reading replies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    rpc_core_fuzz::decode_handshake(input);
});
