//! `rpc-bench`: what a Unix socket, and the shared-memory lane beside it, buy over TCP loopback,
//! for this framework, measured against a raw-socket echo (the floor) and stock tarpc (the
//! library it builds on), in one run.
//!
//! By default it starts the real `rpc-server` (Unix socket and TCP at once) and the two baseline
//! servers as separate processes, measures sequential latency and throughput for each, prints a
//! table with the UDS/TCP, lane/socket and rpc/raw ratios, and writes `results.json` and
//! `report.svg`. The framework is measured over UDS twice, against the same server: `rpc uds`
//! is the socket path (the client turns the lane off, which is on by default) and `rpc-shm` the
//! shared-memory lane (`rpc_core::lane`, fields of 32 KiB or more through a memfd region); the
//! server's `/proc/<pid>/maps` shows each used the path it is named after (`lane_check.rs`).
//! The default payloads end with a 64 MiB row, sequential latency only on fewer subjects
//! (`large_payload.rs`). At the payloads up to 4 KiB it also measures the JSON path
//! (`JsonClient`, what `rpc-client call` uses) beside the typed call over UDS (see
//! `json_path.rs`). On the framework's own server it measures streams too, over the socket
//! path: their throughput (`stream_rate.rs`) and what a saturating stream costs the calls beside
//! it on the same connection (`beside_stream.rs`).

mod beside_stream;
mod chart;
mod dedicated;
mod json_path;
mod lane_check;
mod lane_targets;
mod large_payload;
mod machine;
mod measure;
mod raw;
mod report;
mod schedule;
mod servers;
mod soak;
mod spread;
mod steady_state;
mod stock;
mod stream_rate;
mod subject;
mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rpc_core::Endpoint;
use rpc_core::lane::ShmSize;
use rpc_core::limits::{DEFAULT_STREAM_WINDOW, MAX_STREAM_CREDIT};
use rpc_core::stream::DEFAULT_SOCKET_BUFFER;

use crate::dedicated::Dedicated;
use crate::lane_check::LaneCheck;
use crate::machine::Machine;
use crate::report::{Report, Settings};
use crate::schedule::{Plan, StreamPlan};
use crate::servers::ServerProcess;
use crate::subject::{Implementation, Subject, Transport};

// The same allocator as rpc-server, for every implementation measured here (clients and the
// baseline servers alike), so allocator differences do not pass for framework overhead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Payload sizes measured, bytes.
const PAYLOADS: [usize; 5] = [64, 4 << 10, 64 << 10, 1 << 20, large_payload::PAYLOAD];
/// Calls in flight per connection, for throughput.
const IN_FLIGHT: [usize; 3] = [1, 16, 64];
/// Connection counts, for throughput.
const CONNECTIONS: [usize; 2] = [1, 4];
/// The implementations whose streams are measured: the framework's, in its two configurations,
/// over the socket path (rpc-b is not: its build may predate streams; nor is rpc-shm).
const STREAMING: [Implementation; 2] = [Implementation::Rpc, Implementation::RpcCt];
/// Seconds per point by default.
const DEFAULT_SECONDS: f64 = 1.0;
/// Seconds per point with `--quick`.
const QUICK_SECONDS: f64 = 0.025;
/// Rounds each point's time is split into, spread over the run (see `schedule.rs`): every
/// figure is the median of its rounds, shown with their range (the same point measured a few
/// seconds apart varied up to 2x here).
const ROUNDS: u32 = 5;
/// Rounds with `--quick`: fewer, because every round of a throughput point waits for its calls'
/// answers after its window (see `steady_state.rs`), which at 1 MiB costs far more than the
/// quick run's window; three keep the rounds' rotation and medians exercised.
const QUICK_ROUNDS: u32 = 3;

