//! The connection handshake: the first frame each way on every connection.
//!
//! The client's [`Hello`] names the protocol (magic and version), the service it wants and, on
//! TCP, the token from the server's endpoint file. The server answers [`HelloReply::Accepted`],
//! with its frame limit, or [`HelloReply::Refused`] with a [`Refusal`] that says why. After an
//! accepted handshake the same connection carries that one service's tarpc messages (see
//! [`crate::wire`]), under the smaller of the two sides' frame limits.
//!
//! A handshake body is the 4-byte [`MAGIC`], a big-endian `u16` protocol version, then the rest in
//! bincode ([`HandshakeCodec`], in `wire/handshake_frame.rs`). Magic and version come first so that a peer speaking something else, or a newer
//! protocol, is told so precisely instead of getting a decode error.
//!
//! Version 2 added the server's frame limit to [`HelloReply::Accepted`], version 3 the hash of
//! the service's schema, so a client built against another version of a service can tell. [`HelloReply::Refused`]
//! keeps its variant index, and [`Refusal`] its layout (new refusals are added at the end), in
//! every version, so a client of any version reads the refusal a server of another version sends
//! it, [`Refusal::UnsupportedVersion`] first of all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

use crate::lane::ShmSize;
use crate::schema::SchemaHash;
use crate::untrusted::Untrusted;
use crate::wire::{CodecError, FrameLimit};

pub use crate::limits::MAX_HANDSHAKE_FRAME;
pub use crate::wire::handshake_frame::{HandshakeCodec, HandshakeMessage};

/// The bytes every handshake frame starts with.
pub const MAGIC: [u8; 4] = *b"LRPC";

/// The protocol version this build speaks: 5, since the hello and its acceptance agree on the
/// shared-memory lane ([`Hello::shm`], [`crate::lane`]). (4 let clients grant streams credit
/// ([`crate::wire::ClientMessage::Grant`]) and schemas say which methods stream, 3 added the
/// service's schema hash to [`HelloReply::Accepted`], 2 the server's frame limit.)
pub const PROTOCOL_VERSION: u16 = 5;

/// The length of a TCP token in bytes (256 bits).
pub const TOKEN_LEN: usize = 32;

/// The secret a client must present on a TCP endpoint. Compared in constant time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token([u8; TOKEN_LEN]);

impl Token {
    /// A token made of these bytes (the server fills them from the OS's random source).
    pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Self {
        Token(bytes)
    }

    /// Whether `other` is this token, in time independent of where they differ.
    pub fn matches(&self, other: &Token) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    /// Lower-case hex, as written in the endpoint file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why a string is not a [`Token`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token must be {} hex digits", TOKEN_LEN * 2)]
pub struct TokenParseError;

impl FromStr for Token {
    type Err = TokenParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != TOKEN_LEN * 2 || !text.is_ascii() {
            return Err(TokenParseError);
        }
        let mut bytes = [0u8; TOKEN_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| TokenParseError)?;
        }
        Ok(Token(bytes))
    }
}

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u16,
    /// The service the client wants, e.g. `kv`.
    pub service: String,
    /// The endpoint's token; required on TCP, ignored on Unix sockets.
    pub token: Option<Token>,
    /// The size of the shared-memory regions the client offers for this connection (a `u64`
    /// on the wire), [`ShmSize::OFF`] for none. Only a Unix socket on Linux uses the lane.
    pub shm: ShmSize,
}

impl Hello {
    /// A hello in this build's protocol version, offering no shared-memory lane.
    pub fn new(service: impl Into<String>, token: Option<Token>) -> Self {
        Hello {
            version: PROTOCOL_VERSION,
            service: service.into(),
            token,
            shm: ShmSize::OFF,
        }
    }

    /// This hello offering a shared-memory lane with regions of `shm` bytes.
    pub fn with_shm(mut self, shm: ShmSize) -> Self {
        self.shm = shm;
        self
    }
}

/// A hello's bincode body: what follows its magic and version.
#[derive(Serialize, Deserialize)]
pub(crate) struct HelloBody {
    pub(crate) service: String,
    pub(crate) token: Option<Token>,
    #[serde(with = "shm_size_as_u64")]
    pub(crate) shm: ShmSize,
}

