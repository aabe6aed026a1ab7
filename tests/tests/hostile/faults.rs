//! Connections that end badly: frames cut short, bodies that lie about their size, a client
//! killed mid-call, a server killed under its clients. Each test ends by checking that a normal
//! client is served and that the server's descriptors and memory are back near their baseline.

use std::process::{Command, Stdio};
use std::time::Duration;

use rpc_client::read_endpoint_file;
use tests::raw::{
    accepted, claim_length, connect, echo_request_frame, hello_frame, kv_get_request_frame,
    read_until_closed,
};
use tests::resources::{Baseline, SETTLE_TIMEOUT, wait_for_fds};
use tests::{TestDir, assert_bystander_served, bystander};
use tokio::io::AsyncWriteExt;

/// A frame's 4-byte big-endian length prefix announcing `len` bytes.
fn prefix(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_cut_short_then_closed_leave_no_descriptor_or_buffer_behind() {
    const ROUNDS: usize = 40;
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let hello = hello_frame("echo");
    for _ in 0..ROUNDS {
        // Half a hello, then gone.
        let mut stream = connect(&server).await;
        stream
            .write_all(&hello[..hello.len() / 2])
            .await
            .expect("the server reads");
        drop(stream);

        // Two bytes of a call frame's length prefix, then gone.
        let mut stream = accepted(&server, "echo").await;
        stream
            .write_all(&prefix(1000)[..2])
            .await
            .expect("the server reads");
        drop(stream);

        // A call frame announcing 1000 bytes, 10 of them sent, then gone.
        let mut stream = accepted(&server, "echo").await;
        stream
            .write_all(&prefix(1000))
            .await
            .expect("the server reads");
        stream.write_all(&[7; 10]).await.expect("the server reads");
        drop(stream);
    }
    // An echo call carrying 2 MiB, half of its frame sent, then gone: the megabyte read into the
    // payload's buffer must be freed with the connection (forty rounds of this would otherwise
    // show in the RSS). One at a time, so that the allocator's cache holds one such buffer, not
    // many. (A body of garbage would not do: it is refused at its first bytes.)
    let frame = echo_request_frame(1, vec![7; 2 << 20]);
    for _ in 0..ROUNDS {
        let mut stream = accepted(&server, "echo").await;
        stream
            .write_all(&frame[..frame.len() / 2])
            .await
            .expect("the server reads");
        drop(stream);
        wait_for_fds(
            server.pid(),
            SETTLE_TIMEOUT,
            "the server to close a connection that hung up mid-frame",
            |fds| fds <= baseline.fds() + 1,
        )
        .await;
    }

    assert_bystander_served(&kv).await;
    baseline
        .assert_restored(&server, "connections that hung up mid-frame")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_claiming_a_2_pow_60_long_string_or_byte_string_is_refused_without_allocating_it() {
    const ROUNDS: u64 = 10;
    const MARKER: &[u8] = b"claimed-length-marker";
    let claimed = 1u64 << 60;
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let marker = std::str::from_utf8(MARKER).expect("ascii");
    for id in 0..ROUNDS {
        // kv.get whose key, a String, claims 2^60 bytes.
        let mut frame = kv_get_request_frame(id, marker);
        claim_length(&mut frame, MARKER, claimed);
        let mut stream = accepted(&server, "kv").await;
        stream.write_all(&frame).await.expect("the server reads");
        let answer = read_until_closed(&mut stream).await;
        assert!(
            answer.is_empty(),
            "a kv.get claiming a 2^60-byte key was answered: {answer:?}"
        );

        // echo.echo whose payload, a byte string, claims 2^60 bytes.
        let mut frame = echo_request_frame(id, MARKER.to_vec());
        claim_length(&mut frame, MARKER, claimed);
        let mut stream = accepted(&server, "echo").await;
        stream.write_all(&frame).await.expect("the server reads");
        let answer = read_until_closed(&mut stream).await;
        assert!(
            answer.is_empty(),
            "an echo.echo claiming 2^60 bytes was answered: {answer:?}"
        );
    }

    assert!(
        server.is_running(),
        "the server died; stderr:\n{}",
        server.stderr()
    );
    assert!(
        server
            .stderr()
            .contains("closing connection after a transport error"),
        "the bad frames were not logged; stderr:\n{}",
        server.stderr()
    );
    assert_bystander_served(&kv).await;
    baseline
        .assert_restored(&server, "calls claiming 2^60-byte fields")
        .await;
}

/// Speaks the raw protocol from another process, so that it can be killed with SIGKILL: connects
/// to argv[1], sends the first argv[3] bytes of the file argv[2], and in `response` mode (argv[4])
/// reads the first 64 KiB the server sends back; then says `ready` and sleeps.
const KILLED_CLIENT: &str = r#"
import socket, sys, time
path, frames, cut, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = open(frames, "rb").read()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(data[:cut])
received = 0
while mode == "response" and received < 64 * 1024:
    chunk = s.recv(64 * 1024)
    if not chunk:
        sys.exit("the server closed the connection before answering")
    received += len(chunk)
print("ready", flush=True)
time.sleep(600)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_request_or_mid_response_leaves_no_descriptor_or_buffer_behind() {
    const PAYLOAD: usize = 3 << 20;
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let script = dir.path().join("killed_client.py");
    std::fs::write(&script, KILLED_CLIENT).expect("the script is written");
    let hello = hello_frame("echo");
    let request = echo_request_frame(1, vec![0x5a; PAYLOAD]);
    let frames = dir.path().join("frames.bin");
    std::fs::write(&frames, [hello.clone(), request.clone()].concat()).expect("frames written");
    let socket = server.endpoint().unix_path().expect("a unix endpoint");

    // Mid-request: half the request sent. Mid-response: the whole request sent, the first
    // 64 KiB of the 3 MiB answer read, the rest stuck in the server's writes.
    for (mode, cut) in [
        ("request", hello.len() + request.len() / 2),
        ("response", hello.len() + request.len()),
    ] {
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(socket)
            .arg(&frames)
            .arg(cut.to_string())
            .arg(mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (this test needs it on PATH)");
        tests::wait_for_ready_line(&mut child, &format!("{mode} client")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        child.kill().expect("the client can be killed");
        child.wait().expect("the killed client is reaped");
    }

    assert_bystander_served(&kv).await;
    baseline
        .assert_restored(&server, "clients killed mid-call")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_while_clients_hold_connections_is_replaced_by_the_next_one() {
    let dir = TestDir::new();
    let mut crashed = dir.server().start();
    let held = bystander(&crashed).await;
    let mut raw_held = accepted(&crashed, "echo").await;
    raw_held
        .write_all(&prefix(1000))
        .await
        .expect("the server reads");
    crashed.kill();
    let location = dir.location();
    assert!(
        location.socket_path().exists(),
        "SIGKILL leaves the socket behind"
    );

    // The clients of the dead server still hold their ends while the next one starts.
    let server = dir.server().start();
    assert!(
        server.stderr().contains("removing stale socket"),
        "the stale socket was not reclaimed; stderr:\n{}",
        server.stderr()
    );
    let file = read_endpoint_file(&location.endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    assert_eq!(
        file.pid,
        server.pid(),
        "the endpoint file names the new server"
    );
    let baseline = Baseline::after_warm_up(&server).await;
    baseline
        .assert_restored(&server, "starting over a killed server's socket")
        .await;
    drop((held, raw_held));
}
