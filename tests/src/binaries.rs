//! Finding the binaries under test, built once per test process.
//!
//! `cargo test` builds only the test targets of the package under test, not other packages'
//! binaries, so the first caller runs `$CARGO build -p rpc-server -p rpc-client --bins -p
//! examples --example notes_daemon` (with `--release` when the tests themselves are a release
//! build) and finds them in `target/<profile>/`, next to the test executable's `deps/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Paths of the binaries under test.
#[derive(Debug)]
struct Binaries {
    server: PathBuf,
    client: PathBuf,
    notes_daemon: PathBuf,
}

/// Builds the binaries once per test process and returns their paths.
fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable has a path");
        // The test executable is target/<profile>/deps/<test>-<hash>; the binaries are built to
        // target/<profile>/.
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps")
            .to_owned();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "rpc-server", "-p", "rpc-client", "--bins"]);
        build.args(["-p", "examples", "--example", "notes_daemon"]);
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "building rpc-server, rpc-client and notes_daemon failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let binaries = Binaries {
            server: profile_dir.join("rpc-server"),
            client: profile_dir.join("rpc-client"),
            notes_daemon: profile_dir.join("examples").join("notes_daemon"),
        };
        for binary in [&binaries.server, &binaries.client, &binaries.notes_daemon] {
            assert!(binary.is_file(), "{} was not built", binary.display());
        }
        binaries
    })
}

/// The `rpc-server` binary, built on first use.
pub fn server_binary() -> &'static Path {
    &binaries().server
}

/// The `rpc-client` binary, built on first use.
pub fn client_binary() -> &'static Path {
    &binaries().client
}

/// The `notes_daemon` example (a service of one's own, served as a daemon), built on first use.
pub fn notes_daemon_binary() -> &'static Path {
    &binaries().notes_daemon
}
