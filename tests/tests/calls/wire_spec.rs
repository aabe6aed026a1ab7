//! The wire specification, `docs/wire.md`, is enough to write a client in another language:
//! `tests/wire_spec/kv_client.py`, written from it alone (Python, standard library only), reads
//! `kv`'s schema from `introspect`, checks the handshake's schema hash against it, opens the
//! stream `kv.watch` and grants it credit, calls `kv.set`, reads the stream's `Set` event and
//! cancels it, then calls `kv.get` on the real server; the Rust client then reads what it stored.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rpc_core::Endpoint;
use rpc_core::services::kv::KvClient;
use tarpc::context;
use tests::{ServerProcess, TestDir};

/// Runs the Python client with `args` after the server's socket path.
fn run_python_client(socket: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("wire_spec/kv_client.py");
    Command::new("python3")
        .arg(&script)
        .arg(socket)
        .args(args)
        // Arguments and output in UTF-8 whatever the locale.
        .env("PYTHONUTF8", "1")
        .output()
        .expect("python3 runs (the wire-spec test needs it on PATH)")
}

/// The server's Unix socket (`auto` listens on one in a test directory).
fn unix_socket(server: &ServerProcess) -> PathBuf {
    match server.endpoint() {
        Endpoint::Unix(path) => path.clone(),
        other => panic!("expected the server on a unix socket, it listens on {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_written_from_the_spec_sets_and_gets_a_value_the_rust_client_then_reads() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let value = "héllo, wire ✓";

    let output = run_python_client(&unix_socket(&server), &["spec-key", value]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "kv_client.py failed ({}): {stderr}",
        output.status
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{value}\n"),
        "kv_client.py prints the value kv.get returned (stderr: {stderr})"
    );

    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    let stored = kv
        .get(context::current(), "spec-key".into())
        .await
        .expect("kv.get is answered");
    assert_eq!(
        stored.as_deref(),
        Some(value),
        "the Python client's set is seen by the Rust client"
    );
}

#[test]
fn a_client_written_from_the_spec_reads_a_refusal_and_exits_non_zero() {
    let dir = TestDir::new();
    let server = dir.server().start();

    let output = run_python_client(&unix_socket(&server), &["k", "v", "no-such-service"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a refusal exits 1 (stderr: {stderr})"
    );
    assert!(
        stderr.contains(
            "refused: unknown service `no-such-service` (this server hosts: echo, health, \
             introspect, kv)"
        ),
        "the refusal is read and printed: {stderr}"
    );
    assert!(output.stdout.is_empty(), "no value is printed");
}
