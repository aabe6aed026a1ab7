//! The wire format: the only code that knows how messages become bytes.
//!
//! - A **frame** is a 4-byte big-endian body length, then the body ([`frame`]): the handshake
//!   and every message after it. A frame longer than the connection's [`FrameLimit`] is refused
//!   when its length arrives.
//! - A **body** is bincode 1.3 with fixed-width little-endian integers ([`WireFormat`]), decoded
//!   only from bytes the frame really holds. Swapping bincode for another format means changing
//!   this module and nothing outside it.
//! - A client's requests and cancels are tarpc's `ClientMessage`, plus the credit it grants a
//!   stream ([`ClientMessage`]), written by [`ClientFrame`] (the same bytes, faster); a
//!   server's answers are tarpc's `Response` (a stream's are many with one request id), which
//!   [`ResponseSeed`] decodes for an answer type known only at run time.
//! - Incoming messages are decoded with a [`MessageSeed`]: `PhantomData` for a Rust type, or a
//!   seed that knows a shape read at run time.
//! - A request's deadline is checked on its raw bytes before it is decoded
//!   ([`WireCodec::for_requests`]): tarpc would panic on a huge one.
//! - Large frames are decoded around their large byte and string fields (`large_field.rs`), so
//!   those fields can be read straight from the socket into their own memory.
//!
//! - The handshake's frames add the magic and a protocol version in front of a bincode body
//!   (`handshake_frame.rs`, re-exported as [`crate::handshake::HandshakeCodec`]).
//!
//! The transport ([`crate::transport`]) moves frames; [`crate::handshake`] says what the
//! handshake's messages mean.

mod client_frame;
mod client_message;
mod codec;
mod error;
mod format;
pub mod frame;
pub(crate) mod handshake_frame;
pub(crate) mod lane_frame;
pub(crate) mod large_field;
mod response_seed;

pub use client_frame::ClientFrame;
pub use client_message::ClientMessage;
pub(crate) use codec::BodyCheck;
pub use codec::{MAX_DEADLINE_SECS, WireCodec};
pub use error::CodecError;
pub(crate) use format::canonical_bytes;
pub use format::{MessageSeed, WireFormat};
pub(crate) use frame::frame_len;
pub use response_seed::ResponseSeed;

pub use crate::limits::BIG_FIELD;
pub use frame::{
    DEFAULT_MAX_FRAME, FrameLimit, FrameLimitError, LENGTH_PREFIX_LEN, MIN_MAX_FRAME, READ_AHEAD,
    split_frame,
};
