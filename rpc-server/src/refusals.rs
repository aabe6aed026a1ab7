//! The errors the call loop ([`crate::dispatch`]) answers with when it does not run a call or
//! ends a stream itself: what a client sees, worded for the person reading it.

use tarpc::{Response, ServerError};

/// The error a call whose handler (or a stream whose producer) panicked gets. The panic's own
/// message is not sent: it may say more about the server than its clients should see.
pub(crate) fn panicked() -> ServerError {
    ServerError::new(
        std::io::ErrorKind::Other,
        "the handler panicked (see the server's log)".into(),
    )
}

/// The answer to a call over the in-flight limit: tarpc's own, so clients can tell it apart.
pub(crate) fn throttled<Resp>(request_id: u64) -> Response<Resp> {
    Response {
        request_id,
        message: Err(ServerError::new(
            std::io::ErrorKind::WouldBlock,
            "server throttled the request.".into(),
        )),
    }
}

/// The last answer of a stream still open when the request stream ended: the server is shutting
/// down (or the client closed its side of the connection, and will not read it).
pub(crate) fn closed_by_shutdown() -> ServerError {
    ServerError::new(
        std::io::ErrorKind::ConnectionAborted,
        "the stream was closed: the server is shutting down".into(),
    )
}

/// The answer to a stream opened past the connection's limit.
pub(crate) fn too_many_streams(limit: usize) -> ServerError {
    ServerError::new(
        std::io::ErrorKind::WouldBlock,
        format!(
            "too many streams open on this connection (the limit is {limit}: --max-streams); \
             close one or open another connection"
        ),
    )
}

/// The answer to a call whose response would not fit in a frame: the call fails, the connection
/// and the other calls on it go on.
pub(crate) fn too_large<Resp>(request_id: u64, limit: usize) -> Response<Resp> {
    Response {
        request_id,
        message: Err(ServerError::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the response is larger than the server's frame limit of {limit} bytes \
                 (--max-frame)"
            ),
        )),
    }
}
