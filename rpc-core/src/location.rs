//! Where a named server keeps its socket and endpoint file, agreed by server and client.

use std::path::{Path, PathBuf};

/// The server name used when none is given.
pub const DEFAULT_NAME: &str = "rpc";

/// The environment variable that holds the runtime directory on most Linux desktops.
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";

/// The longest server name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A server's name and runtime directory; from them follow its socket path and endpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLocation {
    runtime_dir: PathBuf,
    name: String,
}

/// Why a server name is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid server name `{0}`: use 1 to {MAX_NAME_LEN} characters from a-z A-Z 0-9 . _ -, not starting with a dot"
)]
pub struct InvalidName(pub String);

impl ServerLocation {
    /// A location for `name` in `runtime_dir`, or in [`default_runtime_dir`] when `None`.
    pub fn new(runtime_dir: Option<PathBuf>, name: &str) -> Result<Self, InvalidName> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(InvalidName(name.to_owned()));
        }
        Ok(ServerLocation {
            runtime_dir: runtime_dir.unwrap_or_else(default_runtime_dir),
            name: name.to_owned(),
        })
    }

    /// The runtime directory.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<runtime-dir>/<name>.sock`.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir.join(format!("{}.sock", self.name))
    }

    /// `<runtime-dir>/<name>.endpoint`.
    pub fn endpoint_file_path(&self) -> PathBuf {
        self.runtime_dir.join(format!("{}.endpoint", self.name))
    }
}

/// `$XDG_RUNTIME_DIR` when set to an absolute path, else `/tmp/rpc-<uid>`.
pub fn default_runtime_dir() -> PathBuf {
    match std::env::var_os(XDG_RUNTIME_DIR).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => PathBuf::from(format!("/tmp/rpc-{}", rustix::process::getuid().as_raw())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_from_name_and_dir() {
        let loc = ServerLocation::new(Some("/run/x".into()), "kv-1").expect("valid");
        assert_eq!(loc.socket_path(), Path::new("/run/x/kv-1.sock"));
        assert_eq!(loc.endpoint_file_path(), Path::new("/run/x/kv-1.endpoint"));
    }

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", &"n".repeat(MAX_NAME_LEN + 1)] {
            assert!(ServerLocation::new(None, bad).is_err(), "{bad:?}");
        }
        assert!(ServerLocation::new(None, &"n".repeat(MAX_NAME_LEN)).is_ok());
    }
}
