//! Running the `rpc-client` CLI, and checking that a normal library client is served.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use rpc_client::{Client, Connector};
use rpc_core::services::echo::EchoClient;
use rpc_core::services::health::HealthClient;
use rpc_core::services::kv::KvClient;
use rpc_core::tarpc::context;

use crate::binaries::client_binary;

/// How an `rpc-client` run ended.
#[derive(Debug)]
pub struct ClientOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl ClientOutput {
    /// The JSON it printed; panics with its stderr if it failed or printed something else.
    pub fn json(&self) -> serde_json::Value {
        assert!(
            self.status.success(),
            "rpc-client failed ({}): {}",
            self.status,
            self.stderr
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("rpc-client printed no JSON ({err}): {}", self.stdout))
    }
}

/// Runs the `rpc-client` CLI with `args` and the extra environment `env`, and waits for it.
/// `RPC_ENDPOINT` and `RPC_TOKEN` are cleared first, so only the test decides where it connects.
pub fn run_client<I, S>(args: I, env: &[(&str, &str)]) -> ClientOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(client_binary())
        .args(args)
        .env_remove(rpc_client::RPC_ENDPOINT)
        .env_remove(rpc_client::RPC_TOKEN)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("rpc-client runs");
    ClientOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the `rpc-client` CLI in `runtime_dir` as [`run_client_in`] does, with `input` on its
/// stdin.
pub fn run_client_with_stdin(runtime_dir: &Path, args: &[&str], input: &str) -> ClientOutput {
    use std::io::Write as _;
    let mut child = Command::new(client_binary())
        .arg("--runtime-dir")
        .arg(runtime_dir)
        .args(args)
        .env_remove(rpc_client::RPC_ENDPOINT)
        .env_remove(rpc_client::RPC_TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rpc-client runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(input.as_bytes())
        .expect("rpc-client reads stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("rpc-client finishes");
    ClientOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the `rpc-client` CLI as [`run_client`] does, with `--runtime-dir runtime_dir` first.
pub fn run_client_in(runtime_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> ClientOutput {
    let mut all: Vec<&OsStr> = vec!["--runtime-dir".as_ref(), runtime_dir.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    run_client(all, env)
}

/// Checks that a normal client is served through `connector`: new `echo` and `kv` connections
/// each answer a call correctly. Panics otherwise.
pub async fn assert_serves_calls(connector: &Connector) {
    static NEXT_KEY: AtomicU64 = AtomicU64::new(0);
    let n = NEXT_KEY.fetch_add(1, Ordering::Relaxed);

    let echo = connector
        .connect::<EchoClient>()
        .await
        .expect("an echo client connects");
    let payload = format!("still served {n}").into_bytes();
    let echoed = echo
        .echo(
            context::current(),
            serde_bytes::ByteBuf::from(payload.clone()),
        )
        .await
        .expect("echo.echo is answered");
    assert_eq!(echoed.into_vec(), payload, "echo.echo returned other bytes");

    let kv = connector
        .connect::<KvClient>()
        .await
        .expect("a kv client connects");
    let key = format!("probe-{}-{n}", std::process::id());
    let replaced = kv
        .set(context::current(), key.clone(), "value".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    assert_eq!(replaced, None, "a fresh key had a value");
    let value = kv
        .get(context::current(), key)
        .await
        .expect("kv.get is answered");
    assert_eq!(value.as_deref(), Some("value"));
}

/// A kv client connected, and answered once, before a test's mischief begins.
pub async fn bystander(server: &crate::ServerProcess) -> Client<KvClient> {
    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    kv.set(context::current(), "bystander".into(), "here".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    kv
}

/// A client connected before a hostile one, and the server's resources at that point.
pub struct Watched {
    /// Connected and answered before the mischief.
    pub bystander: Client<KvClient>,
    /// The server's descriptors and memory once the bystander was served.
    pub baseline: crate::resources::Baseline,
}

/// Connects a [`bystander`], then measures the server's baseline.
pub async fn watch(server: &crate::ServerProcess) -> Watched {
    let bystander = bystander(server).await;
    let baseline = crate::resources::Baseline::after_warm_up(server).await;
    Watched {
        bystander,
        baseline,
    }
}

/// Checks that a [`bystander`]'s connection is still answered.
pub async fn assert_bystander_served(bystander: &Client<KvClient>) {
    let value = bystander
        .get(context::current(), "bystander".into())
        .await
        .expect("the connection opened earlier is still answered");
    assert_eq!(value.as_deref(), Some("here"));
}

/// The server's count of calls dropped before they finished (past their deadline or
/// cancelled), from its `health` service over a new connection.
pub async fn calls_cancelled(server: &crate::ServerProcess) -> u64 {
    let health = server
        .connector()
        .connect::<HealthClient>()
        .await
        .expect("health connects");
    health
        .info(context::current())
        .await
        .expect("health answers")
        .calls_cancelled
}

/// Waits until the server counts a cancelled call; panics with `failure` after `within`.
pub async fn wait_for_a_cancelled_call(
    server: &crate::ServerProcess,
    within: std::time::Duration,
    failure: &str,
) {
    let until = std::time::Instant::now() + within;
    while calls_cancelled(server).await == 0 {
        assert!(std::time::Instant::now() < until, "{failure}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Makes `count` sets of the 10 000 keys `{prefix}{i}` (the store holds at most 100 000), 64
/// calls at a time; fails if a set fails, or if they take
/// longer than a minute together (sets that waited for a stalled watcher would never finish).
pub async fn set_many(kv: &Client<KvClient>, prefix: &str, count: usize) {
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| async move {
            kv.set(
                context::current(),
                format!("{prefix}{}", i % 10_000),
                "v".into(),
            )
            .await
            .expect("kv.set is answered")
            .expect("kv.set succeeds");
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{count} sets took {:?}",
        started.elapsed()
    );
}
