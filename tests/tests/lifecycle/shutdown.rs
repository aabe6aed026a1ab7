//! Graceful shutdown on SIGTERM: files removed, in-flight responses delivered, exit status 0.

use std::time::Duration;

use rpc_client::ConnectError;
use rpc_core::services::echo::{EchoClient, EchoResponse};
use rpc_core::{Hello, HelloReply};
use tests::raw::{decode_echo_response, echo_request_frame, handshake};
use tests::{TestDir, assert_serves_calls, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_removes_the_socket_and_endpoint_file_and_exits_zero() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let location = server.location().clone();
    // An idle open connection must not hold shutdown up for the grace period.
    let _idle = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    assert_serves_calls(&server.connector()).await;
    assert!(location.socket_path().exists());
    assert!(location.endpoint_file_path().exists());

    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    assert!(!location.socket_path().exists(), "socket file left behind");
    assert!(
        !location.endpoint_file_path().exists(),
        "endpoint file left behind"
    );
    let stderr = server.stderr();
    assert!(stderr.contains("SIGTERM received"), "stderr:\n{stderr}");
    assert!(stderr.contains("server stopped"), "stderr:\n{stderr}");
    assert!(!stderr.contains("grace period over"), "stderr:\n{stderr}");

    let err = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect_err("nothing to connect to after shutdown");
    assert!(
        matches!(err, ConnectError::NotRunning { .. }),
        "unexpected error: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_a_tcp_server_removes_its_endpoint_file_and_exits_zero() {
    let dir = TestDir::new();
    let mut server = dir.server().listen("tcp:127.0.0.1:0").start();
    let endpoint_file = server.location().endpoint_file_path();
    assert_serves_calls(&server.connector()).await;
    assert!(endpoint_file.exists());
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    assert!(
        !endpoint_file.exists(),
        "endpoint file (with its token) left behind"
    );
}

#[test]
fn sigterm_right_after_the_listening_line_still_shuts_down_cleanly() {
    // A supervisor may stop a server the moment it reports ready; that must be as clean as any
    // other shutdown. Several rounds, since the window (if any) is short.
    let dir = TestDir::new();
    for round in 0..5 {
        for tcp in [false, true] {
            let command = dir.server();
            let command = if tcp {
                command.listen("tcp:127.0.0.1:0")
            } else {
                command
            };
            let mut server = command.start();
            let status = server.terminate();
            let location = server.location();
            assert!(
                status.success(),
                "round {round}, tcp {tcp}: exit status {status} (socket file left: {}, endpoint file left: {}); stderr:\n{}",
                location.socket_path().exists(),
                location.endpoint_file_path().exists(),
                server.stderr()
            );
            assert!(
                !location.socket_path().exists(),
                "round {round}: socket file left"
            );
            assert!(
                !location.endpoint_file_path().exists(),
                "round {round}: endpoint file left"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_being_written_at_sigterm_is_delivered_in_full_before_exit() {
    // Larger than any socket buffer, so the server is still writing the response when the signal
    // arrives; under the default 16 MiB frame limit.
    const PAYLOAD_LEN: usize = 12 * 1024 * 1024;
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let path = server
        .endpoint()
        .unix_path()
        .expect("a unix endpoint")
        .to_owned();
    let (reply, mut stream) = handshake(
        UnixStream::connect(&path).await.expect("connects"),
        Hello::new("echo", None),
    )
    .await;
    assert!(
        matches!(reply, HelloReply::Accepted { .. }),
        "unexpected reply: {reply:?}"
    );

    let payload: Vec<u8> = (0..PAYLOAD_LEN).map(|i| (i % 251) as u8).collect();
    stream
        .write_all(&echo_request_frame(7, payload.clone()))
        .await
        .expect("the request is sent");
    // The response has started: the server has the request and is writing its answer.
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .expect("the response starts");

    server.send_sigterm();
    wait_for(tests::EXIT_TIMEOUT, "the socket file to be removed", || {
        !path.exists()
    });
    assert!(
        server.is_running(),
        "the server exited with a response half written; stderr:\n{}",
        server.stderr()
    );

    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream
        .read_exact(&mut body)
        .await
        .expect("the whole response arrives after SIGTERM");
    let response = decode_echo_response(&body);
    assert_eq!(response.request_id, 7);
    match response.message {
        Ok(EchoResponse::Echo(bytes)) => {
            assert!(
                bytes.as_slice() == payload.as_slice(),
                "the echoed bytes differ"
            )
        }
        other => panic!("unexpected response: {other:?}"),
    }

    let status = server.wait_for_exit(tests::EXIT_TIMEOUT);
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    assert!(!server.stderr().contains("grace period over"));
    assert!(!server.location().endpoint_file_path().exists());
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "after the response the connection is closed cleanly: {read:?}"
    );
}
