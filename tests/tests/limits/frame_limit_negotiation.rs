//! The frame limit both sides honour: the server announces its own in the handshake, a client
//! holds its requests to the smaller of its own and the server's, and every limit flag refuses a
//! value out of range instead of clamping it.

use rpc_core::FrameLimit;
use rpc_core::services::echo::EchoClient;
use serde_bytes::ByteBuf;
use tarpc::client::RpcError;
use tarpc::context;
use tests::raw::echo_request_frame;
use tests::{TestDir, assert_serves_calls, run_client, run_client_in};

/// The server's limit in these tests: the smallest allowed, far under the client's default.
const SERVER_MAX_FRAME: usize = 4096;

/// Bytes in an `echo.echo` request body besides its payload, as the client encodes it.
fn request_envelope() -> usize {
    echo_request_frame(0, Vec::new()).len() - 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_larger_limit_holds_its_requests_to_the_servers_and_the_connection_goes_on()
{
    let dir = TestDir::new();
    let server = dir
        .server()
        .arg("--max-frame")
        .arg(SERVER_MAX_FRAME.to_string())
        .start();
    // The client's own limit is the 16 MiB default.
    let connector = server.connector();
    assert_eq!(
        FrameLimit::default().bytes(),
        rpc_core::wire::DEFAULT_MAX_FRAME
    );
    let echo = connector.connect::<EchoClient>().await.expect("connects");
    let payload = |body_len: usize| vec![0x5a; body_len - request_envelope()];

    // Requests of limit-1 and limit bytes are sent and answered.
    for body_len in [SERVER_MAX_FRAME - 1, SERVER_MAX_FRAME] {
        let echoed = echo
            .echo(context::current(), ByteBuf::from(payload(body_len)))
            .await
            .unwrap_or_else(|err| panic!("a body of {body_len} bytes: {err}"));
        assert_eq!(echoed.into_vec(), payload(body_len));
    }

    // One byte over the server's limit fails alone, here, naming the limit.
    match echo
        .echo(
            context::current(),
            ByteBuf::from(payload(SERVER_MAX_FRAME + 1)),
        )
        .await
    {
        Err(RpcError::Send(err)) => assert!(
            err.to_string()
                .contains(&format!("frame limit of {SERVER_MAX_FRAME} bytes")),
            "the error does not name the server's limit: {err}"
        ),
        other => panic!("a request one byte over the server's limit gave {other:?}"),
    }

    // Not sent: the server would have closed the connection on an over-limit frame, and logged it.
    let echoed = echo
        .echo(context::current(), ByteBuf::from(b"small".to_vec()))
        .await
        .expect("the same connection still serves");
    assert_eq!(echoed.as_slice(), b"small");
    let log = server.stderr();
    assert!(
        !log.contains("transport error"),
        "the over-limit request reached the server: {log}"
    );
    assert_serves_calls(&connector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_client_max_frame_is_honoured_and_checked() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let runtime_dir = server.runtime_dir().to_owned();
    let big =
        serde_json::to_string(&serde_json::json!({ "bytes": vec![1u8; 5000] })).expect("json");
    let output = tokio::task::spawn_blocking(move || {
        let over = run_client_in(
            &runtime_dir,
            &["--max-frame", "4096", "call", "echo.echo", &big],
            &[],
        );
        let under = run_client_in(
            &runtime_dir,
            &["--max-frame", "8192", "call", "echo.echo", &big],
            &[],
        );
        (over, under)
    })
    .await
    .expect("rpc-client ran");
    let (over, under) = output;
    assert!(!over.status.success(), "{over:?}");
    assert!(
        over.stderr.contains("frame limit of 4096 bytes")
            && over.stderr.contains("raise --max-frame on both sides"),
        "{}",
        over.stderr
    );
    assert_eq!(under.json().as_array().map(Vec::len), Some(5000));

    for bad in ["4095", "0", "4294967296", "lots"] {
        let output = run_client(["--max-frame", bad, "list"], &[]);
        assert!(!output.status.success(), "--max-frame {bad}: {output:?}");
        assert!(
            output.stderr.contains("--max-frame"),
            "--max-frame {bad}: the error does not name the flag: {}",
            output.stderr
        );
    }
    for bad in ["1000", "65535", "1073741825", "lots"] {
        let output = run_client(["--shm-size", bad, "list"], &[]);
        assert!(
            !output.status.success() && output.stderr.contains("--shm-size"),
            "--shm-size {bad}: {output:?}"
        );
    }
    let output = run_client(["--timeout-ms", "0", "list"], &[]);
    assert!(
        !output.status.success() && output.stderr.contains("--timeout-ms"),
        "{output:?}"
    );
}

#[test]
fn rpc_server_refuses_a_shared_memory_size_out_of_range_naming_the_flag_and_the_range() {
    let dir = TestDir::new();
    for bad in ["1", "65535", "1073741825"] {
        let exit = dir.server().arg("--shm-size").arg(bad).run_to_exit();
        assert!(!exit.status.success(), "--shm-size {bad} was accepted");
        assert!(
            exit.stderr.contains("--shm-size") && exit.stderr.contains("0 (off)"),
            "{}",
            exit.stderr
        );
    }
}

#[test]
fn rpc_server_refuses_zero_for_counts_and_timeouts_naming_the_flag() {
    let dir = TestDir::new();
    for flag in [
        "--max-connections",
        "--max-connections-per-uid",
        "--max-in-flight",
        "--threads",
        "--handshake-timeout-ms",
        "--read-timeout-ms",
    ] {
        let exit = dir.server().arg(flag).arg("0").run_to_exit();
        assert!(!exit.status.success(), "{flag} 0 was accepted");
        assert!(
            exit.stderr.contains(flag) && exit.stderr.contains("must be at least 1"),
            "{flag} 0: {}",
            exit.stderr
        );
    }
    // 1 is the smallest accepted value.
    let mut server = dir
        .server()
        .arg("--max-connections")
        .arg("1")
        .arg("--threads")
        .arg("1")
        .start();
    server.terminate();
}
