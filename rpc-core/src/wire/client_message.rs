//! [`ClientMessage`]: what a client sends after the handshake. tarpc's own `ClientMessage` with
//! one kind of message more: the credit a client grants a stream.

use serde::{Deserialize, Serialize};
use tarpc::{Request, trace};

/// A client's message to the server: a request, a cancel, or more credit for a stream.
///
/// Variants 0 and 1 are tarpc's `ClientMessage` byte for byte (a stock tarpc client's requests
/// decode as these); variant 2 is this framework's own (protocol version 4). Clients write them
/// with [`ClientFrame`](super::ClientFrame), which produces the same bytes faster.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClientMessage<Req> {
    /// Run a call: its context (deadline, trace), its id on this connection and its arguments.
    Request(Request<Req>),
    /// Stop working on call `request_id` (the client stopped waiting for it), or close the
    /// stream it opened.
    Cancel {
        /// The cancelled call's trace context.
        trace_context: trace::Context,
        /// The cancelled call.
        request_id: u64,
    },
    /// The stream opened by call `request_id` may send `bytes` more bytes of answers (counted as
    /// frame bodies, without their 4-byte length). See [`crate::streaming`].
    Grant {
        /// The stream, by the id of the call that opened it.
        request_id: u64,
        /// Bytes of credit added to the stream's window.
        bytes: u64,
    },
}
