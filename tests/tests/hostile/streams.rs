//! Streams opened by hostile clients: never granted credit, granted absurd credit and never
//! read, flooded with grants, or opened past the limit. The server stays within its bounds,
//! `kv.set` never waits for a watcher, and other clients are served; descriptors and memory come
//! back once the clients go.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpc_core::StreamEvent;
use rpc_core::limits::{DEFAULT_MAX_STREAMS, KV_WATCH_BACKLOG};
use rpc_core::services::kv::{KvEvent, KvResponse};
use rpc_core::tarpc::{Response, context};
use rpc_core::wire::ClientMessage;
use tests::raw::{grant, kv_watch, raw_kv};
use tests::resources::Baseline;
use tests::{TestDir, assert_bystander_served, bystander, set_many};

/// What the hostile streams together may add to the server's resident memory.
const RSS_BUDGET: u64 = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_never_granted_cost_little_and_one_past_the_limit_is_refused() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let mut hostile = Vec::new();
    for _ in 0..4 {
        let mut raw = raw_kv(&server).await;
        for id in 0..=DEFAULT_MAX_STREAMS as u64 {
            raw.feed(kv_watch(id, "")).await.expect("sent");
        }
        raw.flush().await.expect("sent");
        // Nothing is granted, so the only answer is the refusal of the one past the limit.
        let refusal = tokio::time::timeout(Duration::from_secs(5), raw.next())
            .await
            .expect("an answer within 5 s")
            .expect("the connection is open")
            .expect("a well-formed answer");
        assert_eq!(refusal.request_id, DEFAULT_MAX_STREAMS as u64);
        let err = refusal.message.expect_err("refused");
        assert_eq!(err.kind, std::io::ErrorKind::WouldBlock);
        assert!(err.detail.contains("--max-streams"), "{}", err.detail);
        hostile.push(raw);
    }
    // The watchers fall behind without costing the store anything.
    set_many(&kv, "ungranted-", 2 * KV_WATCH_BACKLOG).await;
    assert_bystander_served(&kv).await;
    baseline.assert_rss_within(RSS_BUDGET, "256 streams never granted credit");

    drop(hostile);
    baseline
        .assert_restored(&server, "256 streams never granted credit")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_with_absurd_credit_that_never_reads_holds_up_nothing_and_then_sees_lagged() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let mut watcher = raw_kv(&server).await;
    watcher
        .send_all(&mut futures::stream::iter(
            [kv_watch(1, ""), grant(1, u64::MAX), grant(1, u64::MAX)].map(Ok),
        ))
        .await
        .expect("sent");
    // 100 000 sets while the watcher reads nothing: the server's queue for it stops at what the
    // socket takes, its producer waits, and the sets go on.
    set_many(&kv, "flood-", 100_000).await;
    assert_bystander_served(&kv).await;
    baseline.assert_rss_within(RSS_BUDGET, "a watcher that reads nothing, 100 000 sets");

    // Reading again: what the socket held, then a `Lagged` for what was lost, then live events.
    kv.set(context::current(), "marker".into(), "last".into())
        .await
        .expect("answered")
        .expect("set");
    let mut lagged = 0;
    let mut items_after_lag = 0;
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(10), watcher.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .expect("a well-formed answer");
        assert_eq!(answer.request_id, 1);
        let Ok(KvResponse::Watch(event)) = answer.message else {
            panic!("a watch event, not {:?}", answer.message);
        };
        match event {
            StreamEvent::Lagged { missed } => lagged += missed,
            StreamEvent::Item(KvEvent::Set { key, .. }) if key == "marker" => break,
            StreamEvent::Item(_) if lagged > 0 => items_after_lag += 1,
            StreamEvent::Item(_) => {}
            StreamEvent::End => panic!("the watch ended"),
        }
    }
    assert!(lagged > 0, "no Lagged before the live events");
    assert!(
        items_after_lag <= KV_WATCH_BACKLOG,
        "{items_after_lag} events after the lag, more than the backlog of {KV_WATCH_BACKLOG}"
    );
    eprintln!("the watcher missed {lagged} events, then got {items_after_lag} and the marker");

    drop(watcher);
    baseline
        .assert_restored_within(&server, "a watcher that read nothing", RSS_BUDGET)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_grants_leaves_other_clients_served() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = bystander(&server).await;
    let baseline = Baseline::after_warm_up(&server).await;

    let mut flooder = raw_kv(&server).await;
    flooder.send(kv_watch(1, "")).await.expect("sent");
    let flood = tokio::spawn(async move {
        let grants = (0..200_000u64).map(|i| {
            let id = if i % 2 == 0 { 1 } else { i };
            Ok::<ClientMessage<_>, _>(grant(id, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        });
        let sent = flooder.send_all(&mut futures::stream::iter(grants)).await;
        (flooder, sent)
    });
    // Calls from another client go on being answered while the grants pour in.
    for i in 0..200 {
        let started = Instant::now();
        kv.get(context::current(), format!("key-{i}"))
            .await
            .expect("a get is answered during the flood");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a get took {:?} during the flood",
            started.elapsed()
        );
    }
    let (mut flooder, sent) = flood.await.expect("no panic");
    sent.expect("the server read every grant without closing the connection");
    baseline.assert_rss_within(RSS_BUDGET, "200 000 grants");
    // The stream is still served: a set's event arrives (after whatever the grants let through).
    kv.set(context::current(), "after-flood".into(), "v".into())
        .await
        .expect("answered")
        .expect("set");
    loop {
        let Response { message, .. } =
            tokio::time::timeout(Duration::from_secs(10), flooder.next())
                .await
                .expect("an event within 10 s")
                .expect("open")
                .expect("well formed");
        if let Ok(KvResponse::Watch(StreamEvent::Item(KvEvent::Set { key, .. }))) = message {
            if key == "after-flood" {
                break;
            }
        }
    }
    drop(flooder);
    baseline.assert_restored(&server, "a flood of grants").await;
}
