//! `auto` listening: a Unix socket when the path fits in `sun_path`, TCP loopback when it does not.

use std::path::{Path, PathBuf};

use rpc_core::Endpoint;
use rpc_core::endpoint::MAX_UNIX_PATH_LEN;
use tests::{TestDir, assert_serves_calls, run_client_in};

/// A runtime directory inside `base` whose `rpc.sock` path is exactly `socket_len` bytes long.
fn runtime_dir_with_socket_path_of(base: &Path, socket_len: usize) -> PathBuf {
    let fixed = base.as_os_str().len() + "/".len() + "/rpc.sock".len();
    assert!(
        fixed < socket_len,
        "the temporary directory {} is too long for this test",
        base.display()
    );
    let dir = base.join("d".repeat(socket_len - fixed));
    assert_eq!(dir.join("rpc.sock").as_os_str().len(), socket_len);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_tcp_loopback_when_the_socket_path_is_too_long() {
    let dir = TestDir::new();
    let long_dir = dir
        .path()
        .join("a-runtime-directory-with-a-rather-long-name")
        .join("x".repeat(80));
    assert!(long_dir.join("rpc.sock").as_os_str().len() > MAX_UNIX_PATH_LEN);

    let server = dir.server().runtime_dir(&long_dir).start();
    let Endpoint::Tcp(addr) = server.endpoint() else {
        panic!("expected a tcp fallback, got {}", server.endpoint());
    };
    assert!(addr.ip().is_loopback(), "fallback is loopback only: {addr}");
    assert!(
        server.stderr().contains("falling back to tcp loopback"),
        "the fallback is logged with its reason; stderr:\n{}",
        server.stderr()
    );
    assert!(
        server.location().endpoint_file_path().is_file(),
        "the endpoint file tells clients where the server went"
    );

    // A client that knows only the name finds the TCP endpoint and its token in the endpoint file.
    assert_serves_calls(&server.connector()).await;
    let health = run_client_in(&long_dir, &["health"], &[]).json();
    assert_eq!(health["pid"], serde_json::json!(server.pid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_paths_up_to_the_kernel_limit_are_used_and_one_byte_over_falls_back() {
    let dir = TestDir::new();
    for len in [MAX_UNIX_PATH_LEN - 1, MAX_UNIX_PATH_LEN] {
        let runtime_dir = runtime_dir_with_socket_path_of(dir.path(), len);
        let server = dir.server().runtime_dir(&runtime_dir).start();
        assert_eq!(
            server.endpoint(),
            &Endpoint::Unix(runtime_dir.join("rpc.sock")),
            "a {len}-byte socket path fits"
        );
        assert_serves_calls(&server.connector()).await;
    }

    let over = runtime_dir_with_socket_path_of(dir.path(), MAX_UNIX_PATH_LEN + 1);
    let server = dir.server().runtime_dir(&over).start();
    assert!(
        server.endpoint().is_tcp(),
        "a {}-byte socket path does not fit: got {}",
        MAX_UNIX_PATH_LEN + 1,
        server.endpoint()
    );
    assert!(!over.join("rpc.sock").exists());
    assert_serves_calls(&server.connector()).await;
}

#[test]
fn explicit_unix_endpoint_over_the_limit_is_refused_not_replaced_by_tcp() {
    let dir = TestDir::new();
    let path = format!("/tmp/{}.sock", "z".repeat(MAX_UNIX_PATH_LEN));
    let exit = dir.server().listen(&format!("unix:{path}")).run_to_exit();
    assert!(!exit.status.success(), "the server started anyway");
    assert!(
        exit.stdout.is_empty(),
        "it listened somewhere: {}",
        exit.stdout
    );
    assert!(
        exit.stderr.contains("longer than the kernel's limit"),
        "stderr does not say why: {}",
        exit.stderr
    );
    assert!(!dir.location().endpoint_file_path().exists());
}
