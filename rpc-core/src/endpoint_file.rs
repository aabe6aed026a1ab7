//! The endpoint file: the JSON a running server leaves at `<runtime-dir>/<name>.endpoint`.
//!
//! It lists every endpoint the server listens on, the TCP token if it has TCP endpoints, and its
//! pid. The server writes it with mode 0600 once it is listening and removes it on shutdown; a
//! client that finds the server by name reads it. This module owns only the format.

use serde::{Deserialize, Serialize};

use crate::{Endpoint, Token};

/// The largest endpoint file a client reads.
pub const MAX_ENDPOINT_FILE_LEN: u64 = 64 * 1024;

/// The contents of an endpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointFile {
    /// The server's process id.
    pub pid: u32,
    /// Every endpoint it listens on, Unix sockets first.
    pub endpoints: Vec<Endpoint>,
    /// The token TCP endpoints require, as hex.
    #[serde(with = "token_hex", default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
}

impl EndpointFile {
    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses an endpoint file's text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

mod token_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Token;

    pub fn serialize<S: Serializer>(token: &Option<Token>, s: S) -> Result<S::Ok, S::Error> {
        match token {
            Some(token) => s.collect_str(token),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Token>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::TOKEN_LEN;

    #[test]
    fn endpoint_file_round_trips_through_json() {
        let file = EndpointFile {
            pid: 42,
            endpoints: vec![
                "unix:/run/rpc.sock".parse().expect("valid"),
                "tcp:127.0.0.1:4000".parse().expect("valid"),
            ],
            token: Some(Token::from_bytes([0x5a; TOKEN_LEN])),
        };
        let json = file.to_json();
        assert!(json.contains(&"5a".repeat(TOKEN_LEN)));
        assert_eq!(EndpointFile::from_json(&json).expect("parses"), file);
    }
}