/// The server's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The connection now carries the requested service.
    Accepted {
        /// The server's version (its crate version).
        server_version: String,
        /// The largest frame body the server accepts or sends (a `u32` on the wire). The client
        /// honours the smaller of this and its own limit, so it refuses a request the server
        /// would refuse before sending it. A reply announcing a value a [`FrameLimit`] cannot
        /// hold does not decode.
        #[serde(with = "frame_limit_as_u32")]
        max_frame: FrameLimit,
        /// The [`SchemaHash`] of the service as the server hosts it. A client built against a
        /// schema with another hash may send or read the wrong bytes: the connector warns.
        schema_hash: SchemaHash,
        /// The size of the connection's shared-memory regions (a `u64` on the wire): the
        /// smaller of the client's offer and the server's own size, [`ShmSize::OFF`] for no
        /// lane (always on TCP). A value a [`ShmSize`] cannot hold does not decode.
        #[serde(with = "shm_size_as_u64")]
        shm: ShmSize,
    },
    /// The server closes the connection after this reply. Variant 1 in every protocol version.
    Refused(Refusal),
}

/// A [`FrameLimit`] on the wire: a `u32`, checked against the limit's range when read.
mod frame_limit_as_u32 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(limit: &FrameLimit, s: S) -> Result<S::Ok, S::Error> {
        let bytes = u32::try_from(limit.bytes()).map_err(serde::ser::Error::custom)?;
        bytes.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FrameLimit, D::Error> {
        let bytes = u32::deserialize(d)?;
        let bytes = usize::try_from(bytes).map_err(serde::de::Error::custom)?;
        FrameLimit::new(bytes).map_err(|err| {
            serde::de::Error::custom(format!("server announced an unusable frame limit: {err}"))
        })
    }
}

