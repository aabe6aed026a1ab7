//! Memory held by peers that announce a large frame and stall inside its large field: what each
//! such connection costs the server while it waits, and that the server gives the memory back
//! once they are gone.

use std::time::Duration;

use tests::raw::{accepted, claim_length, echo_request_frame};
use tests::resources::Baseline;
use tests::{TestDir, assert_bystander_served, bystander};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// Stalled connections opened at once: fewer than the per-uid limit (256).
const STALLED: usize = 200;

/// What the stalled connections together may add to the server's resident memory.
const STALLED_RSS_BUDGET: u64 = 64 * 1024 * 1024;

/// How far above its baseline the server may stay once the stalled peers have gone.
const AFTER_RSS_SLACK: u64 = 32 * 1024 * 1024;

/// How long after the peers close the server's memory is checked.
const GIVE_BACK_TIME: Duration = Duration::from_secs(5);

/// The first 100 bytes of an `echo.echo` frame of almost 16 MiB (the default frame limit):
/// its length prefix is true, and its byte field claims almost all of it.
fn stalled_frame_start() -> Vec<u8> {
    let marker = b"stalled-field-marker".to_vec();
    let mut frame = echo_request_frame(1, marker.clone());
    let body_len = frame.len() - 4;
    let field = (16 << 20) - 4096u64;
    let claimed_body = body_len as u64 - marker.len() as u64 + field;
    claim_length(&mut frame, &marker, field);
    frame[..4].copy_from_slice(&(claimed_body as u32).to_be_bytes());
    frame.truncate(100);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_fields_hold_little_memory_and_give_it_back_when_their_peers_go() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let start = stalled_frame_start();
    let mut stalled: Vec<UnixStream> = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        let mut stream = accepted(&server, "echo").await;
        stream
            .write_all(&start)
            .await
            .expect("the frame's start is sent");
        stalled.push(stream);
    }
    // Let the server read what was sent and settle on what it holds for each connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_bystander_served(&kv).await;
    let what = format!("{STALLED} connections stalled in a large field");
    let held = baseline.assert_rss_within(STALLED_RSS_BUDGET, &what);
    eprintln!("{} KiB each", held / 1024 / STALLED as u64);

    drop(stalled);
    tokio::time::sleep(GIVE_BACK_TIME).await;
    baseline.assert_rss_within(
        AFTER_RSS_SLACK,
        &format!("{GIVE_BACK_TIME:?} after the stalled peers left"),
    );
    baseline
        .assert_restored_within(&server, "stalled large fields", AFTER_RSS_SLACK)
        .await;
}
