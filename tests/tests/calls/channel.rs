//! The client's channel, where each call does its own I/O: calls from many tasks on one
//! connection, slow calls beside fast ones, and calls abandoned before their answer.

use std::time::{Duration, Instant};

use rpc_core::services::echo::EchoClient;
use serde_bytes::ByteBuf;
use tarpc::context;
use tests::{TestDir, calls_cancelled, wait_for_a_cancelled_call};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_many_tasks_on_one_connection_each_get_their_own_answer() {
    const TASKS: usize = 48;
    const CALLS: usize = 100;
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let echo = echo.clone();
            tokio::spawn(async move {
                for call in 0..CALLS {
                    // Sizes on both sides of the 32 KiB large-field threshold.
                    let len = (task * 997 + call * 131) % 40_000;
                    let mut sent = format!("task {task} call {call}:").into_bytes();
                    sent.resize(sent.len() + len, (task + call) as u8);
                    let echoed = echo
                        .echo(context::current(), ByteBuf::from(sent.clone()))
                        .await
                        .unwrap_or_else(|err| panic!("task {task} call {call}: {err}"));
                    assert!(
                        echoed.as_slice() == sent.as_slice(),
                        "task {task} call {call}: got another call's answer"
                    );
                }
            })
        })
        .collect();
    let all = futures::future::try_join_all(tasks);
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every task finished in time")
        .expect("no task panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_neither_delays_fast_ones_nor_is_lost_when_they_finish_first() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    let started = Instant::now();
    // The slow call waits first, so it is the task registered to read the socket when the fast
    // calls' answers arrive; when they are done it must be woken to read its own.
    let slow = tokio::spawn({
        let echo = echo.clone();
        async move {
            echo.delay(context::current(), 600)
                .await
                .expect("slow call");
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        echo.ping(context::current()).await.expect("fast call");
    }
    let fast = started.elapsed();
    let slow = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the slow call was answered, not left hanging")
        .expect("the slow task did not panic");
    assert!(
        fast < Duration::from_millis(550),
        "fast calls took {fast:?}: they waited behind the slow one"
    );
    assert!(
        slow >= Duration::from_millis(600) && slow < Duration::from_secs(3),
        "the slow call returned after {slow:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_abandoned_by_its_caller_is_cancelled_on_the_server_at_once() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");
    assert_eq!(calls_cancelled(&server).await, 0);

    // The call's own deadline is 10 s away; the caller gives up after 100 ms.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        echo.delay(context::current(), 30_000),
    )
    .await;
    assert!(abandoned.is_err(), "a 30 s call returned early");
    wait_for_a_cancelled_call(
        &server,
        Duration::from_secs(3),
        "the server kept running the abandoned call: no cancellation reached it",
    )
    .await;
    echo.ping(context::current())
        .await
        .expect("the connection still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_clients_frame_limit_fails_alone_and_the_connection_stays_usable() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .max_frame(rpc_core::FrameLimit::new(4096).expect("in range"))
        .connect::<EchoClient>()
        .await
        .expect("connects");
    let result = echo
        .echo(context::current(), ByteBuf::from(vec![7u8; 8192]))
        .await;
    match result {
        Err(tarpc::client::RpcError::Send(err)) => assert!(
            err.to_string().contains("frame limit"),
            "the error does not name the limit: {err}"
        ),
        other => panic!("an 8 KiB request under a 4 KiB limit gave {other:?}"),
    }
    let echoed = echo
        .echo(context::current(), ByteBuf::from(b"small".to_vec()))
        .await
        .expect("the same connection still serves");
    assert_eq!(echoed.as_slice(), b"small");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_its_task_stops_polling_holds_up_neither_later_calls_nor_other_tasks() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("connects");

    // Another task's call is waiting when this task polls a call once and leaves it aside: that
    // call is now the one registered with the socket, and its task will not poll it when the
    // other task's answer arrives.
    let other = tokio::spawn({
        let echo = echo.clone();
        async move {
            let started = Instant::now();
            echo.delay(context::current(), 200).await.expect("answered");
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut parked = Box::pin(echo.delay(context::current(), 300));
    let first = futures::poll!(parked.as_mut());
    assert!(first.is_pending(), "first poll: {first:?}");

    // Nothing else polls the connection now: the other task's call is answered within about the
    // channel's watcher interval (500 ms), not at its deadline.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        other.is_finished(),
        "the other task's 200 ms call is still waiting after 1.5 s"
    );

    // This task's own later calls go out and come back while the parked one holds its answer.
    let started = Instant::now();
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(3), echo.ping(context::current()))
            .await
            .expect("a later call is not held up by the parked one")
            .expect("answered");
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    let waited = other.await.expect("the other task did not panic");
    assert!(
        waited < Duration::from_millis(1500),
        "the other task's 200 ms call took {waited:?}"
    );
    assert!(
        parked.await.is_ok(),
        "the parked call still gets its answer"
    );
}

// Current-thread: tokio pauses time only on such a runtime.
#[tokio::test(flavor = "current_thread")]
async fn a_call_from_another_runtime_than_the_one_driving_its_socket_ends_at_its_deadline() {
    let dir = TestDir::new();
    let server = dir.server().start();
    // Connected on a current-thread runtime that nothing drives afterwards (as a
    // `BlockingClient`'s is between calls): the socket's readiness never arrives, and neither do
    // the watcher's ticks.
    let home = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let connector = server.connector();
    let echo = std::thread::spawn(move || {
        let echo = home
            .block_on(connector.connect::<EchoClient>())
            .expect("connects");
        (home, echo)
    })
    .join()
    .expect("the connecting thread");
    // Only this runtime's timer for the call can end it now, so it runs on paused time, which
    // jumps to that timer instead of waiting 1.5 s. (The server answers the ping at once; the
    // answer is never read, paused or not.)
    tokio::time::pause();
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + Duration::from_millis(1_500);
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), echo.1.ping(ctx))
        .await
        .expect("the call never ended");
    assert!(
        matches!(result, Err(tarpc::client::RpcError::DeadlineExceeded)),
        "expected a deadline error, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a 1.5 s deadline ended after {:?}",
        started.elapsed()
    );
    // The idle runtime is dropped off this runtime's worker threads.
    std::thread::spawn(move || drop(echo))
        .join()
        .expect("drops");
}
