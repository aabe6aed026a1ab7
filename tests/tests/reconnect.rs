//! Deadlines, cancellation and reconnection: what happens to calls when time runs out or the
//! server goes away.

use std::time::{Duration, Instant};

use rpc_client::{CallInterrupted, ReconnectingChannel};
use rpc_core::services::echo::{self, EchoClient, EchoRequest, EchoResponse};
use rpc_core::services::health::HealthClient;
use tarpc::client::RpcError;
use tarpc::context;
use tests::{TestDir, calls_cancelled, wait_for_a_cancelled_call};

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

async fn reconnecting(
    server: &tests::ServerProcess,
) -> ReconnectingChannel<EchoRequest, EchoResponse> {
    server
        .connector()
        .reconnecting(echo::NAME)
        .await
        .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_next_call_reconnects_and_succeeds() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let echo = EchoClient::from(reconnecting(&server).await);
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
    let echo = EchoClient::from(reconnecting(&server).await);

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
    let stub = reconnecting(&server)
        .await
        .retry_idempotent(|request| matches!(request, EchoRequest::Delay { .. }));
    let echo = EchoClient::from(stub);

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
    let echo = EchoClient::from(reconnecting(&server).await);
    server.kill();
    // Let the client see the connection close first: a call sent in that instant counts as in
    // flight (see the previous test).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let result = echo.ping(deadline_in(Duration::from_millis(500))).await;
    let Err(RpcError::Send(err)) = result else {
        panic!("expected a connect failure, got {result:?}");
    };
    let text = rpc_core::codec::error_chain(err.as_ref());
    assert!(text.contains("is rpc-server running?"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
