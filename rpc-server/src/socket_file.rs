//! Files the server creates in its runtime directory, created safely and removed only if still
//! its own.
//!
//! Rules, whatever is found at a path:
//! - nothing: create;
//! - a socket with a live server behind it: refuse to start;
//! - a socket nobody answers on (left by a crashed server): remove it, then create;
//! - anything else (regular file, directory, symlink): refuse, and leave it untouched.
//!
//! New files appear under their final name only once complete and with their final mode: each is
//! made under a temporary name, given its mode, then renamed with `RENAME_NOREPLACE`, so a file
//! planted in the meantime is never replaced. At shutdown a file is removed only if the path
//! still names the very file (device and inode) the server created.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rpc_core::endpoint::MAX_UNIX_PATH_LEN;
use rustix::fs::{CWD, RenameFlags};

use crate::runtime_dir::{DirUse, ensure_dir};

/// Why a file in the runtime directory could not be created.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The socket path is longer than this OS's `sun_path` holds ([`MAX_UNIX_PATH_LEN`] bytes).
    #[error(
        "socket path {} is {} bytes, over this system's limit of {MAX_UNIX_PATH_LEN} for a unix socket address: use a shorter --runtime-dir or --name",
        path.display(), path.as_os_str().len()
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// The directory could not be created or used.
    #[error("cannot use directory {}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The directory belongs to another user, who could swap files under the server.
    #[error(
        "directory {} belongs to uid {owner}, not to this user: choose a --runtime-dir you own",
        dir.display()
    )]
    ForeignDir {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
    },
    /// Other users may write to the directory, so they could remove, replace or plant the
    /// server's files (see `runtime_dir.rs` for what is accepted).
    #[error(
        "directory {} is writable by other users (mode {mode:04o}){}: use a directory only you can write (chmod go-w), or a --runtime-dir that does not exist yet (it is created 0700)",
        dir.display(),
        if mode & 0o1000 != 0 {
            ", and though it is sticky, a socket there could be planted under the server's name before it starts; a sticky shared --runtime-dir is accepted only with the socket elsewhere (--listen unix:/private/dir/NAME.sock)"
        } else {
            " and not sticky, so any of them could remove or replace the server's socket and endpoint file"
        }
    )]
    SharedDir {
        /// The directory.
        dir: PathBuf,
        /// Its mode, e.g. `0o777`.
        mode: u32,
    },
    /// A live server already listens on the socket.
    #[error(
        "a server is already listening on unix:{}: stop it first, or start this one with another --name",
        path.display()
    )]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not ours is at the path.
    #[error(
        "refusing to replace the {kind} at {}: it was not made by this server; remove it yourself or choose another path",
        path.display()
    )]
    Occupied {
        /// The path.
        path: PathBuf,
        /// What is there: "regular file", "directory", "symlink", ...
        kind: &'static str,
    },
    /// Any other failure at the path.
    #[error("cannot create {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl FileError {
    /// Whether a Unix socket is impossible here, so `auto` mode should fall back to TCP: a path
    /// too long, a directory that cannot be created or written, a system without AF_UNIX.
    /// A live server or a planted file is never a reason to fall back.
    pub fn unix_unavailable(&self) -> bool {
        let denied = |e: &io::Error| {
            matches!(e.raw_os_error(), Some(code) if [
                rustix::io::Errno::ACCESS.raw_os_error(),
                rustix::io::Errno::PERM.raw_os_error(),
                rustix::io::Errno::ROFS.raw_os_error(),
                rustix::io::Errno::AFNOSUPPORT.raw_os_error(),
                rustix::io::Errno::NOTDIR.raw_os_error(),
            ].contains(&code))
        };
        match self {
            FileError::PathTooLong { .. } => true,
            FileError::Dir { source, .. } | FileError::Io { source, .. } => denied(source),
            _ => false,
        }
    }
}

/// A file the server created; removed on drop if the path still names it.
#[derive(Debug)]
pub struct OwnedFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl OwnedFile {
    fn record(path: &Path) -> Result<Self, FileError> {
        let meta = fs::symlink_metadata(path).map_err(|source| io_error(path, source))?;
        Ok(OwnedFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(err) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %err, "could not remove file");
                }
            }
            Ok(_) => tracing::warn!(
                path = %self.path.display(),
                "path now names another file; leaving it in place"
            ),
            Err(_) => {}
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> FileError {
    FileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A failed `bind`: a path the OS finds too long is [`FileError::PathTooLong`] whatever the
/// length check before it assumed (std refuses it with `InvalidInput`, the kernel with
/// `ENAMETOOLONG`), so `auto` falls back to TCP on any OS.
fn bind_error(path: &Path, source: io::Error) -> FileError {
    let too_long = source.kind() == io::ErrorKind::InvalidInput
        || source.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error());
    if too_long {
        FileError::PathTooLong {
            path: path.to_owned(),
        }
    } else {
        io_error(path, source)
    }
}

fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Clears the way for a new socket at `path`: removes a stale socket, refuses anything else.
fn clear_socket_path(path: &Path) -> Result<(), FileError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error(path, err)),
    };
    if !meta.file_type().is_socket() {
        return Err(FileError::Occupied {
            path: path.to_owned(),
            kind: kind_of(meta.file_type()),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(FileError::InUse {
            path: path.to_owned(),
        }),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket left by a server that is gone");
            match fs::remove_file(path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(path, err)),
                _ => Ok(()),
            }
        }
        Err(err) => Err(io_error(path, err)),
    }
}

/// A temporary name next to `path`, short enough to bind a socket at.
fn temporary_name(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let nonce: u32 = {
        let mut bytes = [0u8; 4];
        // A failed random read only makes the name predictable; the pid keeps it ours.
        let _ = getrandom::fill(&mut bytes);
        u32::from_ne_bytes(bytes)
    };
    dir.join(format!(".{}.{nonce:08x}", std::process::id()))
}

