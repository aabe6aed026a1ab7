//! `rpc-client watch`, the real CLI, on the real server's `kv.watch`: an event line for each set
//! made from another shell; a watcher stopped with SIGSTOP while 100 000 sets are made holds up
//! no set and costs the server little memory, and once resumed it prints `Lagged`, then live
//! events; a subscription open at the server's SIGTERM ends with the reason.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rpc_core::services::kv::KvClient;
use rpc_core::tarpc::context;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use tests::binaries::client_binary;
use tests::resources::Baseline;
use tests::{ServerProcess, TestDir, run_client_in, set_many};

/// How far above its baseline the server's memory may go while the watcher is stopped.
const RSS_BUDGET: u64 = 64 * 1024 * 1024;

/// `rpc-client watch kv.watch {"prefix": ""}` against `server`, its stdout read line by line
/// into the returned channel.
fn watcher(server: &ServerProcess) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(client_binary())
        .arg("--runtime-dir")
        .arg(server.runtime_dir())
        .args(["watch", "kv.watch", r#"{"prefix":""}"#])
        .env_remove(rpc_client::RPC_ENDPOINT)
        .env_remove(rpc_client::RPC_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rpc-client runs");
    let stdout = child.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, received)
}

/// The next line, as JSON, within `timeout`.
fn next_event(lines: &mpsc::Receiver<String>, timeout: Duration) -> Value {
    let line = lines
        .recv_timeout(timeout)
        .unwrap_or_else(|err| panic!("no event line within {timeout:?}: {err}"));
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
}

fn set_event(key: &str, value: &str) -> Value {
    json!({ "Item": { "Set": { "key": key, "value": value } } })
}

fn signal(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(child.id() as i32).expect("a pid");
    kill_process(pid, signal).expect("signalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_prints_each_set_and_after_sigstop_sees_lagged_then_live_events() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    let (mut watcher, lines) = watcher(&server);

    // The watch is open once a set shows up; until then sets go unseen.
    let started = Instant::now();
    let first = loop {
        kv.set(context::current(), "hello".into(), "world".into())
            .await
            .expect("answered")
            .expect("set");
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watch never opened"
        );
    };
    assert_eq!(
        serde_json::from_str::<Value>(&first).expect("JSON"),
        set_event("hello", "world")
    );
    while lines.recv_timeout(Duration::from_millis(200)).is_ok() {}

    // A set and a delete from another shell: one line each.
    let runtime_dir = server.runtime_dir();
    run_client_in(
        runtime_dir,
        &["call", "kv.set", r#"{"key":"a","value":"1"}"#],
        &[],
    )
    .json();
    assert_eq!(
        next_event(&lines, Duration::from_secs(5)),
        set_event("a", "1")
    );
    run_client_in(runtime_dir, &["call", "kv.delete", r#"{"key":"a"}"#], &[]).json();
    assert_eq!(
        next_event(&lines, Duration::from_secs(5)),
        json!({ "Item": { "Delete": { "key": "a" } } })
    );

    // Stopped: 100 000 sets go through, and the server holds little for the watcher.
    let baseline = Baseline::measure(server.pid()).await;
    signal(&watcher, Signal::STOP);
    set_many(&kv, "while-stopped-", 100_000).await;
    baseline.assert_rss_within(RSS_BUDGET, "a watcher stopped through 100 000 sets");

    // Resumed: what was in flight, a `Lagged` for what was lost, then live events.
    signal(&watcher, Signal::CONT);
    kv.set(context::current(), "marker".into(), "live".into())
        .await
        .expect("answered")
        .expect("set");
    let mut missed = 0;
    let mut live_after_lag = 0;
    loop {
        let event = next_event(&lines, Duration::from_secs(10));
        if event == set_event("marker", "live") {
            break;
        }
        if let Some(n) = event.pointer("/Lagged/missed") {
            missed += n.as_u64().expect("a count");
        } else if missed > 0 {
            live_after_lag += 1;
        }
    }
    eprintln!("the watcher missed {missed} events, then printed {live_after_lag} and the marker");
    assert!(missed > 0, "no Lagged line after the watcher was resumed");

    signal(&watcher, Signal::INT);
    let status = watcher.wait().expect("the watcher exits");
    assert_eq!(status.code(), Some(130), "Ctrl-C ends a watch with 130");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_with_the_reason_when_the_server_shuts_down() {
    use futures::StreamExt;

    let dir = TestDir::new();
    let mut server = dir.server().start();
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    let mut changes = kv
        .watch(context::current(), String::new())
        .await
        .expect("the watch opens");
    kv.set(context::current(), "k".into(), "v".into())
        .await
        .expect("answered")
        .expect("set");
    let first = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("an event within 5 s");
    assert!(
        matches!(&first, Some(Ok(rpc_core::StreamEvent::Item(_)))),
        "{first:?}"
    );

    server.send_sigterm();
    let last = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("the subscription ends within 5 s of SIGTERM");
    let Some(Err(rpc_core::tarpc::client::RpcError::Server(err))) = last else {
        panic!("expected the server's reason, got {last:?}");
    };
    assert!(err.detail.contains("shutting down"), "{}", err.detail);
    assert!(changes.next().await.is_none(), "nothing after the reason");
    assert!(server.wait_for_exit(Duration::from_secs(10)).success());
}
