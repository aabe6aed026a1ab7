//! Clients that survive their server's restart, of every kind an app embeds: async on a
//! multi-thread runtime, async on a current-thread runtime driven by `block_on` once per call
//! (what a UI thread does: nothing runs between calls), [`BlockingClient`], and [`JsonClient`];
//! with the server killed (SIGKILL, a crash) and stopped cleanly (SIGTERM, which also removes
//! its socket). For each: a call while the server is down backs off until its deadline and
//! fails clearly; the first call after the restart succeeds; and a call made while the server
//! is down succeeds if the server comes back before its deadline. A restarted server that
//! accepts but does not answer (SIGSTOP) costs a call no more than its deadline. (The C ABI's
//! own restart tests are in `rpc-ffi/tests/`.)

use std::time::{Duration, Instant};

use rpc_client::{BlockingClient, Connector, JsonClient};
use rpc_core::services::echo::EchoClient;
use tarpc::context;
use tests::{ServerProcess, TestDir, wait_for};

/// How the server goes away.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill,
    Term,
}

impl Stop {
    fn apply(self, server: &mut ServerProcess) {
        match self {
            Stop::Kill => server.kill(),
            Stop::Term => {
                let status = server.terminate();
                assert!(status.success(), "a clean stop exits 0, got {status}");
            }
        }
    }
}

/// A client under test: one call with the given deadline.
type Call<'a> = Box<dyn FnMut(Duration) -> Result<(), String> + 'a>;

/// A deadline short enough to wait out while the server is down, long enough for a few
/// backoff steps (50, 100, 200 ms).
const DOWN_DEADLINE: Duration = Duration::from_millis(700);

/// A deadline long enough for a server to start on a loaded machine.
const UP_DEADLINE: Duration = Duration::from_secs(8);

fn ctx(deadline: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + deadline;
    ctx
}

/// The scenario every client kind goes through; `connect` makes the client for a connector.
fn survives_restarts(stop: Stop, connect: impl FnOnce(Connector) -> Call<'static>) {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let mut call = connect(server.connector());
    call(UP_DEADLINE).expect("the first call");

    // Down: the call reconnects, backing off, until its deadline, then fails with why.
    stop.apply(&mut server);
    let started = Instant::now();
    let err = call(DOWN_DEADLINE).expect_err("a call with no server fails");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "a call with no server ({stop:?}) failed after {waited:?}, without backing off until its deadline: {err}"
    );
    assert!(
        waited < DOWN_DEADLINE + Duration::from_secs(2),
        "a call with no server took {waited:?} for a {DOWN_DEADLINE:?} deadline"
    );
    assert!(
        err.contains("no server") || err.contains("is rpc-server running"),
        "the error says the server is not there: {err}"
    );

    // Back: the first call after the restart succeeds.
    let mut server = dir.server().start();
    call(UP_DEADLINE).expect("the first call after the restart succeeds");

    // Down again, and back while a call waits: that call succeeds.
    stop.apply(&mut server);
    let restart = {
        let command = dir.server();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            command.start()
        })
    };
    let result = call(UP_DEADLINE);
    let server = restart.join().expect("the server restarts");
    result.expect("a call made while the server was down succeeds once it is back");
    call(UP_DEADLINE).expect("and the next one");
    drop(server);
}

/// A server that accepts connections but never answers (stopped with SIGSTOP, after a restart
/// the client has not reconnected to yet): a call reconnecting to it fails at its own deadline,
/// not at the connect timeout (5 s), and succeeds once the server runs again.
fn a_stuck_server_costs_a_call_no_more_than_its_deadline(
    connect: impl FnOnce(Connector) -> Call<'static>,
) {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let mut call = connect(server.connector());
    call(UP_DEADLINE).expect("the first call");
    server.kill();
    let server = dir.server().start();
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).expect("SIGSTOP");
    // The signal is delivered to each thread on its own: until every one has stopped, the server
    // may still answer a handshake.
    wait_for(Duration::from_secs(5), "the server to stop", || {
        all_threads_stopped(server.pid())
    });
    let started = Instant::now();
    let err = call(DOWN_DEADLINE).expect_err("a stopped server answers nothing");
    let waited = started.elapsed();
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).expect("SIGCONT");
    assert!(
        waited < DOWN_DEADLINE + Duration::from_millis(1_500),
        "a call with a {DOWN_DEADLINE:?} deadline waited {waited:?} on a stopped server: {err}"
    );
    assert!(err.contains("timed out"), "the error says why: {err}");
    call(UP_DEADLINE).expect("the server runs again");
}

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/<pid>/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a runtime")
}