/// Moves a finished temporary file to `path` unless something appeared there meanwhile.
fn publish(tmp: &Path, path: &Path) -> Result<(), FileError> {
    rustix::fs::renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE).map_err(|errno| {
        let _ = fs::remove_file(tmp);
        match fs::symlink_metadata(path) {
            Ok(meta) if errno == rustix::io::Errno::EXIST => FileError::Occupied {
                path: path.to_owned(),
                kind: kind_of(meta.file_type()),
            },
            _ => io_error(path, errno.into()),
        }
    })
}

/// Binds a Unix listener at `path` with permissions `mode`, following the rules above.
pub fn bind_socket(
    path: &Path,
    mode: u32,
) -> Result<(std::os::unix::net::UnixListener, OwnedFile), FileError> {
    if path.as_os_str().len() > MAX_UNIX_PATH_LEN {
        return Err(FileError::PathTooLong {
            path: path.to_owned(),
        });
    }
    if let Some(dir) = path.parent() {
        ensure_dir(dir, DirUse::Socket)?;
    }
    clear_socket_path(path)?;
    let tmp = temporary_name(path);
    let listener = if tmp.as_os_str().len() <= MAX_UNIX_PATH_LEN {
        let listener =
            std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| bind_error(path, e))?;
        if let Err(err) = fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)) {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(path, err));
        }
        publish(&tmp, path)?;
        listener
    } else {
        // The temporary name would not fit: bind in place, then set the mode. The socket is
        // briefly at the umask's mode, inside a directory that is 0700 when we created it.
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                FileError::InUse {
                    path: path.to_owned(),
                }
            } else {
                bind_error(path, e)
            }
        })?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(path, e))?;
        listener
    };
    let owned = OwnedFile::record(path)?;
    Ok((listener, owned))
}

/// Writes `contents` to `path` with mode 0600, following the rules above; an earlier file of
/// ours (same owner, a regular file) left by a crashed server is replaced.
pub fn write_private_file(path: &Path, contents: &str) -> Result<OwnedFile, FileError> {
    if let Some(dir) = path.parent() {
        ensure_dir(dir, DirUse::EndpointFile)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let me = rustix::process::getuid().as_raw();
            if !meta.file_type().is_file() || meta.uid() != me {
                return Err(FileError::Occupied {
                    path: path.to_owned(),
                    kind: kind_of(meta.file_type()),
                });
            }
            tracing::info!(path = %path.display(), "replacing endpoint file left by a server that is gone");
            fs::remove_file(path).map_err(|e| io_error(path, e))?;
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error(path, err)),
    }
    let tmp = temporary_name(path);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        });
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(path, err));
    }
    publish(&tmp, path)?;
    OwnedFile::record(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_created_with_the_mode_asked_for_and_removed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/sub/s.sock");
        let (_listener, owned) = bind_socket(&path, 0o600).expect("binds");
        let meta = fs::symlink_metadata(&path).expect("exists");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(path.parent().expect("parent"))
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        drop(owned);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let (listener, owned) = bind_socket(&path, 0o600).expect("binds");
        assert!(matches!(
            bind_socket(&path, 0o600),
            Err(FileError::InUse { .. })
        ));
        drop(listener);
        std::mem::forget(owned); // leave the socket file behind, as a crash would
        let (_listener, _owned) = bind_socket(&path, 0o600).expect("stale socket replaced");
    }

    #[test]
    fn planted_files_and_symlinks_are_refused_and_left_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.sock");
        fs::write(&file, b"precious").expect("write");
        assert!(matches!(
            bind_socket(&file, 0o600),
            Err(FileError::Occupied {
                kind: "regular file",
                ..
            })
        ));
        assert_eq!(fs::read(&file).expect("still there"), b"precious");

        let link = dir.path().join("l.endpoint");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(matches!(
            write_private_file(&link, "{}"),
            Err(FileError::Occupied {
                kind: "symlink",
                ..
            })
        ));
        assert_eq!(fs::read(&file).expect("target intact"), b"precious");
        assert!(
            fs::symlink_metadata(&link)
                .expect("link intact")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn private_files_are_0600_and_removed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.endpoint");
        let owned = write_private_file(&path, "{}").expect("writes");
        assert_eq!(
            fs::metadata(&path).expect("exists").permissions().mode() & 0o777,
            0o600
        );
        drop(owned);
        assert!(!path.exists());
    }

    /// The limit is this OS's: a path of exactly [`MAX_UNIX_PATH_LEN`] bytes binds, one byte
    /// more is refused by the OS itself (std checks against the real `sun_path`), and both
    /// failures ask `auto` to fall back.
    #[test]
    fn the_path_limit_is_this_systems_sun_path_less_its_nul() {
        let dir = tempfile::tempdir().expect("tempdir");
        let padding = MAX_UNIX_PATH_LEN - dir.path().as_os_str().len() - 1;
        let at_limit = dir.path().join("a".repeat(padding));
        assert_eq!(at_limit.as_os_str().len(), MAX_UNIX_PATH_LEN);
        std::os::unix::net::UnixListener::bind(&at_limit).expect("a path at the limit binds");
        let over = dir.path().join("b".repeat(padding + 1));
        let err = std::os::unix::net::UnixListener::bind(&over).expect_err("one byte over");
        assert!(bind_error(&over, err).unix_unavailable());
    }

    #[test]
    fn an_overlong_path_asks_for_fallback() {
        let path = PathBuf::from(format!("/tmp/{}.sock", "x".repeat(120)));
        let err = bind_socket(&path, 0o600).expect_err("too long");
        assert!(err.unix_unavailable());
    }
}
