//! Where a server listens and a client connects: `unix:/abs/path.sock` or `tcp:127.0.0.1:PORT`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The longest path a Unix socket address can hold on this OS, in bytes: `sun_path` less its
/// terminating NUL. Linux and Android: `sun_path` is 108 bytes, so 107.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const MAX_UNIX_PATH_LEN: usize = 107;

/// The longest path a Unix socket address can hold on this OS, in bytes: `sun_path` less its
/// terminating NUL. macOS, iOS and the BSDs: `sun_path` is 104 bytes, so 103; any other OS gets
/// the same, the smaller of the two common sizes, so a path that fits here fits everywhere.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const MAX_UNIX_PATH_LEN: usize = 103;

/// A local endpoint: a Unix domain socket path or a TCP loopback address.
///
/// The text form round-trips through [`FromStr`] and [`fmt::Display`]:
/// `unix:/run/user/1000/rpc.sock`, `tcp:127.0.0.1:7000`, `tcp:[::1]:7000`. TCP endpoints are
/// loopback only: this framework is for processes on one machine, and a TCP endpoint that could
/// be reached from the network is refused at parse time rather than at bind time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix domain socket at an absolute path.
    Unix(PathBuf),
    /// A TCP socket on a loopback address (`127.0.0.0/8` or `::1`). Port 0 asks for any free port.
    Tcp(SocketAddr),
}

/// Why a string is not an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointParseError {
    /// The string has no `unix:` or `tcp:` prefix.
    #[error("endpoint `{0}` has no scheme: write `unix:/abs/path.sock` or `tcp:127.0.0.1:PORT`")]
    MissingScheme(String),
    /// The prefix is neither `unix:` nor `tcp:`.
    #[error("endpoint `{input}` has unknown scheme `{scheme}`: use `unix:` or `tcp:`")]
    UnknownScheme {
        /// The whole input.
        input: String,
        /// The scheme found.
        scheme: String,
    },
    /// A `unix:` path that is not absolute.
    #[error("unix endpoint path `{0}` is not absolute: write `unix:/abs/path.sock`")]
    RelativePath(String),
    /// A `unix:` path longer than the kernel accepts.
    #[error(
        "unix endpoint path `{path}` is {len} bytes, longer than the kernel's limit of {max}: use a shorter path"
    )]
    PathTooLong {
        /// The path.
        path: String,
        /// Its length in bytes.
        len: usize,
        /// [`MAX_UNIX_PATH_LEN`].
        max: usize,
    },
    /// A `tcp:` address that is not `IP:PORT`.
    #[error("tcp endpoint `{0}` is not an address: write `tcp:127.0.0.1:PORT` or `tcp:[::1]:PORT`")]
    BadAddress(String),
    /// A `tcp:` address that is not on a loopback interface.
    #[error(
        "tcp endpoint `{0}` is not a loopback address: only 127.0.0.0/8 and ::1 are allowed, so the server is never reachable from the network"
    )]
    NotLoopback(SocketAddr),
}

impl Endpoint {
    /// The Unix socket path, if this is a Unix endpoint.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Tcp(_) => None,
        }
    }

    /// Whether this is a TCP endpoint (which needs a token in the handshake).
    pub fn is_tcp(&self) -> bool {
        matches!(self, Endpoint::Tcp(_))
    }
}

impl FromStr for Endpoint {
    type Err = EndpointParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(EndpointParseError::MissingScheme(input.to_owned()));
        };
        match scheme {
            "unix" => {
                let path = Path::new(rest);
                if !path.is_absolute() {
                    return Err(EndpointParseError::RelativePath(rest.to_owned()));
                }
                if rest.len() > MAX_UNIX_PATH_LEN {
                    return Err(EndpointParseError::PathTooLong {
                        path: rest.to_owned(),
                        len: rest.len(),
                        max: MAX_UNIX_PATH_LEN,
                    });
                }
                Ok(Endpoint::Unix(path.to_owned()))
            }
            "tcp" => {
                let addr: SocketAddr = rest
                    .parse()
                    .map_err(|_| EndpointParseError::BadAddress(rest.to_owned()))?;
                if !addr.ip().is_loopback() {
                    return Err(EndpointParseError::NotLoopback(addr));
                }
                Ok(Endpoint::Tcp(addr))
            }
            _ => Err(EndpointParseError::UnknownScheme {
                input: input.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_form_round_trips() {
        for text in [
            "unix:/run/user/1000/rpc.sock",
            "tcp:127.0.0.1:7000",
            "tcp:127.0.0.2:0",
            "tcp:[::1]:7000",
        ] {
            let endpoint: Endpoint = text.parse().expect(text);
            assert_eq!(endpoint.to_string(), text);
        }
    }

    #[test]
    fn malformed_endpoints_are_refused_with_the_reason() {
        type Check = fn(&EndpointParseError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("/tmp/x.sock", |e| {
                matches!(e, EndpointParseError::MissingScheme(_))
            }),
            ("http:1", |e| {
                matches!(e, EndpointParseError::UnknownScheme { .. })
            }),
            ("unix:rel.sock", |e| {
                matches!(e, EndpointParseError::RelativePath(_))
            }),
            ("tcp:localhost:80", |e| {
                matches!(e, EndpointParseError::BadAddress(_))
            }),
            ("tcp:127.0.0.1", |e| {
                matches!(e, EndpointParseError::BadAddress(_))
            }),
            ("tcp:0.0.0.0:80", |e| {
                matches!(e, EndpointParseError::NotLoopback(_))
            }),
            ("tcp:[::]:80", |e| {
                matches!(e, EndpointParseError::NotLoopback(_))
            }),
        ];
        for (text, expected) in cases {
            let err = text.parse::<Endpoint>().expect_err(text);
            assert!(expected(&err), "{text}: unexpected error {err}");
        }
    }

    #[test]
    fn unix_path_length_is_checked_at_the_kernel_limit() {
        let at_limit = format!("/{}", "a".repeat(MAX_UNIX_PATH_LEN - 1));
        assert!(format!("unix:{at_limit}").parse::<Endpoint>().is_ok());
        let over = format!("/{}", "a".repeat(MAX_UNIX_PATH_LEN));
        assert!(matches!(
            format!("unix:{over}").parse::<Endpoint>(),
            Err(EndpointParseError::PathTooLong { .. })
        ));
    }

    #[test]
    fn serde_uses_the_text_form() {
        let endpoint: Endpoint = "tcp:127.0.0.1:9".parse().expect("valid");
        let json = serde_json::to_string(&endpoint).expect("serializes");
        assert_eq!(json, "\"tcp:127.0.0.1:9\"");
        assert_eq!(
            serde_json::from_str::<Endpoint>(&json).expect("parses"),
            endpoint
        );
    }
}
