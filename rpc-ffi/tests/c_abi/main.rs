//! The C ABI from C (and Python) programs, against the real `rpc-server`: each C program is
//! compiled with `cc` at test time against `include/rpc.h` and the `librpc_ffi.so` this build
//! made, and run as its own process. One binary, a module per topic (linking is most of what a
//! test binary costs).
//!
//! - `restart`: a C host that keeps SIGPIPE's default action survives its server's SIGKILL and
//!   SIGTERM, gets the documented codes, and is served again once the server is back.
//! - `threads`: many pthreads calling on one handle at once.
//! - `bad_input`: every kind of bad argument, and NULL out-pointers.
//! - `server_error`: a call the server answers with an error (`RPC_ERR_SERVER`).
//! - `protocol_error`: answers the client cannot use, from a fake server (`RPC_ERR_PROTOCOL`).
//! - `examples`: `examples/c/call.c` and `examples/python/call.py` as a user runs them.

mod bad_input;
mod examples;
mod host;
mod protocol_error;
mod restart;
mod server_error;
mod support;
mod threads;
