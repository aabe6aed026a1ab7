//! `--soak`: many clients on both transports for a long run, checking that every call gets
//! exactly its own answer and that the server's memory and descriptors stay flat.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rpc_client::{Connector, Target};
use rpc_core::services::echo::EchoClient;
use rpc_core::services::kv::KvClient;
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::machine::Machine;
use crate::servers::ServerProcess;

/// Connections per transport.
const CLIENTS_PER_TRANSPORT: usize = 16;
/// Calls kept in flight on each connection.
const IN_FLIGHT: usize = 4;
/// Largest echo payload; sizes cycle through powers of two up to it.
const MAX_PAYLOAD: usize = 64 * 1024;
/// How long calls still in flight at the end get to be answered before they count as lost.
const DRAIN: Duration = Duration::from_secs(15);
/// RSS growth from the first to the last sample (same clients connected) that still counts as
/// flat: allocator caches settle in the first minutes.
const RSS_SLACK_BYTES: u64 = 16 * 1024 * 1024;

/// The server's resident memory and open descriptors at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerSample {
    /// Seconds since the soak started.
    pub at_secs: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Entries in `/proc/<pid>/fd`.
    pub open_fds: usize,
}

/// What a soak run found.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// The machine.
    pub machine: Machine,
    /// Seconds of load.
    pub seconds: f64,
    /// Connections (half UDS, half TCP) and calls in flight on each.
    pub connections: usize,
    /// Calls in flight per connection.
    pub in_flight: usize,
    /// Calls sent.
    pub sent: u64,
    /// Calls answered with exactly their own answer.
    pub answered: u64,
    /// Calls that failed with an error.
    pub failed: u64,
    /// Answers that did not match their call (wrong payload or key): duplicated or crossed.
    pub mismatched: u64,
    /// Calls with no outcome after the drain period.
    pub lost: u64,
    /// Server before any client connected.
    pub before: ServerSample,
    /// Server samples during the load, first (after warm-up) to last.
    pub during: Vec<ServerSample>,
    /// Server after every client disconnected.
    pub after: ServerSample,
    /// Whether the run passed: nothing failed, mismatched or lost, descriptors back to where
    /// they started, RSS flat within the slack.
    pub passed: bool,
}

fn sample(pid: u32, started: Instant) -> anyhow::Result<ServerSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(ServerSample {
        at_secs: started.elapsed().as_secs_f64(),
        rss_bytes: rss_kib * 1024,
        open_fds,
    })
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    mismatched: AtomicU64,
}

/// Bytes that name their call: every answer can be checked against exactly one request.
fn unique_payload(client: usize, task: usize, seq: u64) -> Vec<u8> {
    let len = 16usize << (seq % 13) as usize;
    let tag = format!("{client}:{task}:{seq};");
    tag.bytes()
        .cycle()
        .take(len.min(MAX_PAYLOAD).max(tag.len()))
        .collect()
}