/// Measure the framework over UDS (the socket path and the shared-memory lane, rpc-shm) and TCP
/// loopback, beside raw sockets and stock tarpc.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Time per measurement point, or the whole run with --soak: `1.5`, `60s`, `500ms`, `2m`
    /// [default: 1s per point, 0.025s with --quick, 60s with --soak].
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Worker threads for the rpc-server the bench starts [default: rpc-server's, one per core].
    #[arg(long, value_name = "N")]
    server_threads: Option<usize>,
    /// Instead of measuring, run many clients on both transports for --duration and check that
    /// no call is lost or answered twice and that the server's RSS and fds stay flat.
    #[arg(long)]
    soak: bool,
    /// A smoke run that finishes in well under a minute: every subject and payload (rpc-shm,
    /// the lane check and the 64 MiB row included), each point briefly.
    #[arg(long)]
    quick: bool,
    /// Where to write results.json and report.svg.
    #[arg(long, value_name = "DIR", default_value = "bench-results")]
    out: PathBuf,
    /// Measure only this payload size in bytes (repeatable, at most 64 MiB; above 8 MiB,
    /// sequential latency only, on rpc uds and tcp, rpc-shm, raw uds and tcp and tarpc uds)
    /// [default: 64, 4096, 65536, 1048576, 67108864].
    #[arg(long, value_name = "BYTES")]
    payload: Vec<usize>,
    /// Measure only these points: `calls` (latency, the JSON path, throughput; every
    /// implementation) or `streams` (stream throughput and calls beside a stream; the
    /// framework's server only: about 16 s at 1 s per point, where everything takes about 6
    /// minutes) [default: both].
    #[arg(long, value_name = "POINTS")]
    only: Option<Only>,
    /// The shared-memory region rpc-shm offers, and the rpc server the bench starts allows, in
    /// bytes: from 65536 to 1073741824 (0, no lane, is refused: rpc-shm would not be the lane)
    /// [default: the client's, 4 MiB; room for the payload above 8 MiB].
    #[arg(long, value_name = "BYTES", value_parser = lane_size)]
    shm_size: Option<ShmSize>,
    /// Measure stream throughput only at this item size in bytes (repeatable, at most 1 MiB)
    /// [default: 64, 65536].
    #[arg(long, value_name = "BYTES")]
    stream_item: Vec<usize>,
    /// The credit each stream the bench opens starts with, bytes [default: the client's, 256
    /// KiB].
    #[arg(long, value_name = "BYTES")]
    stream_window: Option<u64>,
    /// Measure a running rpc-server at this endpoint (repeat for UDS and TCP; a TCP endpoint
    /// needs RPC_TOKEN) instead of starting one: as rpc, the socket path only (rpc-shm needs the
    /// server the bench starts, whose maps prove the lane was used).
    #[arg(long, value_name = "ENDPOINT")]
    endpoint: Vec<Endpoint>,
    /// Also start this rpc-server binary (another build, e.g. of the previous commit) and
    /// measure it as `rpc-b` beside `rpc` in every round, for an A/B comparison in one run.
    #[arg(long, value_name = "PATH")]
    compare_server: Option<PathBuf>,
    #[command(subcommand)]
    serve: Option<Serve>,
}

/// Which points `--only` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    /// Latency, the JSON path and throughput of calls.
    Calls,
    /// Stream throughput and calls beside a stream.
    Streams,
}

