//! Connection limits (`--max-connections`, `--max-connections-per-uid`), at limit-1, limit and
//! limit+1: a connection over a limit is refused at once with the limit named, and a place freed
//! by a closed connection is taken by the next one.

use std::time::{Duration, Instant};

use rpc_client::ConnectError;
use rpc_core::services::health::HealthClient;
use rpc_core::{Hello, HelloReply, Refusal};
use tarpc::context;
use tests::raw::{accepted, connect, decode_reply, handshake, read_until_closed};
use tests::resources::{Baseline, SETTLE_TIMEOUT, open_fds, wait_for_fds};
use tests::{ServerProcess, TestDir};
use tokio::net::UnixStream;

/// How quickly a connection over a limit must get its refusal: not a hang until some timeout.
const PROMPT: Duration = Duration::from_secs(2);

/// Opens one more connection, sends a hello for `echo`, and expects `refusal`, promptly; then
/// expects the server to close the connection.
async fn assert_refused(server: &ServerProcess, refusal: Refusal, what: &str) {
    let started = Instant::now();
    let (reply, mut stream) = handshake(connect(server).await, Hello::new("echo", None)).await;
    let waited = started.elapsed();
    assert_eq!(reply, HelloReply::Refused(refusal), "{what}");
    assert!(waited < PROMPT, "{what}: the refusal took {waited:?}");
    let after = read_until_closed(&mut stream).await;
    assert!(
        after.is_empty(),
        "{what}: more after the refusal: {after:?}"
    );
}

/// Fills a server limited to `limit` connections, in whichever way, and checks the boundary:
/// connections up to `limit` are accepted, the next is refused with `refusal`, one closed frees a
/// place for exactly one more.
async fn check_limit(server: &ServerProcess, limit: usize, refusal: Refusal) {
    let baseline = Baseline::after_warm_up(server).await;
    let mut held: Vec<UnixStream> = Vec::new();
    for n in 1..=limit {
        // Accepted at limit-1 and at limit, as at every count below.
        held.push(accepted(server, "echo").await);
        assert_eq!(held.len(), n);
    }
    assert_refused(
        server,
        refusal.clone(),
        &format!("connection {}", limit + 1),
    )
    .await;

    // A connection over the limit that never says hello is refused too, without waiting for the
    // handshake timeout (5 s by default).
    let started = Instant::now();
    let mut silent = connect(server).await;
    let answer = read_until_closed(&mut silent).await;
    assert_eq!(
        decode_reply(&answer),
        HelloReply::Refused(refusal.clone()),
        "a silent connection over the limit"
    );
    assert!(
        started.elapsed() < PROMPT,
        "a silent connection over the limit was refused only after {:?}",
        started.elapsed()
    );

    // One closed: its place goes to the next connection, and the one after is refused again.
    let before = open_fds(server.pid());
    drop(held.pop());
    wait_for_fds(
        server.pid(),
        SETTLE_TIMEOUT,
        "the server to close the dropped connection",
        |fds| fds < before,
    )
    .await;
    held.push(accepted_once_freed(server, &refusal).await);
    assert_refused(
        server,
        refusal,
        &format!("connection {} after one closed and one opened", limit + 1),
    )
    .await;

    drop(held);
    wait_for_open_connections(server, 1).await;
    baseline
        .assert_restored(server, "filling the connection limit")
        .await;
}

/// A connection accepted for `echo` once the place of one just closed is free. The server
/// closes a connection's socket a moment before it frees the connection's places, so a
/// connection made in that moment may still be refused with `refusal`: retry for a while.
async fn accepted_once_freed(server: &ServerProcess, refusal: &Refusal) -> UnixStream {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let (reply, stream) = handshake(connect(server).await, Hello::new("echo", None)).await;
        match reply {
            HelloReply::Accepted { .. } => return stream,
            HelloReply::Refused(ref refused) if refused == refusal => {
                assert!(
                    Instant::now() < deadline,
                    "a closed connection's place was not freed within {SETTLE_TIMEOUT:?}"
                );
                tokio::time::sleep(tests::POLL_INTERVAL).await;
            }
            other => panic!("a connection after one closed got {other:?}"),
        }
    }
}

/// Waits until the server counts `n` open connections, the health connection asking included.
/// A connection is counted until its places are freed, so then they are.
async fn wait_for_open_connections(server: &ServerProcess, n: u64) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    // Connections closed just before may still hold every place for a moment.
    let health = loop {
        match server.connector().connect::<HealthClient>().await {
            Ok(health) => break health,
            Err(ConnectError::Refused { refusal, .. })
                if matches!(
                    refusal,
                    Refusal::TooManyConnections { .. } | Refusal::TooManyForPeer { .. }
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(tests::POLL_INTERVAL).await;
            }
            Err(err) => panic!("health cannot connect: {err}"),
        }
    };
    loop {
        let info = health
            .info(context::current())
            .await
            .expect("health.info is answered");
        if info.open_connections == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server still counts {} open connections after {SETTLE_TIMEOUT:?}, not {n}",
            info.open_connections
        );
        tokio::time::sleep(tests::POLL_INTERVAL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_connections_are_refused_with_too_many_connections() {
    const LIMIT: usize = 8;
    let dir = TestDir::new();
    let server = dir
        .server()
        .arg("--max-connections")
        .arg(LIMIT.to_string())
        .start();
    check_limit(&server, LIMIT, Refusal::TooManyConnections { limit: LIMIT }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_connections_per_uid_are_refused_with_too_many_for_peer() {
    const LIMIT: usize = 4;
    let dir = TestDir::new();
    let server = dir
        .server()
        .arg("--max-connections")
        .arg("100")
        .arg("--max-connections-per-uid")
        .arg(LIMIT.to_string())
        .start();
    check_limit(&server, LIMIT, Refusal::TooManyForPeer { limit: LIMIT }).await;
}
