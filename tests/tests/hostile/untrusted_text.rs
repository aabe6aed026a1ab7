//! Text from the other side is never printed raw: a hostile server cannot drive the terminal of
//! whoever runs `rpc-client`, and a hostile client cannot forge lines in the server's log.

use std::path::{Path, PathBuf};

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use rpc_core::Service;
use rpc_core::handshake::{MAGIC, PROTOCOL_VERSION};
use rpc_core::services::health::{HealthClient, HealthRequest, HealthResponse};
use rpc_core::tarpc::{Response, ServerError};
use rpc_core::wire::ClientMessage;
use rpc_core::{Hello, HelloReply, Refusal};
use tests::raw::{accept_as_fake_server, accept_hello, connect, handshake, read_until_closed};
use tests::{ClientOutput, TestDir, assert_serves_calls, run_client};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;

/// The terminal control bytes a hostile peer would like printed: ESC and BEL.
const CONTROL_BYTES: [char; 2] = ['\x1b', '\x07'];

/// What a fake server does with the one connection it accepts, after reading its hello.
enum FakeServer {
    /// Answers with this refusal.
    Refuse(Refusal),
    /// Accepts, then answers the first call with a server error of this detail.
    FailCall(String),
    /// Answers with these raw handshake-frame body bytes (after magic and version).
    RawReply(Vec<u8>),
}

/// Listens on a Unix socket in `dir`, serves one connection as `behaviour` says, and returns the
/// socket's path.
fn start_fake_server(dir: &Path, behaviour: FakeServer) -> PathBuf {
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).expect("the fake server binds");
    tokio::spawn(async move {
        let mut framed = accept_hello(&listener).await;
        match behaviour {
            FakeServer::Refuse(refusal) => {
                framed
                    .send(HelloReply::Refused(refusal))
                    .await
                    .expect("the refusal is sent");
            }
            FakeServer::FailCall(detail) => {
                // The real hash: the client has nothing to warn about.
                let hash = HealthClient::schema().expect("health traces").hash();
                let mut transport =
                    accept_as_fake_server::<HealthRequest, HealthResponse>(framed, hash).await;
                let Some(Ok(ClientMessage::Request(request))) = transport.next().await else {
                    panic!("the client sends a request");
                };
                let error = ServerError::new(std::io::ErrorKind::Other, detail);
                transport
                    .send(Response {
                        request_id: request.id,
                        message: Err(error),
                    })
                    .await
                    .expect("the error is sent");
            }
            FakeServer::RawReply(body) => {
                let mut stream = framed.into_parts().io;
                let mut frame = BytesMut::new();
                frame.put_u32(u32::try_from(MAGIC.len() + 2 + body.len()).expect("small"));
                frame.put_slice(&MAGIC);
                frame.put_u16(PROTOCOL_VERSION);
                frame.put_slice(&body);
                stream.write_all(&frame).await.expect("the reply is sent");
            }
        }
        // Hold the connection until the client has read everything and gone.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    path
}

/// Runs `rpc-client --endpoint unix:<socket> health` off the runtime, so the fake server keeps
/// running meanwhile. (`health` calls through one connection; `call` would first ask
/// `introspect`, which the fake does not serve.)
async fn call_health(socket: &Path) -> ClientOutput {
    let endpoint = format!("unix:{}", socket.display());
    tokio::task::spawn_blocking(move || {
        run_client(
            ["--endpoint", &endpoint, "--timeout-ms", "3000", "health"],
            &[],
        )
    })
    .await
    .expect("rpc-client ran")
}

/// Asserts the client failed, printed no terminal control byte, and printed each of `escaped`.
fn assert_failed_with_escaped_text(output: &ClientOutput, escaped: &[&str]) {
    assert!(!output.status.success(), "the client succeeded: {output:?}");
    for text in [&output.stderr, &output.stdout] {
        assert!(
            !text.contains(CONTROL_BYTES),
            "the client printed a raw control byte: {text:?}"
        );
    }
    for form in escaped {
        assert!(
            output.stderr.contains(form),
            "stderr lacks the escaped form {form}: {}",
            output.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_from_a_hostile_server_is_printed_with_its_control_characters_escaped() {
    let dir = TestDir::new();
    let socket = start_fake_server(
        dir.path(),
        FakeServer::Refuse(Refusal::UnknownService {
            requested: "\x1b[2J\x1b[Hkv\nFORGED".into(),
            available: vec!["\x1b]0;pwned\x07".into(), "\u{202e}kv".into()],
        }),
    );
    let output = call_health(&socket).await;
    assert_failed_with_escaped_text(
        &output,
        &[
            r"\u{1b}[2J\u{1b}[Hkv\u{a}FORGED",
            r"\u{1b}]0;pwned\u{7}",
            r"\u{202e}kv",
        ],
    );
    assert_eq!(
        output.stderr.lines().count(),
        1,
        "the refusal spans several lines: {}",
        output.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_errors_detail_is_printed_with_its_control_characters_escaped() {
    let dir = TestDir::new();
    let socket = start_fake_server(
        dir.path(),
        FakeServer::FailCall("\x1b[31mred\x1b[0m\r\nrpc-client: all is well\u{9b}2J".into()),
    );
    let output = call_health(&socket).await;
    assert_failed_with_escaped_text(
        &output,
        &[r"\u{1b}[31mred\u{1b}[0m\u{d}\u{a}rpc-client: all is well\u{9b}2J"],
    );
    assert!(!output.stderr.contains('\u{9b}'), "{:?}", output.stderr);
    assert_eq!(output.stderr.lines().count(), 1, "{}", output.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_announcing_a_frame_limit_out_of_range_fails_the_handshake() {
    for limit in [0u32, 4095] {
        let dir = TestDir::new();
        // Accepted (variant 0), a version string of one byte, then the limit.
        let body = [
            &0u32.to_le_bytes()[..],
            &1u64.to_le_bytes(),
            b"x",
            &limit.to_le_bytes(),
        ]
        .concat();
        let socket = start_fake_server(dir.path(), FakeServer::RawReply(body));
        let output = call_health(&socket).await;
        assert!(!output.status.success(), "limit {limit}: {output:?}");
        assert!(
            output.stderr.contains("handshake with")
                && output.stderr.contains("unusable frame limit"),
            "limit {limit}: {}",
            output.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_name_with_control_characters_is_refused_and_cannot_forge_a_log_line() {
    let dir = TestDir::new();
    let server = dir.server().start();
    for name in [
        "kv\nFORGED line",
        "kv\r\nFORGED line",
        "\x1b[2Jkv",
        "kv\u{85}FORGED line",
    ] {
        let (reply, mut stream) = handshake(connect(&server).await, Hello::new(name, None)).await;
        assert_eq!(
            reply,
            HelloReply::Refused(Refusal::Malformed(
                "service name contains control characters".into()
            )),
            "{name:?}"
        );
        assert!(read_until_closed(&mut stream).await.is_empty());
    }
    // An unknown name that is merely odd is echoed back as it is.
    let (reply, _) = handshake(connect(&server).await, Hello::new("kv ü", None)).await;
    assert!(
        matches!(&reply, HelloReply::Refused(Refusal::UnknownService { requested, .. }) if requested == "kv ü"),
        "{reply:?}"
    );

    let log = server.stderr();
    assert!(
        log.contains("service name contains control characters"),
        "the refusals are not logged: {log}"
    );
    for line in log.lines() {
        assert!(!line.starts_with("FORGED"), "a forged log line: {log}");
    }
    assert!(!log.contains(['\x1b', '\r', '\u{85}']), "{log:?}");
    assert_serves_calls(&server.connector()).await;
}