/// `Connector::reconnecting`, each call a `block_on` of its own on `runtime`.
fn reconnecting(multi_thread: bool) -> impl FnOnce(Connector) -> Call<'static> {
    move |connector| {
        let runtime = runtime(multi_thread);
        let echo = runtime
            .block_on(connector.reconnecting::<EchoClient>())
            .expect("connects");
        Box::new(move |deadline| {
            runtime
                .block_on(echo.ping(ctx(deadline)))
                .map_err(|err| rpc_core::error_chain(&err))
        })
    }
}

fn blocking(connector: Connector) -> Call<'static> {
    let echo = BlockingClient::<EchoClient>::connect(connector).expect("connects");
    Box::new(move |deadline| {
        echo.call(async |echo, mut ctx| {
            ctx.deadline = Instant::now() + deadline;
            echo.ping(ctx).await
        })
        .map_err(|err| rpc_core::error_chain(&err))
    })
}

fn json(connector: Connector) -> Call<'static> {
    let runtime = runtime(false);
    let echo = runtime
        .block_on(JsonClient::connect(&connector, "echo"))
        .expect("connects");
    Box::new(move |deadline| {
        let value = runtime
            .block_on(echo.call(ctx(deadline), "ping", &serde_json::Value::Null))
            .map_err(|err| rpc_core::error_chain(&err))?;
        assert_eq!(value, serde_json::Value::Null, "ping answers null");
        Ok(())
    })
}

#[test]
fn async_multi_thread_after_sigkill() {
    survives_restarts(Stop::Kill, reconnecting(true));
}

#[test]
fn async_multi_thread_after_sigterm() {
    survives_restarts(Stop::Term, reconnecting(true));
}

#[test]
fn async_current_thread_after_sigkill() {
    survives_restarts(Stop::Kill, reconnecting(false));
}

#[test]
fn async_current_thread_after_sigterm() {
    survives_restarts(Stop::Term, reconnecting(false));
}

#[test]
fn blocking_after_sigkill() {
    survives_restarts(Stop::Kill, blocking);
}

#[test]
fn blocking_after_sigterm() {
    survives_restarts(Stop::Term, blocking);
}

#[test]
fn json_after_sigkill() {
    survives_restarts(Stop::Kill, json);
}

#[test]
fn json_after_sigterm() {
    survives_restarts(Stop::Term, json);
}

#[test]
fn async_multi_thread_on_a_stuck_server() {
    a_stuck_server_costs_a_call_no_more_than_its_deadline(reconnecting(true));
}

#[test]
fn async_current_thread_on_a_stuck_server() {
    a_stuck_server_costs_a_call_no_more_than_its_deadline(reconnecting(false));
}

#[test]
fn blocking_on_a_stuck_server() {
    a_stuck_server_costs_a_call_no_more_than_its_deadline(blocking);
}

#[test]
fn json_on_a_stuck_server() {
    a_stuck_server_costs_a_call_no_more_than_its_deadline(json);
}

/// A `BlockingClient` made, called and dropped on a thread that runs a tokio runtime (an async
/// command handler in a desktop framework) works, on either flavour of runtime.
#[test]
fn a_blocking_client_works_inside_a_tokio_runtime() {
    let dir = TestDir::new();
    let server = dir.server().start();
    for multi_thread in [false, true] {
        let connector = server.connector();
        runtime(multi_thread).block_on(async move {
            let echo = BlockingClient::<EchoClient>::connect(connector).expect("connects");
            let answer = echo.call(async |echo, ctx| {
                echo.echo(ctx, serde_bytes::ByteBuf::from(b"inside".to_vec()))
                    .await
            });
            assert_eq!(answer.expect("answered").as_ref(), b"inside");
            drop(echo);
        });
    }
}
