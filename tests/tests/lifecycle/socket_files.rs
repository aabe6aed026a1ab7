//! The files a server owns in its runtime directory: their modes, and what it does when it finds
//! something already at their paths.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;

use rpc_client::read_endpoint_file;
use tests::{TestDir, assert_serves_calls};

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|err| panic!("{} is missing: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Creates the runtime directory as the server would (0700), so a test can plant files in it.
fn create_runtime_dir(dir: &TestDir) {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir.runtime_dir())
        .expect("runtime dir can be created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_0600_in_a_0700_runtime_dir_next_to_a_0600_endpoint_file() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let location = server.location();
    assert!(
        fs::symlink_metadata(location.socket_path())
            .expect("socket exists")
            .file_type()
            .is_socket()
    );
    assert_eq!(mode_of(&location.socket_path()), 0o600, "socket mode");
    assert_eq!(mode_of(location.runtime_dir()), 0o700, "runtime dir mode");
    assert_eq!(
        mode_of(&location.endpoint_file_path()),
        0o600,
        "endpoint file mode"
    );

    let leftovers: Vec<_> = fs::read_dir(location.runtime_dir())
        .expect("runtime dir is readable")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name != "rpc.sock" && name != "rpc.endpoint")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_option_sets_the_socket_file_mode() {
    let dir = TestDir::new();
    let server = dir.server().arg("--socket-mode").arg("0660").start();
    assert_eq!(mode_of(&server.location().socket_path()), 0o660);
    assert_eq!(
        mode_of(&server.location().endpoint_file_path()),
        0o600,
        "the endpoint file holds the token and stays private whatever the socket mode"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_with_the_same_name_refuses_to_start_and_the_first_keeps_serving() {
    let dir = TestDir::new();
    let first = dir.server().start();

    let second = dir.server().run_to_exit();
    assert!(!second.status.success(), "the second server started");
    assert!(
        second.stderr.contains("already listening"),
        "stderr does not say why: {}",
        second.stderr
    );
    assert!(
        second.stdout.is_empty(),
        "it claims to listen: {}",
        second.stdout
    );

    let file = read_endpoint_file(&first.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the first server's endpoint file is still there");
    assert_eq!(
        file.pid,
        first.pid(),
        "the endpoint file still names the first server"
    );
    assert_serves_calls(&first.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_with_different_names_share_a_runtime_dir() {
    let dir = TestDir::new();
    let first = dir.server().start();
    let second = dir.server().name("other").start();
    assert_ne!(first.endpoint(), second.endpoint());
    assert_serves_calls(&first.connector()).await;
    assert_serves_calls(&second.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_with_no_listener_is_replaced() {
    let dir = TestDir::new();
    create_runtime_dir(&dir);
    let socket = dir.location().socket_path();
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("binds"));
    assert!(
        socket.exists(),
        "dropping a listener leaves its file behind"
    );

    let server = dir.server().start();
    assert!(
        server.stderr().contains("removing stale socket"),
        "stderr:\n{}",
        server.stderr()
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_left_by_a_killed_server_are_replaced_by_the_next_one() {
    let dir = TestDir::new();
    let mut crashed = dir.server().start();
    crashed.kill();
    let location = dir.location();
    assert!(
        location.socket_path().exists(),
        "SIGKILL leaves the socket behind"
    );
    assert!(
        location.endpoint_file_path().exists(),
        "and the endpoint file"
    );

    let server = dir.server().start();
    let file = read_endpoint_file(&location.endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    assert_eq!(
        file.pid,
        server.pid(),
        "the endpoint file names the new server"
    );
    assert_serves_calls(&server.connector()).await;
}

#[test]
fn regular_file_at_the_socket_path_is_refused_and_left_intact() {
    let dir = TestDir::new();
    create_runtime_dir(&dir);
    let socket = dir.location().socket_path();
    fs::write(&socket, b"precious").expect("write");

    let exit = dir.server().run_to_exit();
    assert!(!exit.status.success(), "the server started anyway");
    assert!(
        exit.stderr.contains("refusing to replace the regular file"),
        "stderr does not say why: {}",
        exit.stderr
    );
    assert_eq!(fs::read(&socket).expect("still there"), b"precious");
    assert!(
        !dir.location().endpoint_file_path().exists(),
        "a server that did not start leaves no endpoint file"
    );
}

#[test]
fn symlink_at_the_socket_path_is_refused_and_its_target_left_intact() {
    let dir = TestDir::new();
    create_runtime_dir(&dir);
    let target = dir.path().join("target.txt");
    fs::write(&target, b"precious").expect("write");
    let target_mode = mode_of(&target);
    let socket = dir.location().socket_path();
    std::os::unix::fs::symlink(&target, &socket).expect("symlink");

    let exit = dir.server().run_to_exit();
    assert!(!exit.status.success(), "the server started anyway");
    assert!(
        exit.stderr.contains("refusing to replace the symlink"),
        "stderr does not say why: {}",
        exit.stderr
    );
    assert!(
        fs::symlink_metadata(&socket)
            .expect("link still there")
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&socket).expect("readable link"), target);
    assert_eq!(fs::read(&target).expect("target still there"), b"precious");
    assert_eq!(mode_of(&target), target_mode, "target mode untouched");
}

#[test]
fn directory_at_the_socket_path_is_refused_and_left_intact() {
    let dir = TestDir::new();
    create_runtime_dir(&dir);
    let socket = dir.location().socket_path();
    fs::create_dir(&socket).expect("mkdir");
    fs::write(socket.join("inside"), b"precious").expect("write");

    let exit = dir.server().run_to_exit();
    assert!(!exit.status.success(), "the server started anyway");
    assert!(
        exit.stderr.contains("refusing to replace the directory"),
        "stderr does not say why: {}",
        exit.stderr
    );
    assert_eq!(
        fs::read(socket.join("inside")).expect("still there"),
        b"precious"
    );
}

#[test]
fn symlink_at_the_endpoint_file_path_is_refused_and_the_bound_socket_removed() {
    let dir = TestDir::new();
    create_runtime_dir(&dir);
    let target = dir.path().join("target.txt");
    fs::write(&target, b"precious").expect("write");
    let endpoint_file = dir.location().endpoint_file_path();
    std::os::unix::fs::symlink(&target, &endpoint_file).expect("symlink");

    let exit = dir.server().run_to_exit();
    assert!(!exit.status.success(), "the server started anyway");
    assert!(
        exit.stderr.contains("endpoint file"),
        "stderr does not say which file: {}",
        exit.stderr
    );
    assert_eq!(fs::read(&target).expect("target still there"), b"precious");
    assert!(
        fs::symlink_metadata(&endpoint_file)
            .expect("link still there")
            .file_type()
            .is_symlink()
    );
    assert!(
        !dir.location().socket_path().exists(),
        "the socket bound before the failure is removed"
    );
}