/// Runs the soak against `server` for `duration`.
pub async fn run(
    server: &ServerProcess,
    duration: Duration,
    out: &Path,
) -> anyhow::Result<SoakReport> {
    let pid = server.pid();
    let started = Instant::now();
    let before = sample(pid, started)?;
    let counters = Arc::new(Counters::default());
    let deadline = started + duration;

    let mut targets = Vec::new();
    for tcp in [false, true] {
        for _ in 0..CLIENTS_PER_TRANSPORT {
            targets.push(Target::Endpoint {
                endpoint: server.endpoint(tcp)?.clone(),
                token: server.token.clone(),
            });
        }
    }
    let mut tasks = Vec::new();
    for (client, target) in targets.into_iter().enumerate() {
        let connector = Connector::new(target);
        let echo = connector.connect::<EchoClient>().await?;
        let kv = connector.connect::<KvClient>().await?;
        for task in 0..IN_FLIGHT {
            let (echo, kv, counters) = (echo.clone(), kv.clone(), counters.clone());
            tasks.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    seq += 1;
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    let ok = if seq % 4 == 0 {
                        // kv: set then get a key only this task writes.
                        let key = format!("soak/{client}/{task}");
                        let value = seq.to_string();
                        let ctx = tarpc::context::current();
                        match kv.set(ctx, key.clone(), value.clone()).await {
                            Ok(Ok(_)) => match kv.get(tarpc::context::current(), key).await {
                                Ok(got) => Ok(got.as_deref() == Some(value.as_str())),
                                Err(e) => Err(e),
                            },
                            Ok(Err(_)) => Ok(false),
                            Err(e) => Err(e),
                        }
                    } else {
                        let sent = unique_payload(client, task, seq);
                        echo.echo(tarpc::context::current(), ByteBuf::from(sent.clone()))
                            .await
                            .map(|got| got.as_slice() == sent.as_slice())
                    };
                    match ok {
                        Ok(true) => counters.answered.fetch_add(1, Ordering::Relaxed),
                        Ok(false) => counters.mismatched.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counters.failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }

    let progress = ProgressBar::new(duration.as_secs().max(1)).with_style(
        ProgressStyle::with_template("soak {bar:40} {pos}/{len} s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut during = Vec::new();
    let warm_up = duration.min(Duration::from_secs(5)) / 2;
    tokio::time::sleep(warm_up).await;
    while Instant::now() < deadline {
        let s = sample(pid, started)?;
        progress.set_position(started.elapsed().as_secs());
        progress.set_message(format!(
            "{} answered, server rss {} MiB, {} fds",
            counters.answered.load(Ordering::Relaxed),
            s.rss_bytes >> 20,
            s.open_fds
        ));
        during.push(s);
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
    }
    during.push(sample(pid, started)?);
    progress.finish_and_clear();

    let drained = tokio::time::timeout(DRAIN, futures::future::join_all(tasks)).await;
    if drained.is_err() {
        eprintln!("soak: some calls had no answer {DRAIN:?} after the end");
    }
    // Every client connection is dropped with its task; give the server a moment to close them.
    let mut after = sample(pid, started)?;
    for _ in 0..50 {
        if after.open_fds <= before.open_fds {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = sample(pid, started)?;
    }

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (sent, answered, failed, mismatched) = (
        load(&counters.sent),
        load(&counters.answered),
        load(&counters.failed),
        load(&counters.mismatched),
    );
    let lost = sent - answered - failed - mismatched;
    let first = during.first().copied().unwrap_or(before);
    let last = during.last().copied().unwrap_or(before);
    let passed = failed == 0
        && mismatched == 0
        && lost == 0
        && answered > 0
        && after.open_fds <= before.open_fds
        && last.open_fds <= first.open_fds
        && last.rss_bytes <= first.rss_bytes + RSS_SLACK_BYTES;
    let report = SoakReport {
        machine: Machine::detect(),
        seconds: duration.as_secs_f64(),
        connections: 2 * CLIENTS_PER_TRANSPORT,
        in_flight: IN_FLIGHT,
        sent,
        answered,
        failed,
        mismatched,
        lost,
        before,
        during,
        after,
        passed,
    };
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "soak: {:.0} s, {} connections (UDS and TCP) x {} in flight",
        report.seconds, report.connections, report.in_flight
    );
    println!(
        "calls: {sent} sent, {answered} answered, {failed} failed, {mismatched} mismatched, {lost} lost"
    );
    println!(
        "server rss: {:.1} MiB before, {:.1} MiB at first sample, {:.1} MiB at last, {:.1} MiB after",
        mib(before.rss_bytes),
        mib(first.rss_bytes),
        mib(last.rss_bytes),
        mib(after.rss_bytes)
    );
    println!(
        "server fds: {} before, {} at first sample, {} at last, {} after",
        before.open_fds, first.open_fds, last.open_fds, after.open_fds
    );
    println!(
        "{}; wrote {}",
        if passed { "PASSED" } else { "FAILED" },
        out.join("soak.json").display()
    );
    Ok(report)
}