/// The baseline servers, run as separate processes by the bench itself.
#[derive(Debug, Subcommand)]
enum Serve {
    /// Serve the raw length-prefixed echo.
    #[command(hide = true)]
    ServeRaw {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Serve echo with stock tarpc.
    #[command(hide = true)]
    ServeTarpc {
        #[arg(long)]
        dir: PathBuf,
        /// On a current-thread runtime (stock tarpc's fastest configuration here).
        #[arg(long)]
        current_thread: bool,
    },
}

/// A region size for `--shm-size`: one [`ShmSize`] takes, but not 0.
fn lane_size(text: &str) -> Result<ShmSize, String> {
    let size: ShmSize = text.parse()?;
    if size.is_off() {
        return Err("0 turns the lane off, and rpc-shm measures the lane".to_owned());
    }
    Ok(size)
}

/// Parses `1.5` (seconds), `60s`, `500ms` or `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(format!("`{text}` is not a duration like 60s, 500ms or 1.5")),
    }
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rpc-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Serve::ServeTarpc {
        dir,
        current_thread: true,
    }) = &args.serve
    {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the tokio runtime")?
            .block_on(stock::serve(dir));
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    match args.serve {
        Some(Serve::ServeRaw { dir }) => return runtime.block_on(raw::serve(&dir)),
        Some(Serve::ServeTarpc { dir, .. }) => return runtime.block_on(stock::serve(&dir)),
        None => {}
    }
    if args.soak {
        let duration = args.duration.unwrap_or(Duration::from_secs(60));
        let dir = tempfile::Builder::new().prefix("rpc-soak").tempdir()?;
        let server = servers::start_rpc_server(dir.path(), args.server_threads, &[])?;
        let report = runtime.block_on(soak::run(&server, duration, &args.out))?;
        anyhow::ensure!(
            report.passed,
            "the soak found lost, failed or mismatched calls, or growth"
        );
        return Ok(());
    }
    let per_point = args
        .duration
        .unwrap_or(Duration::from_secs_f64(if args.quick {
            QUICK_SECONDS
        } else {
            DEFAULT_SECONDS
        }));
    let seconds = per_point.as_secs_f64();
    let rounds = if args.quick { QUICK_ROUNDS } else { ROUNDS };
    let calls = args.only != Some(Only::Streams);
    let streams = args.only != Some(Only::Calls);
    anyhow::ensure!(
        calls || args.compare_server.is_none(),
        "--compare-server measures calls, and --only streams measures none: drop one of them"
    );
    let stream_items = if args.stream_item.is_empty() {
        stream_rate::ITEM_SIZES.to_vec()
    } else {
        args.stream_item.clone()
    };
    anyhow::ensure!(
        stream_items
            .iter()
            .all(|&b| b > 0 && b as u64 <= rpc_core::services::echo::MAX_STREAM_ITEM),
        "--stream-item must be between 1 byte and 1 MiB (the most echo.stream sends)"
    );
    anyhow::ensure!(
        args.stream_window
            .is_none_or(|b| (1..=MAX_STREAM_CREDIT).contains(&b)),
        "--stream-window must be between 1 byte and 64 MiB (the most credit a server holds)"
    );

    let payloads = if args.payload.is_empty() {
        PAYLOADS.to_vec()
    } else {
        args.payload.clone()
    };
    anyhow::ensure!(
        payloads
            .iter()
            .all(|&p| p > 0 && p <= large_payload::MAX_PAYLOAD),
        "--payload must be between 1 byte and 64 MiB"
    );

    if let Some(size) = args.shm_size {
        large_payload::set_shm_size(size);
    }

    let dir = tempfile::Builder::new().prefix("rpc-bench").tempdir()?;
    let (rpc_server, rpc_subjects) = if args.endpoint.is_empty() {
        // Room for the run's largest payload, over the socket and in the lane.
        let limits = large_payload::server_args(&payloads)?;
        let server = servers::start_rpc_server(dir.path(), args.server_threads, &limits)?;
        // The socket path over both transports, then the lane over the same Unix socket.
        let subjects = [
            (Implementation::Rpc, Transport::Uds),
            (Implementation::Rpc, Transport::Tcp),
            (Implementation::RpcShm, Transport::Uds),
        ]
        .into_iter()
        .map(|(implementation, t)| {
            Ok(Subject {
                implementation,
                transport: t,
                endpoint: server.endpoint(t == Transport::Tcp)?.clone(),
                token: server.token.clone(),
                dedicated: None,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
        (Some(server), subjects)
    } else {
        let token = match std::env::var(rpc_client::RPC_TOKEN) {
            Ok(text) if !text.is_empty() => Some(text.parse()?),
            _ => None,
        };
        let subjects = args
            .endpoint
            .iter()
            .map(|e| Subject {
                implementation: Implementation::Rpc,
                transport: if e.is_tcp() {
                    Transport::Tcp
                } else {
                    Transport::Uds
                },
                endpoint: e.clone(),
                token: token.clone(),
                dedicated: None,
            })
            .collect();
        (None, subjects)
    };
    // The framework's current-thread configuration, when the bench starts the server.
    let rpc_ct_server = match &rpc_server {
        Some(_) => {
            let ct_dir = dir.path().join("rpc-ct");
            std::fs::create_dir(&ct_dir)?;
            Some(servers::start_rpc_server_binary(
                &servers::sibling_binary("rpc-server")?,
                "bench-ct",
                &ct_dir,
                Some(1),
                &[],
            )?)
        }
        None => None,
    };
    // The baselines have no streams: with --only streams they are not started.
    let (raw_server, stock_server, stock_ct_server) = if calls {
        let stock_ct_dir = dir.path().join("current-thread");
        std::fs::create_dir(&stock_ct_dir)?;
        (
            Some(servers::start_baseline("serve-raw", dir.path(), &[])?),
            Some(servers::start_baseline("serve-tarpc", dir.path(), &[])?),
            Some(servers::start_baseline(
                "serve-tarpc",
                &stock_ct_dir,
                &["--current-thread"],
            )?),
        )
    } else {
        (None, None, None)
    };
    let mut subjects = rpc_subjects;
    let compared_server = match &args.compare_server {
        Some(binary) => {
            let server = servers::start_rpc_server_binary(
                binary,
                "compared",
                dir.path(),
                args.server_threads,
                &[],
            )
            .with_context(|| format!("cannot start {}", binary.display()))?;
            for transport in [Transport::Uds, Transport::Tcp] {
                subjects.push(Subject {
                    implementation: Implementation::RpcB,
                    transport,
                    endpoint: server.endpoint(transport == Transport::Tcp)?.clone(),
                    token: server.token.clone(),
                    dedicated: None,
                });
            }
            Some(server)
        }
        None => None,
    };
    for (implementation, server) in [
        (Implementation::RpcCt, rpc_ct_server.as_ref()),
        (Implementation::Raw, raw_server.as_ref()),
        (Implementation::Tarpc, stock_server.as_ref()),
        (Implementation::TarpcCt, stock_ct_server.as_ref()),
    ] {
        let Some(server) = server else { continue };
        for transport in [Transport::Uds, Transport::Tcp] {
            let dedicated = match implementation {
                // The client on a current-thread runtime too, one thread per subject.
                Implementation::RpcCt | Implementation::TarpcCt => Some(Arc::new(
                    Dedicated::start(&format!("{}-{}", implementation.name(), transport.name()))?,
                )),
                _ => None,
            };
            subjects.push(Subject {
                implementation,
                transport,
                endpoint: server.endpoint(transport == Transport::Tcp)?.clone(),
                token: server.token.clone(),
                dedicated,
            });
        }
    }

    let settings = Settings {
        payloads: payloads.clone(),
        in_flight: IN_FLIGHT.to_vec(),
        connections: CONNECTIONS.to_vec(),
        seconds_per_point: seconds,
        rounds,
        quick: args.quick,
        calls,
        streams,
        stream_items: stream_items.clone(),
        stream_window: args.stream_window.unwrap_or(DEFAULT_STREAM_WINDOW),
        socket_buffer: DEFAULT_SOCKET_BUFFER,
        shm_size: large_payload::region(1)?.bytes(),
        large_payloads: large_payload::note(&payloads),
        compared_server: args
            .compare_server
            .as_ref()
            .map(|path| path.display().to_string()),
        rpc_server: match &rpc_server {
            Some(s) => format!("started by rpc-bench (pid {})", s.pid()),
            None => format!(
                "given: {:?}",
                args.endpoint
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            ),
        },
    };
    // The JSON path is measured beside the typed rpc call over UDS, the first such subject.
    let typed_uds = subjects
        .iter()
        .position(|s| s.implementation == Implementation::Rpc && s.transport == Transport::Uds);
    let plan = Plan {
        subjects: &subjects,
        payloads: &payloads,
        in_flight: &IN_FLIGHT,
        connections: &CONNECTIONS,
        rounds,
        round: per_point / rounds,
        typed_uds,
        calls,
        streams: StreamPlan {
            subjects: (0..subjects.len())
                .filter(|&i| streams && STREAMING.contains(&subjects[i].implementation))
                .collect(),
            items: stream_items,
            window: args.stream_window,
        },
        lane_server: rpc_server.as_ref().map(ServerProcess::pid),
    };
    // Before any rpc-shm connection opens: the socket path's subjects must leave no region in
    // their servers (see lane_check.rs).
    for (implementation, server) in [
        (Implementation::Rpc, rpc_server.as_ref()),
        (Implementation::RpcCt, rpc_ct_server.as_ref()),
    ] {
        let (Some(server), Some(subject)) = (
            server,
            (subjects.iter())
                .find(|s| s.implementation == implementation && s.transport == Transport::Uds),
        ) else {
            continue;
        };
        runtime
            .block_on(lane_check::probe_socket_path(subject, server.pid()))
            .with_context(|| {
                format!(
                    "checking that {} uds is the socket path",
                    implementation.name()
                )
            })?;
    }
    let progress = ProgressBar::new(plan.points_per_round() as u64 * u64::from(rounds)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let measured = runtime.block_on(plan.run(&progress))?;
    progress.finish_and_clear();
    drop((
        rpc_server,
        rpc_ct_server,
        raw_server,
        stock_server,
        stock_ct_server,
        compared_server,
    ));

    let mut report = Report {
        machine: Machine::detect(),
        settings,
        latency: measured.latency,
        json_path: measured.json_path,
        throughput: measured.throughput,
        stream_rate: measured.stream_rate,
        beside_stream: measured.beside_stream,
        streams_not_measured: streams.then_some(stream_rate::NOT_MEASURED),
        targets: Vec::new(),
        lane_check: Some(measured.lane),
    };
    report.check_targets();
    print!("{}", report.to_text());
    report.write(&args.out)?;
    println!(
        "\nwrote {} and {}",
        args.out.join("results.json").display(),
        args.out.join("report.svg").display()
    );
    if let Some(LaneCheck::Failed { what }) = &report.lane_check {
        anyhow::bail!("the shared-memory lane was not used: {what}");
    }
    Ok(())
}
