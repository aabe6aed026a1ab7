//! Deadlines, cancellation and reconnection: what happens to calls when time runs out or the
//! server goes away.

use std::time::{Duration, Instant};

use rpc_client::{CallInterrupted, Reconnecting};
use rpc_core::services::echo::{self, EchoClient, EchoRequest};
use rpc_core::services::health::HealthClient;
use tarpc::client::RpcError;
use tarpc::context;
use tests::raw::{accepted, echo_service_frame};
use tests::{TestDir, calls_cancelled, wait_for_a_cancelled_call};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn deadline_in(timeout: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_fails_at_the_client_and_is_cancelled_on_the_server() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    assert_eq!(calls_cancelled(&server).await, 0);

    let started = Instant::now();
    let result = echo
        .delay(deadline_in(Duration::from_millis(200)), 5_000)
        .await;
    assert!(
        matches!(result, Err(RpcError::DeadlineExceeded)),
        "expected a deadline error, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the client waited {:?} for a 200 ms deadline",
        started.elapsed()
    );
    // The server dropped the handler at the deadline: it counts as cancelled, not served, well
    // before the handler's own 5 s would have passed.
    wait_for_a_cancelled_call(
        &server,
        Duration::from_secs(3),
        "the server never cancelled the late call",
    )
    .await;
    echo.ping(context::current())
        .await
        .expect("the connection still serves");
}

// Current-thread: tokio pauses time only on such a runtime.
#[tokio::test(flavor = "current_thread")]
async fn a_call_with_a_distant_deadline_still_fails_when_it_passes() {
    // A call whose deadline is more than a second away arms no timer at first; the channel's
    // watcher must tell it to when the deadline draws near.
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    // Connected: from here only this process's timers end the call (the watcher's ticks and
    // the call's own timer), so they run on paused time, which jumps from timer to timer
    // instead of waiting 1.5 s. The server acts on its own clock and sends nothing either way.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    // The server drops the handler at the deadline and sends nothing: without its timer the
    // call would wait forever.
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        echo.delay(deadline_in(Duration::from_millis(1_500)), 6_000),
    )
    .await
    .expect("the call never ended");
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(RpcError::DeadlineExceeded)),
        "expected a deadline error, got {result:?}"
    );
    assert!(
        waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(4),
        "a call with a 1.5 s deadline failed after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drops_a_handler_at_its_deadline_even_if_the_client_never_cancels() {
    let dir = TestDir::new();
    let server = dir.server().start();
    // By hand, so that no `Cancel` follows the deadline: only the server's own timer acts.
    let mut stream = accepted(&server, echo::NAME).await;
    stream
        .write_all(&echo_service_frame(
            1,
            deadline_in(Duration::from_millis(200)),
            EchoRequest::Delay { ms: 5_000 },
        ))
        .await
        .expect("the request is sent");
    wait_for_a_cancelled_call(
        &server,
        Duration::from_secs(3),
        "the server never dropped the call past its deadline",
    )
    .await;
    // No answer is sent for it: its client stopped waiting at the deadline.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "the server answered a call past its deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_in_flight_limit_fails_at_once_and_the_others_finish() {
    let dir = TestDir::new();
    let server = dir.server().arg("--max-in-flight").arg("2").start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    let slow = |echo: rpc_client::Client<EchoClient>| async move {
        echo.delay(context::current(), 2_000).await
    };
    let first = tokio::spawn(slow(echo.clone()));
    let second = tokio::spawn(slow(echo.clone()));
    // Wait until the server runs both (its count of calls started).
    let health = server
        .connector()
        .connect::<HealthClient>()
        .await
        .expect("health connects");
    let until = Instant::now() + Duration::from_secs(3);
    while health
        .info(context::current())
        .await
        .expect("health answers")
        .calls_in_progress
        < 2
    {
        assert!(Instant::now() < until, "the two slow calls never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Refused, not queued behind the slow calls.
    match echo.ping(context::current()).await {
        Err(RpcError::Server(err)) => assert_eq!(err.kind, std::io::ErrorKind::WouldBlock),
        other => panic!("a third call on a connection limited to 2 got {other:?}"),
    }
    assert!(
        !first.is_finished() && !second.is_finished(),
        "the refusal came only after a slow call finished"
    );
    first
        .await
        .expect("joins")
        .expect("the first slow call finishes");
    second
        .await
        .expect("joins")
        .expect("the second slow call finishes");
    echo.ping(context::current())
        .await
        .expect("with the slow calls done, the connection serves again");
}

async fn reconnecting(server: &tests::ServerProcess) -> Reconnecting<EchoClient> {
    server
        .connector()
        .reconnecting::<EchoClient>()
        .await
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_next_call_reconnects_and_succeeds() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let echo = reconnecting(&server).await;
    echo.ping(context::current()).await.expect("first call");

    server.kill();
    let server = dir.server().start(); // the stale socket is reclaimed
    echo.ping(context::current())
        .await
        .expect("the call after the restart reconnects");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_when_the_server_dies_fails_clearly_and_is_not_retried() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let echo = reconnecting(&server).await;

    let in_flight = tokio::spawn({
        let echo = echo.clone();
        async move { echo.delay(context::current(), 2_000).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    let result = in_flight.await.expect("call task");
    match result {
        Err(RpcError::Send(err)) => assert!(
            err.downcast_ref::<CallInterrupted>().is_some(),
            "expected CallInterrupted, got {err}"
        ),
        other => panic!("expected the interrupted call to fail, got {other:?}"),
    }

    // Not retried: the restarted server never saw it (no call served but the health probe).
    let server = dir.server().start();
    echo.ping(context::current()).await.expect("reconnects");
    let health = server
        .connector()
        .connect::<HealthClient>()
        .await
        .expect("health");
    let info = health.info(context::current()).await.expect("info");
    assert_eq!(info.calls_served, 1, "only the ping ran on the new server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_call_in_flight_is_resent_once_the_server_is_back() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let echo = server
        .connector()
        .reconnecting_with_retry::<EchoClient>(|request| {
            matches!(request, EchoRequest::Delay { .. })
        })
        .await
        .expect("connects");

    let in_flight = tokio::spawn({
        let echo = echo.clone();
        async move { echo.delay(context::current(), 500).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    let server = dir.server().start();
    in_flight
        .await
        .expect("call task")
        .expect("the idempotent call is resent and answered");
    let health = server
        .connector()
        .connect::<HealthClient>()
        .await
        .expect("health");
    let info = health.info(context::current()).await.expect("info");
    assert_eq!(
        info.calls_served, 1,
        "the resent call ran once on the new server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_gives_up_at_the_deadline_with_the_connect_error() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let echo = reconnecting(&server).await;
    server.kill();
    // Let the client see the connection close first: a call sent in that instant counts as in
    // flight (see the previous test).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let result = echo.ping(deadline_in(Duration::from_millis(500))).await;
    let Err(RpcError::Send(err)) = result else {
        panic!("expected a connect failure, got {result:?}");
    };
    let text = rpc_core::error_chain(err.as_ref());
    assert!(text.contains("is rpc-server running?"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
