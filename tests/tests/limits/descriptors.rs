//! File descriptors as the scarce resource: thousands of connections that never say hello, and a
//! server that runs out of descriptors altogether.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rpc_client::Client;
use rpc_core::services::echo::EchoClient;
use rpc_core::services::kv::KvClient;
use rpc_core::tarpc::context;
use tests::resources::{
    Baseline, SETTLE_TIMEOUT, cpu_time, raise_own_fd_limit, resident_bytes, wait_for_fds,
};
use tests::{ServerProcess, TestDir};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

/// Opens `count` connections to `server` that send nothing. Blocking connects, on a blocking
/// thread: a connect waits while the listen backlog is full instead of failing.
async fn open_silent_connections(server: &ServerProcess, count: usize) -> Vec<UnixStream> {
    let path = server
        .endpoint()
        .unix_path()
        .expect("a unix endpoint")
        .to_owned();
    let std_streams = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|n| {
                let stream = std::os::unix::net::UnixStream::connect(&path)
                    .unwrap_or_else(|err| panic!("connection {n} of {count} failed: {err}"));
                stream.set_nonblocking(true).expect("can be non-blocking");
                stream
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the connecting thread ends");
    std_streams
        .into_iter()
        .map(|stream| UnixStream::from_std(stream).expect("tokio takes the stream"))
        .collect()
}

/// Calls echo and kv over connections made before the test's mischief, again and again until
/// told to stop, counting in `answered` the rounds answered; every call must succeed.
fn keep_calling(
    echo: Client<EchoClient>,
    kv: Client<KvClient>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let payload = n.to_le_bytes().to_vec();
            let echoed = echo
                .echo(
                    context::current(),
                    serde_bytes::ByteBuf::from(payload.clone()),
                )
                .await
                .unwrap_or_else(|err| panic!("call {n} of the connected client failed: {err}"));
            assert_eq!(echoed.into_vec(), payload, "call {n} got another answer");
            let value = kv
                .get(context::current(), "bystander".into())
                .await
                .unwrap_or_else(|err| panic!("kv call {n} of the connected client failed: {err}"));
            assert_eq!(value.as_deref(), Some("here"));
            answered.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// Connections that never say hello, opened at once.
const SILENT: usize = 2000;

/// The handshake timeout of the server that gets them.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1000);

/// Resident memory the server may keep over its baseline after the silent connections are gone.
/// Each costs it about 17 KiB while open, and the allocator keeps the freed pages for reuse
/// (about 34 MiB for 2000, the same after every round): more than the default slack.
const SILENT_RSS_SLACK: u64 = 64 * 1024 * 1024;

/// How much a second round of silent connections may add to the first round's resident memory:
/// a leak of a few KiB per connection shows above it.
const SECOND_ROUND_RSS_SLACK: u64 = 8 * 1024 * 1024;

/// Opens [`SILENT`] connections that send nothing and checks that the server holds them all at
/// once, that it keeps answering the calls counted in `answered` meanwhile, and that it closes
/// each silent one (EOF, nothing sent) once the handshake timeout has passed.
async fn silent_round(
    server: &ServerProcess,
    baseline: &Baseline,
    answered: &AtomicU64,
    round: usize,
) {
    let opened = Instant::now();
    let mut silent = open_silent_connections(server, SILENT).await;
    let all_open = opened.elapsed();
    assert!(
        all_open < HANDSHAKE_TIMEOUT,
        "round {round}: opening {SILENT} connections took {all_open:?}, longer than the handshake timeout: the test cannot tell what it measures"
    );
    // Each is a descriptor in the server too.
    wait_for_fds(
        server.pid(),
        SETTLE_TIMEOUT,
        &format!("round {round}: the server to accept all {SILENT} connections"),
        |fds| fds >= baseline.fds() + SILENT,
    )
    .await;
    let answered_when_all_open = answered.load(Ordering::Relaxed);

    let closes = silent.iter_mut().enumerate().map(|(n, stream)| async move {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT + SETTLE_TIMEOUT, stream.read(&mut buf)).await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(len)) => panic!("round {round}: silent connection {n} was sent {len} bytes"),
            Ok(Err(err)) => {
                panic!("round {round}: silent connection {n} failed instead of closing: {err}")
            }
            Err(_) => panic!(
                "round {round}: silent connection {n} is still open long after the handshake timeout"
            ),
        }
    });
    futures::future::join_all(closes).await;
    let all_closed = opened.elapsed();
    assert!(
        all_closed >= HANDSHAKE_TIMEOUT - Duration::from_millis(50),
        "round {round}: the silent connections were closed after {all_closed:?}, before the handshake timeout"
    );
    let answered_meanwhile = answered.load(Ordering::Relaxed) - answered_when_all_open;
    assert!(
        answered_meanwhile >= 10,
        "round {round}: the connected client got only {answered_meanwhile} answers while {SILENT} silent connections were open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_silent_connections_are_closed_after_the_handshake_timeout_while_a_client_is_served()
 {
    let own_limit = raise_own_fd_limit();
    assert!(
        own_limit.is_none_or(|limit| limit > SILENT as u64 + 100),
        "this test needs over {SILENT} descriptors; the hard limit is {own_limit:?}"
    );
    let dir = TestDir::new();
    let server = dir
        .server()
        .arg("--max-connections")
        .arg("4096")
        .arg("--max-connections-per-uid")
        .arg("4096")
        .arg("--handshake-timeout-ms")
        .arg(HANDSHAKE_TIMEOUT.as_millis().to_string())
        .start();
    let echo = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect("echo connects");
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    kv.set(context::current(), "bystander".into(), "here".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    let baseline = Baseline::after_warm_up(&server).await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let caller = keep_calling(echo, kv, stop.clone(), answered.clone());
    // Twice: the first round fills the allocator's caches, the second must not add to them.
    silent_round(&server, &baseline, &answered, 1).await;
    baseline
        .assert_resources_restored("the first round of silent connections", SILENT_RSS_SLACK)
        .await;
    let after_first = resident_bytes(server.pid());
    silent_round(&server, &baseline, &answered, 2).await;

    stop.store(true, Ordering::Relaxed);
    caller
        .await
        .expect("every call of the connected client succeeded");
    baseline
        .assert_restored_within(
            &server,
            "two rounds of silent connections",
            SILENT_RSS_SLACK,
        )
        .await;
    let after_second = resident_bytes(server.pid());
    assert!(
        after_second <= after_first + SECOND_ROUND_RSS_SLACK,
        "the second round of {SILENT} silent connections left the server with {} MiB resident, up from {} MiB after the first: memory leaks per connection",
        after_second >> 20,
        after_first >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_out_of_descriptors_backs_off_instead_of_spinning_and_recovers() {
    /// Descriptors left to the server over its baseline before it runs out.
    const HEADROOM: usize = 8;
    /// Connections opened: well past what the server can accept.
    const CONNECTIONS: usize = 40;
    let dir = TestDir::new();
    // Accepted connections that never say hello keep their descriptors for the whole test.
    let mut server = dir
        .server()
        .arg("--handshake-timeout-ms")
        .arg("60000")
        .start();
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    kv.set(context::current(), "bystander".into(), "here".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    let baseline = Baseline::after_warm_up(&server).await;

    // The server raises its soft limit to the hard one as it starts; lower both under it.
    let limit = (baseline.fds() + HEADROOM) as u64;
    rustix::process::prlimit(
        Some(rustix::process::Pid::from_raw(server.pid() as i32).expect("a valid pid")),
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .expect("the server's open-file limit can be lowered");

    let extra = open_silent_connections(&server, CONNECTIONS).await;
    wait_for_fds(
        server.pid(),
        SETTLE_TIMEOUT,
        "the server to use every descriptor it may",
        |fds| fds as u64 >= limit,
    )
    .await;
    tests::wait_for(SETTLE_TIMEOUT, "the failed accepts to be logged", || {
        server.stderr().contains("accept failed; backing off")
    });

    // Out of descriptors, with connections waiting: accept fails at once, every time.
    let sampled = Duration::from_secs(1);
    let before = cpu_time(server.pid());
    tokio::time::sleep(sampled).await;
    let used = cpu_time(server.pid()) - before;
    eprintln!("out of descriptors, the server used {used:?} of CPU in {sampled:?}");
    assert!(
        used < Duration::from_millis(250),
        "out of descriptors, the server used {used:?} of CPU in {sampled:?}: it retries accept without pause"
    );
    assert!(server.is_running(), "the server died out of descriptors");
    let value = kv
        .get(context::current(), "bystander".into())
        .await
        .expect("a connection made before is answered while the server is out of descriptors");
    assert_eq!(value.as_deref(), Some("here"));

    drop(extra);
    baseline
        .assert_restored(&server, "running out of descriptors")
        .await;
    assert!(server.is_running(), "the server died out of descriptors");
}
