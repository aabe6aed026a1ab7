//! The status codes `rpc_call` returns, and which code each error becomes.
//!
//! The codes are the contract a C caller branches on, so each says what happened to the call
//! (sent or not, may have run or not) rather than which Rust error it came from. cbindgen
//! copies them into `include/rpc.h` as `#define`s; the README has the same table.

use std::error::Error;
use std::ffi::c_int;
use std::fmt::Display;

use rpc_client::{JsonCallError, JsonConnectError};
use rpc_core::CodecError;
use rpc_core::tarpc::ChannelError;
use rpc_core::tarpc::client::RpcError;
use rpc_core::untrusted::Untrusted;

/// The call succeeded and `*result_json` holds the method's return value as JSON. A method
/// that returns a `Result` succeeds with `{"Ok": ...}` or `{"Err": ...}`: its `Err` is a value
/// like any other.
pub const RPC_OK: c_int = 0;

/// An argument is unusable: NULL where a value is required, text that is not UTF-8, a target
/// that is neither a server name nor an endpoint, a method that is not `service.method`.
/// Nothing was sent.
pub const RPC_ERR_INVALID_ARGUMENT: c_int = 1;

/// The request does not fit the server's services: arguments that are not JSON or do not fit
/// the method's argument types, an unknown service or method, a request over the frame limit.
/// Nothing was sent.
pub const RPC_ERR_BAD_REQUEST: c_int = 2;

/// The server could not be reached within the timeout, or refused the connection (a handshake
/// refusal, a server run by an unexpected uid). The call was not sent.
pub const RPC_ERR_UNREACHABLE: c_int = 3;

/// The deadline passed before the answer came. The call may or may not have run; the server
/// drops it at the same deadline.
pub const RPC_ERR_TIMEOUT: c_int = 4;

/// The connection broke while the call was in flight (the server stopped or crashed): the call
/// may or may not have run, and was not sent again. The next call reconnects.
pub const RPC_ERR_INTERRUPTED: c_int = 5;

/// The server answered with an error instead of a result: too many calls in flight on the
/// connection, the handler panicked, the response was over the frame limit.
pub const RPC_ERR_SERVER: c_int = 6;

/// The server's answer could not be used: undecodable bytes, another method's answer, a schema
/// that cannot be printed or that changed while connecting.
pub const RPC_ERR_PROTOCOL: c_int = 7;

/// A bug in this library: a panic, caught before it reached the caller. The message says
/// where.
pub const RPC_ERR_INTERNAL: c_int = 8;

/// A failed entry point: its status code and the one-line message `*error` receives.
#[derive(Debug)]
pub(crate) struct Failure {
    /// One of the `RPC_ERR_` codes.
    pub code: c_int,
    /// The message, on one line, with any text from the server escaped.
    pub message: String,
}

impl Failure {
    /// A failure with `message`, escaped with [`Untrusted`]: messages quote the server (service
    /// names, error details), and a caller may print them to a terminal or a log.
    pub fn new(code: c_int, message: impl Display) -> Self {
        Failure {
            code,
            message: Untrusted(&message.to_string()).to_string(),
        }
    }

    /// A failure with `err` and its causes as the message.
    pub fn error(code: c_int, err: &(dyn Error + 'static)) -> Self {
        Failure::new(code, rpc_core::error_chain(err))
    }

    /// A service could not be connected to (the first call to a service).
    pub fn connect(err: &JsonConnectError) -> Self {
        Failure::error(connect_code(err), err)
    }

    /// A call failed.
    pub fn call(err: &JsonCallError) -> Self {
        let code = match err {
            JsonCallError::Args(_) => RPC_ERR_BAD_REQUEST,
            JsonCallError::Rpc { source, .. } => rpc_code(source),
            JsonCallError::Interrupted { .. } => RPC_ERR_INTERRUPTED,
            // The connection had broken before the call and reconnecting failed: as the first
            // connection's failure would (a server back with another schema is a protocol
            // error, one no longer hosting the service a bad request).
            JsonCallError::Unreachable { source, .. } => connect_code(source),
            JsonCallError::WrongMethod { .. } => RPC_ERR_PROTOCOL,
        };
        Failure::error(code, err)
    }
}

/// The code for a service that could not be connected to. Nothing of the caller's was sent.
fn connect_code(err: &JsonConnectError) -> c_int {
    match err {
        JsonConnectError::Connect(_) => RPC_ERR_UNREACHABLE,
        JsonConnectError::UnknownService { .. } => RPC_ERR_BAD_REQUEST,
        JsonConnectError::Describe(source) => match rpc_code(source) {
            // The schema call is ours, not the caller's: a connection that broke under it
            // means the server went away before the caller's call was sent.
            RPC_ERR_INTERRUPTED => RPC_ERR_UNREACHABLE,
            code => code,
        },
        JsonConnectError::SchemaChanged { .. } | JsonConnectError::Unprintable { .. } => {
            RPC_ERR_PROTOCOL
        }
    }
}

/// The code for a call that was handed to the connection and failed there.
fn rpc_code(err: &RpcError) -> c_int {
    match err {
        RpcError::DeadlineExceeded => RPC_ERR_TIMEOUT,
        RpcError::Server(_) => RPC_ERR_SERVER,
        // The request could not be queued (over the frame limit): nothing was sent.
        RpcError::Send(_) => RPC_ERR_BAD_REQUEST,
        // `JsonClient` reports a broken connection as `Interrupted`; these remain for the
        // schema call made while connecting.
        RpcError::Shutdown => RPC_ERR_INTERRUPTED,
        RpcError::Channel(channel) => channel_code(channel),
    }
}

/// A broken connection is an interruption when the socket failed, a protocol error when the
/// server sent what cannot be read.
fn channel_code(err: &ChannelError<dyn Error + Send + Sync + 'static>) -> c_int {
    let (ChannelError::Read(cause)
    | ChannelError::Ready(cause)
    | ChannelError::Write(cause)
    | ChannelError::Flush(cause)
    | ChannelError::Close(cause)) = err;
    match cause.downcast_ref::<CodecError>() {
        Some(CodecError::Io(_)) | None => RPC_ERR_INTERRUPTED,
        Some(_) => RPC_ERR_PROTOCOL,
    }
}
