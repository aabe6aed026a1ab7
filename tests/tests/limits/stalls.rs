//! Peers that start a frame and never finish it (`--read-timeout-ms`), against peers that are
//! merely idle between calls, which are left alone.

use std::time::{Duration, Instant};

use rpc_core::services::echo::EchoResponse;
use tests::raw::{accepted, decode_echo_response, echo_request_frame, read_until_closed};
use tests::resources::Baseline;
use tests::{ServerProcess, TestDir, assert_bystander_served, bystander};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The read timeout the servers here run with.
const READ_TIMEOUT: Duration = Duration::from_millis(300);

/// How long after the read timeout a stalled connection may still be open: scheduling slack.
const CLOSE_SLACK: Duration = Duration::from_secs(3);

fn server_with_read_timeout(dir: &TestDir) -> ServerProcess {
    dir.server()
        .arg("--read-timeout-ms")
        .arg(READ_TIMEOUT.as_millis().to_string())
        .start()
}

/// Waits for the server to close `stream`, which stalled at `stalled_at`, and checks that it did
/// so after the read timeout but not long after.
async fn assert_closed_for_stalling(stream: &mut UnixStream, stalled_at: Instant, what: &str) {
    let answer = read_until_closed(stream).await;
    let waited = stalled_at.elapsed();
    assert!(answer.is_empty(), "{what} was answered: {answer:?}");
    assert!(
        waited >= READ_TIMEOUT - Duration::from_millis(50),
        "{what} was closed after {waited:?}, before the {READ_TIMEOUT:?} read timeout"
    );
    assert!(
        waited <= READ_TIMEOUT + CLOSE_SLACK,
        "{what} was closed only after {waited:?}, long after the {READ_TIMEOUT:?} read timeout"
    );
}

/// Checks that an idle connection past its handshake is still open, then that it still answers
/// a call.
async fn assert_idle_connection_still_served(idle: &mut UnixStream) {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(50), idle.read(&mut byte)).await {
        Err(_) => {}
        Ok(read) => panic!("the idle connection was closed or sent something unasked: {read:?}"),
    }
    let payload = b"idle but alive".to_vec();
    idle.write_all(&echo_request_frame(7, payload.clone()))
        .await
        .expect("the idle connection still takes a call");
    let mut prefix = [0u8; 4];
    idle.read_exact(&mut prefix)
        .await
        .expect("the idle connection answers its call");
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    idle.read_exact(&mut body)
        .await
        .expect("the whole response arrives");
    let response = decode_echo_response(&body);
    assert_eq!(response.request_id, 7);
    match response.message {
        Ok(EchoResponse::Echo(bytes)) => assert_eq!(bytes.into_vec(), payload),
        other => panic!("the idle connection's call got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_started_and_never_finished_is_closed_after_the_read_timeout_but_idle_one_is_not() {
    let dir = TestDir::new();
    let server = server_with_read_timeout(&dir);
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    // Idle since its handshake, from before the stalls to after them: several read timeouts.
    let mut idle = accepted(&server, "echo").await;

    // Two bytes of a length prefix; a prefix announcing 1000 bytes and 10 of them.
    let mut half_prefix = accepted(&server, "echo").await;
    let mut part_body = accepted(&server, "echo").await;
    let stalled_at = Instant::now();
    half_prefix
        .write_all(&1000u32.to_be_bytes()[..2])
        .await
        .expect("the server reads");
    part_body
        .write_all(&1000u32.to_be_bytes())
        .await
        .expect("the server reads");
    part_body
        .write_all(&[7; 10])
        .await
        .expect("the server reads");

    assert_closed_for_stalling(&mut half_prefix, stalled_at, "half a length prefix").await;
    assert_closed_for_stalling(&mut part_body, stalled_at, "10 bytes of a 1000-byte frame").await;
    tests::wait_for(tests::EXIT_TIMEOUT, "the stall to be logged", || {
        server.stderr().contains("stalled mid-frame")
    });
    assert_bystander_served(&kv).await;

    // Past twice the read timeout since the stalls began, the idle connection is still open.
    tokio::time::sleep((READ_TIMEOUT * 2).saturating_sub(stalled_at.elapsed())).await;
    assert_idle_connection_still_served(&mut idle).await;
    drop(idle);

    baseline
        .assert_restored(&server, "connections that stalled mid-frame")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_dripped_a_byte_at_a_time_is_closed_after_the_read_timeout_of_its_first_byte() {
    const DRIP_EVERY: Duration = Duration::from_millis(50);
    let dir = TestDir::new();
    let server = server_with_read_timeout(&dir);
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    // A frame of 1000 bytes at one byte per 50 ms would take 50 s: each byte arrives well within
    // the read timeout of the one before, but the frame cannot complete within the read timeout
    // of its first byte.
    let stream = accepted(&server, "echo").await;
    let (mut reader, mut writer) = stream.into_split();
    let stalled_at = Instant::now();
    writer
        .write_all(&1000u32.to_be_bytes())
        .await
        .expect("the server reads");
    let drip = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(DRIP_EVERY).await;
            if writer.write_all(&[7]).await.is_err() {
                return;
            }
        }
    });
    let answer = read_until_closed(&mut reader).await;
    let waited = stalled_at.elapsed();
    drip.abort();
    assert!(
        answer.is_empty(),
        "the dripped frame was answered: {answer:?}"
    );
    assert!(
        waited <= READ_TIMEOUT + CLOSE_SLACK,
        "a frame dripped a byte every {DRIP_EVERY:?} was closed only after {waited:?}: each byte restarts the read timeout"
    );

    assert_bystander_served(&kv).await;
    baseline
        .assert_restored(&server, "a connection that dripped a frame")
        .await;
}
