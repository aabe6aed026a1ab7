//! An existing runtime directory that other users can write to: refused, unless it is sticky
//! and the socket is in a private directory elsewhere.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tests::{TestDir, assert_serves_calls};

/// Creates `dir` with exactly `mode`, whatever the umask.
fn create_with_mode(dir: &Path, mode: u32) {
    fs::create_dir(dir).expect("the directory can be created");
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).expect("the mode can be set");
}

#[test]
fn runtime_dir_other_users_can_write_and_not_sticky_is_refused_with_a_message() {
    for (mode, shown) in [(0o777, "mode 0777"), (0o770, "mode 0770")] {
        let dir = TestDir::new();
        create_with_mode(&dir.runtime_dir(), mode);
        let exit = dir.server().run_to_exit();
        assert!(!exit.status.success(), "started in a {shown} directory");
        assert!(exit.stdout.is_empty(), "it listened: {}", exit.stdout);
        for words in [
            format!(
                "directory {} is writable by other users",
                dir.runtime_dir().display()
            ),
            shown.to_owned(),
            "not sticky".to_owned(),
            "chmod go-w".to_owned(),
        ] {
            assert!(
                exit.stderr.contains(&words),
                "stderr does not say `{words}`: {}",
                exit.stderr
            );
        }
        let location = dir.location();
        assert!(!location.socket_path().exists(), "a socket was left");
        assert!(!location.endpoint_file_path().exists(), "an endpoint file");
        assert_eq!(
            fs::metadata(dir.runtime_dir())
                .expect("still there")
                .permissions()
                .mode()
                & 0o7777,
            mode,
            "the directory's mode was changed"
        );
    }
}

#[test]
fn sticky_shared_runtime_dir_is_refused_for_the_auto_socket() {
    let dir = TestDir::new();
    create_with_mode(&dir.runtime_dir(), 0o1777);
    let exit = dir.server().run_to_exit();
    assert!(!exit.status.success(), "the socket went into a shared dir");
    assert!(
        exit.stderr.contains("mode 1777") && exit.stderr.contains("--listen unix:"),
        "stderr does not say how to use a sticky directory: {}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("falling back to tcp"),
        "a shared directory is not a reason to fall back: {}",
        exit.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_shared_runtime_dir_holds_the_endpoint_file_with_the_socket_in_a_private_dir() {
    let dir = TestDir::new();
    create_with_mode(&dir.runtime_dir(), 0o1777);
    let private = dir.path().join("private");
    create_with_mode(&private, 0o700);
    let socket = private.join("rpc.sock");
    let server = dir
        .server()
        .listen(&format!("unix:{}", socket.display()))
        .start();
    assert!(server.location().endpoint_file_path().is_file());
    assert!(!server.location().socket_path().exists());
    // By name: no socket in the runtime directory, so the endpoint file leads to the private one.
    assert_serves_calls(&server.connector()).await;
}
