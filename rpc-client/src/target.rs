//! Which server to connect to, and how that becomes a list of endpoints to try.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use rpc_core::endpoint_file::MAX_ENDPOINT_FILE_LEN;
use rpc_core::{Endpoint, EndpointFile, ServerLocation, Token};

use crate::error::ConnectError;

/// The environment variable naming an endpoint to connect to, e.g. `unix:/run/app.sock`.
pub const RPC_ENDPOINT: &str = "RPC_ENDPOINT";

/// The environment variable holding the token for a TCP endpoint given explicitly.
pub const RPC_TOKEN: &str = "RPC_TOKEN";

/// The server a client wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This endpoint, with the token to present if it is TCP.
    Endpoint {
        /// The endpoint.
        endpoint: Endpoint,
        /// The TCP token.
        token: Option<Token>,
    },
    /// The server of this name: its Unix socket first, then the endpoints in its endpoint file.
    Name(ServerLocation),
}

impl Target {
    /// `RPC_ENDPOINT` (with `RPC_TOKEN`) when set, else the server named by `location`.
    pub fn from_env_or(location: ServerLocation) -> Result<Self, ConnectError> {
        match std::env::var(RPC_ENDPOINT) {
            Ok(text) if !text.is_empty() => {
                let endpoint = text
                    .parse::<Endpoint>()
                    .map_err(|source| ConnectError::BadEnv {
                        var: RPC_ENDPOINT,
                        reason: source.to_string(),
                    })?;
                Ok(Target::Endpoint {
                    endpoint,
                    token: token_from_env()?,
                })
            }
            _ => Ok(Target::Name(location)),
        }
    }

    /// An explicit endpoint; a TCP one takes its token from `RPC_TOKEN`.
    pub fn endpoint(endpoint: Endpoint) -> Result<Self, ConnectError> {
        Ok(Target::Endpoint {
            endpoint,
            token: token_from_env()?,
        })
    }

    /// The endpoints to try, in order, each with the token to present.
    pub(crate) fn candidates(&self) -> Result<Vec<(Endpoint, Option<Token>)>, ConnectError> {
        match self {
            Target::Endpoint { endpoint, token } => Ok(vec![(endpoint.clone(), token.clone())]),
            Target::Name(location) => {
                let mut candidates = Vec::new();
                let socket = location.socket_path();
                let socket_exists = fs::symlink_metadata(&socket)
                    .map(|m| m.file_type().is_socket())
                    .unwrap_or(false);
                if socket_exists {
                    candidates.push((Endpoint::Unix(socket), None));
                }
                match read_endpoint_file(&location.endpoint_file_path()) {
                    Ok(Some(file)) => {
                        for endpoint in file.endpoints {
                            if !candidates.iter().any(|(e, _)| *e == endpoint) {
                                candidates.push((endpoint, file.token.clone()));
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(err) if candidates.is_empty() => return Err(err),
                    Err(err) => tracing::debug!(error = %err, "ignoring unreadable endpoint file"),
                }
                if candidates.is_empty() {
                    return Err(ConnectError::NotRunning {
                        name: location.name().to_owned(),
                        socket: location.socket_path(),
                        endpoint_file: location.endpoint_file_path(),
                    });
                }
                Ok(candidates)
            }
        }
    }
}

fn token_from_env() -> Result<Option<Token>, ConnectError> {
    match std::env::var(RPC_TOKEN) {
        Ok(text) if !text.is_empty() => {
            text.parse()
                .map(Some)
                .map_err(
                    |err: rpc_core::handshake::TokenParseError| ConnectError::BadEnv {
                        var: RPC_TOKEN,
                        reason: err.to_string(),
                    },
                )
        }
        _ => Ok(None),
    }
}

/// Reads an endpoint file, if there is one: never through a symlink, only a regular file owned by
/// this user or root, at most [`MAX_ENDPOINT_FILE_LEN`] bytes.
pub fn read_endpoint_file(path: &Path) -> Result<Option<EndpointFile>, ConnectError> {
    let bad = |reason: String| ConnectError::EndpointFile {
        path: path.to_owned(),
        reason,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(bad(err.to_string())),
    };
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    let me = rustix::process::getuid().as_raw();
    if !meta.is_file() {
        return Err(bad("not a regular file".to_owned()));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(bad(format!(
            "owned by uid {}, not by this user: it may not be your server's",
            meta.uid()
        )));
    }
    let mut text = String::new();
    // One byte more than allowed, so a file over the limit is refused as such instead of being
    // cut short and failing to parse.
    file.take(MAX_ENDPOINT_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    if text.len() as u64 > MAX_ENDPOINT_FILE_LEN {
        return Err(bad(format!(
            "larger than {MAX_ENDPOINT_FILE_LEN} bytes: not an endpoint file"
        )));
    }
    EndpointFile::from_json(&text)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}
