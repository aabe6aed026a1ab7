//! The directories the server's files go in: created private when missing, and, when they
//! already exist, used only if no other user can swap files in them.
//!
//! What is accepted for an existing directory:
//! - it is owned by the server's uid or by root;
//! - no other user may write to it (no group or other write bit), or, for a directory that
//!   holds only the endpoint file, it is sticky (like `/tmp`, mode `1777`): there another user
//!   may create names, but may not remove or rename the server's files;
//! - a directory that holds a socket is never shared: in a sticky directory another user could
//!   still plant a socket under the server's name before it starts.
//!
//! So `--runtime-dir /tmp --listen unix:/home/me/run/rpc.sock` is accepted (the endpoint file in
//! sticky `/tmp`, the socket in a private directory), `--runtime-dir /tmp` with `auto` is not.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use crate::socket_file::FileError;

/// Write bits for the group and for others: anyone but the owner who may write here could
/// remove, rename or plant files.
const SHARED_WRITE: u32 = 0o022;

/// The sticky bit: in such a directory only a file's owner (or the directory's, or root) may
/// remove or rename it.
const STICKY: u32 = 0o1000;

/// What a directory is to hold, which decides whether a shared sticky one will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirUse {
    /// A Unix socket: the directory must be private.
    Socket,
    /// The endpoint file: a private directory, or a sticky shared one.
    EndpointFile,
}

/// Creates `dir` (and missing parents) with mode 0700, or checks an existing one against the
/// rules above for holding `what`.
pub(crate) fn ensure_dir(dir: &Path, what: DirUse) -> Result<(), FileError> {
    let dir_error = |source| FileError::Dir {
        dir: dir.to_owned(),
        source,
    };
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(dir_error(io::Error::from(io::ErrorKind::NotADirectory))),
        Ok(meta) => check_existing(dir, meta.uid(), meta.mode(), what),
        Err(err) if err.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(dir_error),
        Err(err) => Err(dir_error(err)),
    }
}

/// The owner and mode rules for a directory that already exists.
fn check_existing(dir: &Path, owner: u32, mode: u32, what: DirUse) -> Result<(), FileError> {
    let me = rustix::process::getuid().as_raw();
    if owner != me && owner != 0 {
        return Err(FileError::ForeignDir {
            dir: dir.to_owned(),
            owner,
        });
    }
    let shared = mode & SHARED_WRITE != 0;
    let sticky = mode & STICKY != 0;
    if shared && !(sticky && what == DirUse::EndpointFile) {
        return Err(FileError::SharedDir {
            dir: dir.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: u32, what: DirUse) -> Result<(), FileError> {
        let me = rustix::process::getuid().as_raw();
        check_existing(Path::new("/d"), me, mode, what)
    }

    #[test]
    fn private_directories_hold_anything() {
        for mode in [0o700, 0o755, 0o711, 0o1700] {
            assert!(check(mode, DirUse::Socket).is_ok(), "{mode:o}");
            assert!(check(mode, DirUse::EndpointFile).is_ok(), "{mode:o}");
        }
    }

    #[test]
    fn directories_others_may_write_are_refused_unless_sticky_and_without_the_socket() {
        for mode in [0o777, 0o775, 0o770, 0o757] {
            for what in [DirUse::Socket, DirUse::EndpointFile] {
                assert!(
                    matches!(check(mode, what), Err(FileError::SharedDir { .. })),
                    "{mode:o} {what:?}"
                );
            }
        }
        assert!(matches!(
            check(0o1777, DirUse::Socket),
            Err(FileError::SharedDir { mode: 0o1777, .. })
        ));
        assert!(check(0o1777, DirUse::EndpointFile).is_ok());
        assert!(check(0o1770, DirUse::EndpointFile).is_ok());
    }

    #[test]
    fn a_directory_of_another_user_is_refused_and_roots_accepted() {
        let other = rustix::process::getuid().as_raw().wrapping_add(1).max(1);
        assert!(matches!(
            check_existing(Path::new("/d"), other, 0o700, DirUse::Socket),
            Err(FileError::ForeignDir { .. })
        ));
        assert!(check_existing(Path::new("/d"), 0, 0o755, DirUse::Socket).is_ok());
    }
}
