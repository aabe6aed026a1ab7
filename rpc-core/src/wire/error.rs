//! [`CodecError`]: why a frame could not be read or written.

use std::io;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("socket i/o failed")]
    Io(#[from] io::Error),
    /// A peer announced a frame larger than the limit; the connection cannot be resynchronised.
    #[error("peer announced a frame of {len} bytes, over the limit of {limit} bytes")]
    IncomingTooLarge {
        /// The announced length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A message to send encodes to more than the limit; nothing was sent.
    #[error(
        "message encodes to more than the frame limit of {limit} bytes: send less per call or raise --max-frame on both sides"
    )]
    OutgoingTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A frame's body is not a valid message of the expected type.
    #[error("frame body is not a valid message")]
    Malformed(#[source] bincode::Error),
    /// A message could not be encoded.
    #[error("message could not be encoded")]
    Encode(#[source] bincode::Error),
    /// The peer broke the shared-memory lane's rules, or a region could not be used.
    #[error(transparent)]
    Lane(#[from] crate::lane::LaneError),
}

impl CodecError {
    /// A frame that is not a valid message, for the reason given.
    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        CodecError::Malformed(Box::new(bincode::ErrorKind::Custom(reason.into())))
    }

    /// A message that could not be encoded, for the reason given.
    pub(crate) fn unencodable(reason: impl Into<String>) -> Self {
        CodecError::Encode(Box::new(bincode::ErrorKind::Custom(reason.into())))
    }
}

impl From<CodecError> for io::Error {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::Io(err) => err,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