/// A [`ShmSize`] on the wire: a `u64`, checked against the size's range when read.
mod shm_size_as_u64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(size: &ShmSize, s: S) -> Result<S::Ok, S::Error> {
        size.bytes().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ShmSize, D::Error> {
        ShmSize::new(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A reply of another protocol version, read only as far as a refusal: variant 1 and the
/// [`Refusal`] layout are the same in every version, an acceptance's fields are not.
#[derive(Deserialize)]
pub(crate) enum ReplyOfAnotherVersion {
    Accepted,
    Refused(Refusal),
}

/// Why a server refused a connection.
///
/// New refusals go at the end: a variant's index is its number on the wire, and every protocol
/// version must read the refusals of every other. Its `Display` escapes the strings the peer
/// supplied ([`Untrusted`]): a refusal is printed by the client and logged by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// No service of that name is hosted here.
    #[error(
        "unknown service `{}` (this server hosts: {})",
        Untrusted(requested),
        available.iter().map(|name| Untrusted(name).to_string()).collect::<Vec<_>>().join(", ")
    )]
    UnknownService {
        /// The name asked for.
        requested: String,
        /// The names hosted.
        available: Vec<String>,
    },
    /// The client speaks a protocol version the server does not.
    #[error("unsupported protocol version {requested} (this server speaks version {supported})")]
    UnsupportedVersion {
        /// The client's version.
        requested: u16,
        /// The server's version.
        supported: u16,
    },
    /// A TCP connection presented no token.
    #[error("missing token: tcp endpoints need the token from the server's endpoint file")]
    MissingToken,
    /// A TCP connection presented the wrong token.
    #[error("bad token: use the token from the server's current endpoint file")]
    BadToken,
    /// The peer's credentials are not on the server's allow list.
    #[error(
        "peer not allowed: uid {uid} gid {gid} may not call this server (start it with --allow-uid {uid} or --allow-gid {gid})"
    )]
    PeerNotAllowed {
        /// The peer's uid.
        uid: u32,
        /// The peer's gid.
        gid: u32,
    },
    /// The server is at its connection limit.
    #[error("too many connections: the server's limit of {limit} is reached, try again later")]
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
    /// The peer's uid (or, on TCP, all TCP peers together) is at its connection limit.
    #[error(
        "too many connections from this user: the server's per-uid limit of {limit} is reached, close some first"
    )]
    TooManyForPeer {
        /// The limit.
        limit: usize,
    },
    /// The handshake frame was not understood.
    #[error("malformed handshake: {}", Untrusted(.0))]
    Malformed(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Why a handshake frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The frame does not start with [`MAGIC`]: the peer speaks another protocol.
    #[error("peer does not speak this protocol (bad magic)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {0}, this build speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion(u16),
    /// The frame or its body is invalid.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl From<std::io::Error> for HandshakeError {
    fn from(err: std::io::Error) -> Self {
        HandshakeError::Codec(CodecError::Io(err))
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    use super::*;

    fn round_trip<M: HandshakeMessage + Clone + fmt::Debug + PartialEq>(msg: M) -> M {
        let mut wire = BytesMut::new();
        HandshakeCodec::<(), M>::new()
            .encode(msg, &mut wire)
            .expect("encodes");
        HandshakeCodec::<M, ()>::new()
            .decode(&mut wire)
            .expect("decodes")
            .expect("complete")
    }

    #[test]
    fn hello_and_replies_round_trip() {
        let token = Token::from_bytes([7; TOKEN_LEN]);
        let hello = Hello::new("kv", Some(token));
        assert_eq!(round_trip(hello.clone()), hello);
        let offering = Hello::new("kv", None).with_shm(ShmSize::default());
        assert_eq!(round_trip(offering.clone()), offering);
        let refused = HelloReply::Refused(Refusal::PeerNotAllowed { uid: 5, gid: 6 });
        assert_eq!(round_trip(refused.clone()), refused);
        for bytes in [crate::wire::MIN_MAX_FRAME, 1 << 20, u32::MAX as usize] {
            let accepted = HelloReply::Accepted {
                server_version: "0.1.0".into(),
                max_frame: FrameLimit::new(bytes).expect("in range"),
                schema_hash: SchemaHash(0x0123_4567_89ab_cdef),
                shm: ShmSize::new(1 << 20).expect("in range"),
            };
            assert_eq!(round_trip(accepted.clone()), accepted);
        }
    }

    /// A reply frame of `version` whose body is `body` as is.
    fn reply_frame(version: u16, body: &[u8]) -> BytesMut {
        let mut src = BytesMut::new();
        src.put_u32(u32::try_from(6 + body.len()).expect("small"));
        src.put_slice(&MAGIC);
        src.put_u16(version);
        src.put_slice(body);
        src
    }

    fn decode_reply(mut src: BytesMut) -> Result<Option<HelloReply>, HandshakeError> {
        HandshakeCodec::<HelloReply, Hello>::new().decode(&mut src)
    }

    #[test]
    fn an_accepted_reply_carries_the_frame_limit_as_a_u32_then_the_schema_hash_and_shm_size() {
        let mut wire = BytesMut::new();
        let accepted = HelloReply::Accepted {
            server_version: "v".into(),
            max_frame: FrameLimit::new(0x0001_2345).expect("in range"),
            schema_hash: SchemaHash(0x0102_0304_0506_0708),
            shm: ShmSize::new(0x0001_0000).expect("in range"),
        };
        HandshakeCodec::<(), HelloReply>::new()
            .encode(accepted, &mut wire)
            .expect("encodes");
        // Variant 0, the version string (u64 length, bytes), the limit, the schema hash, then the
        // shared-memory size, little-endian.
        let body = &wire[4 + 6..];
        assert_eq!(
            body,
            [
                &[0, 0, 0, 0][..],
                &[1, 0, 0, 0, 0, 0, 0, 0],
                b"v",
                &[0x45, 0x23, 1, 0],
                &[8, 7, 6, 5, 4, 3, 2, 1],
                &[0, 0, 1, 0, 0, 0, 0, 0],
            ]
            .concat()
        );
    }

    #[test]
    fn an_accepted_reply_with_an_out_of_range_frame_limit_does_not_decode() {
        for limit in [0u32, 1, crate::wire::MIN_MAX_FRAME as u32 - 1] {
            let body = [
                &[0u8, 0, 0, 0][..],
                &[0; 8],
                &limit.to_le_bytes(),
                &[0; 8],
                &[0; 8],
            ]
            .concat();
            match decode_reply(reply_frame(PROTOCOL_VERSION, &body)) {
                Err(HandshakeError::Codec(err @ CodecError::Malformed(_))) => assert!(
                    crate::error_chain(&err).contains("unusable frame limit"),
                    "{err}"
                ),
                other => panic!("a limit of {limit} gave {other:?}"),
            }
        }
        let body = [
            &[0u8, 0, 0, 0][..],
            &[0; 8],
            &4096u32.to_le_bytes(),
            &[0; 8],
            &[0; 8],
        ]
        .concat();
        assert!(decode_reply(reply_frame(PROTOCOL_VERSION, &body)).is_ok());
        // A shared-memory size out of range does not decode either.
        let body = [
            &[0u8, 0, 0, 0][..],
            &[0; 8],
            &4096u32.to_le_bytes(),
            &[0; 8],
            &1000u64.to_le_bytes(),
        ]
        .concat();
        assert!(decode_reply(reply_frame(PROTOCOL_VERSION, &body)).is_err());
    }

    #[test]
    fn a_refusal_from_a_server_of_another_version_still_reads() {
        // What a version-1 server sends a version-2 client: variant 1, then the refusal.
        let refusal = Refusal::UnsupportedVersion {
            requested: PROTOCOL_VERSION,
            supported: 1,
        };
        let mut body = BytesMut::new();
        HandshakeCodec::<(), HelloReply>::format()
            .encode_body(&HelloReply::Refused(refusal.clone()), &mut body)
            .expect("encodes");
        assert_eq!(body[..4], [1, 0, 0, 0], "Refused is variant 1");
        let reply = decode_reply(reply_frame(1, &body)).expect("reads");
        assert_eq!(reply, Some(HelloReply::Refused(refusal)));
    }

    #[test]
    fn an_acceptance_from_a_server_of_another_version_names_its_version() {
        // A version-1 acceptance: variant 0 and a version string, no frame limit.
        let body = [&[0u8, 0, 0, 0][..], &[5, 0, 0, 0, 0, 0, 0, 0], b"0.1.0"].concat();
        assert!(matches!(
            decode_reply(reply_frame(1, &body)),
            Err(HandshakeError::UnsupportedVersion(1))
        ));
    }

    #[test]
    fn refusals_display_peer_supplied_text_escaped() {
        let refusal = Refusal::UnknownService {
            requested: "\x1b[2Jkv\nFORGED".into(),
            available: vec!["\x1b]0;pwned\x07".into(), "kv".into()],
        };
        let text = refusal.to_string();
        assert!(!crate::untrusted::has_unsafe_chars(&text), "{text:?}");
        assert_eq!(
            text,
            r"unknown service `\u{1b}[2Jkv\u{a}FORGED` (this server hosts: \u{1b}]0;pwned\u{7}, kv)"
        );
        let malformed = Refusal::Malformed("bad\r\nline".into()).to_string();
        assert_eq!(malformed, r"malformed handshake: bad\u{d}\u{a}line");
    }

    #[test]
    fn wrong_magic_is_reported_as_soon_as_it_arrives() {
        let mut src = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            HandshakeCodec::<Hello, HelloReply>::new().decode(&mut src),
            Err(HandshakeError::BadMagic)
        ));
    }

    #[test]
    fn another_version_is_refused_before_its_body_is_read() {
        let mut src = BytesMut::new();
        src.put_u32(6 + 3);
        src.put_slice(&MAGIC);
        src.put_u16(PROTOCOL_VERSION + 1);
        src.put_slice(b"???");
        assert!(matches!(
            HandshakeCodec::<Hello, HelloReply>::new().decode(&mut src),
            Err(HandshakeError::UnsupportedVersion(v)) if v == PROTOCOL_VERSION + 1
        ));
    }

    #[test]
    fn tokens_print_and_parse_as_hex_and_compare_by_value() {
        let token = Token::from_bytes([0xab; TOKEN_LEN]);
        let text = token.to_string();
        assert_eq!(text.len(), 64);
        let parsed: Token = text.parse().expect("valid hex");
        assert!(parsed.matches(&token));
        assert!(!Token::from_bytes([0; TOKEN_LEN]).matches(&token));
        assert!("xyz".parse::<Token>().is_err());
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }
}
