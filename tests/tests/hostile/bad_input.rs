//! Hostile clients speaking raw bytes over a Unix socket, one test per kind of bad input. Each
//! checks that only the offending connection is closed: a client connected before keeps being
//! answered, and a new client is served.

use std::time::{Duration, Instant};

use rpc_core::handshake::{MAGIC, MAX_HANDSHAKE_FRAME};
use rpc_core::services::echo::EchoResponse;
use rpc_core::services::kv::KvClient;
use rpc_core::{Hello, HelloReply, Refusal};
use tarpc::context;
use tests::raw::{
    decode_echo_response, decode_reply, echo_request_frame, handshake, hello_body_len, hello_frame,
    read_until_closed,
};
use tests::{ServerProcess, TestDir, Watched, assert_bystander_served, assert_serves_calls, watch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Checks that the bystander is still answered, that a new client is served, and that the
/// server's descriptors and memory are back near the baseline.
async fn assert_unharmed(server: &ServerProcess, watched: &Watched) {
    assert_bystander_served(&watched.bystander).await;
    assert_serves_calls(&server.connector()).await;
    watched
        .baseline
        .assert_restored(server, "the hostile connections closed")
        .await;
}

/// Sends `bytes` on a new connection and checks the server refuses them as malformed, with a
/// reason containing `reason`, then closes.
async fn assert_refused_as_malformed(server: &ServerProcess, bytes: &[u8], reason: &str) {
    let mut stream = connect(server).await;
    stream.write_all(bytes).await.expect("the server reads");
    let answer = read_until_closed(&mut stream).await;
    match decode_reply(&answer) {
        HelloReply::Refused(Refusal::Malformed(given)) => {
            assert!(given.contains(reason), "reason: {given}")
        }
        other => panic!("unexpected reply to {} bytes: {other:?}", bytes.len()),
    }
}

async fn connect(server: &ServerProcess) -> UnixStream {
    let path = server.endpoint().unix_path().expect("a unix endpoint");
    UnixStream::connect(path).await.expect("connects")
}

/// Deterministic noise (xorshift), so a failure can be reproduced byte for byte.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A connection accepted for `echo`, past its handshake.
async fn echo_connection(server: &ServerProcess) -> UnixStream {
    let (reply, stream) = handshake(connect(server).await, Hello::new("echo", None)).await;
    assert!(
        matches!(reply, HelloReply::Accepted { .. }),
        "unexpected reply: {reply:?}"
    );
    stream
}

/// Reads one response frame from `stream` and decodes it as an echo response.
async fn read_echo_response(stream: &mut UnixStream) -> tarpc::Response<EchoResponse> {
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .expect("a response arrives");
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream
        .read_exact(&mut body)
        .await
        .expect("the whole response arrives");
    decode_echo_response(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_instead_of_a_handshake_close_only_that_connection() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    let garbage = noise(1024);
    assert_ne!(
        garbage[4..8],
        MAGIC,
        "the noise must not look like a handshake"
    );
    assert_refused_as_malformed(&server, &garbage, "bad magic").await;
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_prefix_of_u32_max_closes_only_that_connection() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    let reason = format!("{} bytes, over the limit", u32::MAX);
    assert_refused_as_malformed(&server, &[0xFF; 4], &reason).await;
    assert_unharmed(&server, &kv).await;
}

/// The length of service name that makes a hello body `body_len` bytes long.
fn service_name_len(body_len: usize) -> usize {
    body_len - hello_body_len(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_frames_up_to_the_limit_are_read_and_one_byte_over_is_refused_unread() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    for body_len in [MAX_HANDSHAKE_FRAME - 1, MAX_HANDSHAKE_FRAME] {
        let service = "s".repeat(service_name_len(body_len));
        let mut stream = connect(&server).await;
        stream
            .write_all(&hello_frame(&service))
            .await
            .expect("the server reads");
        read_until_closed(&mut stream).await;
        // Read and understood: the server refuses the (made-up) service by its name, which it
        // cuts to 64 characters so the refusal fits a handshake frame.
        let echoed = &service[..64];
        tests::wait_for(
            tests::EXIT_TIMEOUT,
            &format!("the {body_len}-byte hello to be refused by name"),
            || {
                server
                    .stderr()
                    .contains(&format!("unknown service `{echoed}`"))
            },
        );
    }

    let over = MAX_HANDSHAKE_FRAME + 1;
    let hello = hello_frame(&"s".repeat(service_name_len(over)));
    let reason = format!("{over} bytes, over the limit of {MAX_HANDSHAKE_FRAME}");
    assert_refused_as_malformed(&server, &hello, &reason).await;
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_of_an_unknown_service_with_a_long_name_still_reaches_the_client() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    for body_len in [64, MAX_HANDSHAKE_FRAME - 1, MAX_HANDSHAKE_FRAME] {
        let service = "s".repeat(service_name_len(body_len));
        let mut stream = connect(&server).await;
        stream
            .write_all(&hello_frame(&service))
            .await
            .expect("the server reads");
        let answer = read_until_closed(&mut stream).await;
        assert!(
            !answer.is_empty(),
            "a hello of {body_len} bytes for an unknown service got no refusal, only a hang-up"
        );
        match decode_reply(&answer) {
            // The server may shorten the name it echoes, but must say why it refuses.
            HelloReply::Refused(Refusal::UnknownService {
                requested,
                available,
            }) => {
                assert!(service.starts_with(&requested), "echoed {requested:?}");
                assert_eq!(available, ["echo", "health", "introspect", "kv"]);
            }
            other => panic!("body of {body_len} bytes: unexpected reply {other:?}"),
        }
    }
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_closed_after_the_handshake_timeout() {
    let dir = TestDir::new();
    let timeout = Duration::from_millis(300);
    let server = dir
        .server()
        .arg("--handshake-timeout-ms")
        .arg(timeout.as_millis().to_string())
        .start();
    let kv = watch(&server).await;

    let opened = Instant::now();
    let mut silent = connect(&server).await;
    let answer = read_until_closed(&mut silent).await;
    let waited = opened.elapsed();
    assert!(
        answer.is_empty(),
        "a silent peer gets no answer: {answer:?}"
    );
    assert!(
        waited >= timeout - Duration::from_millis(50),
        "closed after {waited:?}, before the {timeout:?} handshake timeout"
    );
    tests::wait_for(tests::EXIT_TIMEOUT, "the timeout to be logged", || {
        server.stderr().contains("no handshake within the timeout")
    });
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_that_hangs_up_mid_handshake_is_told_it_was_malformed() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    let frame = hello_frame("echo");
    let mut stream = connect(&server).await;
    stream
        .write_all(&frame[..frame.len() / 2])
        .await
        .expect("the server reads");
    stream.shutdown().await.expect("half-close");
    let answer = read_until_closed(&mut stream).await;
    match decode_reply(&answer) {
        HelloReply::Refused(Refusal::Malformed(_)) => {}
        other => panic!("half a hello got {other:?}"),
    }
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_max_frame_fails_that_call_alone_and_the_connection_goes_on() {
    let dir = TestDir::new();
    let server = dir.server().arg("--max-frame").arg("4096").start();
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("connects");
    // Small requests whose keys, listed together, make a response of about 10 KB.
    for i in 0..100 {
        kv.set(
            context::current(),
            format!("{i:03}-{}", "k".repeat(90)),
            "v".into(),
        )
        .await
        .expect("answered")
        .expect("stored");
    }
    match kv.list(context::current(), String::new()).await {
        Err(tarpc::client::RpcError::Server(err)) => {
            assert_eq!(err.kind, std::io::ErrorKind::InvalidData);
            assert!(err.detail.contains("frame limit of 4096"), "{}", err.detail);
        }
        other => panic!("a 10 KB response under a 4 KiB frame limit gave {other:?}"),
    }
    let some = kv
        .list(context::current(), "00".into())
        .await
        .expect("the same connection still answers");
    assert_eq!(some.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_frames_up_to_max_frame_are_answered_and_one_byte_over_closes_only_that_connection() {
    const MAX_FRAME: usize = 4096;
    let dir = TestDir::new();
    let server = dir
        .server()
        .arg("--max-frame")
        .arg(MAX_FRAME.to_string())
        .start();
    let kv = watch(&server).await;
    // A request's body is a fixed envelope plus the payload.
    let envelope = echo_request_frame(0, Vec::new()).len() - 4;
    let request = |id: u64, body_len: usize| {
        let frame = echo_request_frame(id, noise(body_len - envelope));
        assert_eq!(frame.len(), 4 + body_len);
        frame
    };

    let mut stream = echo_connection(&server).await;
    for (id, body_len) in [(1, MAX_FRAME - 1), (2, MAX_FRAME)] {
        stream
            .write_all(&request(id, body_len))
            .await
            .expect("the server reads");
        let response = read_echo_response(&mut stream).await;
        assert_eq!(response.request_id, id);
        match response.message {
            Ok(EchoResponse::Echo(bytes)) => {
                assert_eq!(bytes.into_vec(), noise(body_len - envelope))
            }
            other => panic!("body of {body_len} bytes: unexpected response {other:?}"),
        }
    }

    stream
        .write_all(&request(3, MAX_FRAME + 1))
        .await
        .expect("the server reads");
    let answer = read_until_closed(&mut stream).await;
    assert!(
        answer.is_empty(),
        "an over-limit request was answered: {} bytes",
        answer.len()
    );
    tests::wait_for(
        tests::EXIT_TIMEOUT,
        "the transport error to be logged",
        || {
            server
                .stderr()
                .contains("closing connection after a transport error")
        },
    );
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_call_frame_after_the_handshake_closes_only_that_connection() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;

    let mut stream = echo_connection(&server).await;
    let mut frame = 64u32.to_be_bytes().to_vec();
    frame.extend([0xFF; 64]);
    stream.write_all(&frame).await.expect("the server reads");
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_empty(), "garbage was answered: {answer:?}");
    assert_unharmed(&server, &kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answers_gets_them_all_when_it_reads_again() {
    // 48 calls of 256 KiB sent back to back without reading: 12 MiB of answers fill both
    // socket buffers, so the server holds answers back and must resume writing, not wait for
    // another request, once the client reads again.
    const CALLS: u64 = 48;
    const PAYLOAD: usize = 256 * 1024;
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = watch(&server).await;
    let stream = echo_connection(&server).await;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for id in 1..=CALLS {
            write
                .write_all(&echo_request_frame(id, noise(PAYLOAD)))
                .await
                .expect("the server reads");
        }
        write
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..CALLS {
        let mut prefix = [0u8; 4];
        let read_one = async {
            read.read_exact(&mut prefix).await?;
            let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
            read.read_exact(&mut body).await?;
            std::io::Result::Ok(body)
        };
        let body = tokio::time::timeout(Duration::from_secs(5), read_one)
            .await
            .expect("the server kept writing once the client read again")
            .expect("the connection stays open");
        let response = tests::raw::decode_echo_response(&body);
        match response.message {
            Ok(EchoResponse::Echo(bytes)) => assert_eq!(bytes.len(), PAYLOAD),
            other => panic!("call {}: {other:?}", response.request_id),
        }
        seen.push(response.request_id);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=CALLS).collect::<Vec<_>>(),
        "every call answered once"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers trickled out over {:?}",
        started.elapsed()
    );
    drop(writer.await.expect("writer"));
    assert_unharmed(&server, &kv).await;
}
