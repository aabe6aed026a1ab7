//! Fuzzes what a client does with a schema from a possibly hostile server: the schema's own
//! decode and the checks the CLI runs on it, responses read into JSON under it, and JSON
//! arguments sent through it, which must read back as sent. See `src/schema_json.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    rpc_core_fuzz::schema_json::fuzz_schema_json(input);
});
