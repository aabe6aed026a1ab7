//! `rpc-server`: serves the built-in `echo`, `kv` and `health` services.
//!
//! Listens on `<runtime-dir>/<name>.sock` by default (TCP loopback when a Unix socket cannot be
//! used), prints `listening on <endpoint>` per endpoint once ready, and shuts down gracefully on
//! SIGINT or SIGTERM. Under systemd it serves the sockets passed by socket activation instead of
//! `auto`, and tells a `Type=notify` unit when it is ready and stopping ([`rpc_server::systemd`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rpc_core::lane::ShmSize;
use rpc_core::untrusted::EscapingWriter;
use rpc_core::{FrameLimit, ServerLocation, location::DEFAULT_NAME};
use rpc_server::limits::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_UID,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_STREAMS, DEFAULT_READ_TIMEOUT, DEFAULT_SHUTDOWN_GRACE,
};
use rpc_server::shutdown::ShutdownSignals;
use rpc_server::{AccessPolicy, Limits, Listen, Server, ServerConfig, add_builtin_services};

/// Serve the built-in services over a Unix socket, with TCP loopback as the fallback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to listen: `auto`, `unix:/abs/path.sock` or `tcp:127.0.0.1:PORT`; repeat for several.
    /// `auto` (the default) is `<runtime-dir>/<name>.sock`, or 127.0.0.1 on an ephemeral port
    /// when a Unix socket cannot be used there. Sockets passed by systemd socket activation
    /// (LISTEN_FDS) are served too, and replace the default `auto`.
    #[arg(long = "listen", value_name = "ENDPOINT")]
    listen: Vec<Listen>,
    /// The server's name: its socket is `<name>.sock` and endpoint file `<name>.endpoint`.
    #[arg(long, default_value = DEFAULT_NAME)]
    name: String,
    /// Directory for the socket and endpoint file [default: $XDG_RUNTIME_DIR, else /tmp/rpc-<uid>].
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Permissions of the Unix socket file, in octal.
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = parse_mode)]
    socket_mode: u32,
    /// Also allow Unix peers with this uid (the server's own uid and root always may).
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uid: Vec<u32>,
    /// Also allow Unix peers whose primary group is this gid.
    #[arg(long = "allow-gid", value_name = "GID")]
    allow_gid: Vec<u32>,
    /// Largest frame accepted or sent, in bytes, from 4096 to 4294967295 [default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    max_frame: Option<FrameLimit>,
    /// Most connections open at once (at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = positive::<usize>)]
    max_connections: usize,
    /// Most connections open at once from one uid (all TCP peers count as one; at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_UID, value_parser = positive::<usize>)]
    max_connections_per_uid: usize,
    /// Most calls in flight on one connection (at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = positive::<usize>)]
    max_in_flight: usize,
    /// Most streams open at once on one connection (at least 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_STREAMS, value_parser = positive::<usize>)]
    max_streams: usize,
    /// Time a new connection has to complete its handshake, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.as_millis() as u64, value_parser = positive::<u64>)]
    handshake_timeout_ms: u64,
    /// Time a frame may take to arrive once it has started, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_READ_TIMEOUT.as_millis() as u64, value_parser = positive::<u64>)]
    read_timeout_ms: u64,
    /// Time in-flight calls get to finish after SIGINT/SIGTERM, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_SHUTDOWN_GRACE.as_millis() as u64)]
    shutdown_grace_ms: u64,
    /// Size of each shared-memory region of a Unix connection, in bytes: 0 (no shared-memory
    /// lane), or from 65536 to 1073741824 [default: 4 MiB]. Clients use the smaller of theirs
    /// and this.
    #[arg(long, value_name = "BYTES")]
    shm_size: Option<ShmSize>,
    /// Runtime worker threads, at least 1 [default: one per core].
    #[arg(long, value_name = "N", value_parser = positive::<usize>)]
    threads: Option<usize>,
}

/// A count or a time that must be at least 1: `0` connections, calls or threads, or a timeout of
/// 0 ms, would leave a server that serves nothing, so it is refused (clap names the flag) rather
/// than quietly raised to 1.
fn positive<T: std::str::FromStr + PartialEq + From<u8>>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(value) if value == T::from(0) => Err("must be at least 1".to_owned()),
        Ok(value) => Ok(value),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

// Large messages allocate and free megabyte buffers on every call; glibc's allocator returns such
// blocks to the kernel and faults them back in, which rpc-bench measured as a large share of a
// 1 MiB call. mimalloc keeps them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!("`{text}` is not an octal mode like 0600")),
    }
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rpc-server: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // tarpc opens an info-level span per call, formatted eagerly (a timestamp and
                // a trace id): microseconds per call for lines nobody reads. Off by default.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tarpc=warn")),
        )
        // Fields that carry peer text are escaped where they are logged; this escapes whatever
        // else slips through, so no peer can forge a log line or drive the operator's terminal.
        .with_writer(move || EscapingWriter::new(std::io::stderr(), ansi))
        .with_ansi(ansi)
        .init();
    rpc_server::log_panics();
    let fd_limit = rpc_server::raise_fd_limit();
    let huge_pages_off = rpc_server::disable_transparent_huge_pages();
    tracing::debug!(fd_limit, huge_pages_off, "process settings");

    // Before any other thread starts: taking the passed sockets unsets LISTEN_PID and LISTEN_FDS.
    let activated = rpc_server::systemd::take_activated_sockets()
        .context("cannot use the sockets passed by socket activation")?;
    let mut listen = args.listen;
    listen.extend(activated.into_iter().map(Listen::Activated));

    let location = ServerLocation::new(args.runtime_dir, &args.name)?;
    let limits = Limits {
        max_frame: args.max_frame.unwrap_or_default(),
        max_connections: args.max_connections,
        max_connections_per_uid: args.max_connections_per_uid,
        max_in_flight: args.max_in_flight,
        max_streams: args.max_streams,
        read_timeout: Duration::from_millis(args.read_timeout_ms),
        handshake_timeout: Duration::from_millis(args.handshake_timeout_ms),
        shutdown_grace: Duration::from_millis(args.shutdown_grace_ms),
        shm_size: args.shm_size.unwrap_or_default(),
        ..Limits::default()
    };
    let config = ServerConfig {
        listen,
        policy: AccessPolicy {
            allow_uids: args.allow_uid,
            allow_gids: args.allow_gid,
        },
        socket_mode: args.socket_mode,
        limits,
        ..ServerConfig::new(location)
    };

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let mut server = Server::new(config);
        add_builtin_services(&mut server);
        let bound = server.bind().context("cannot start the server")?;
        // Handlers first: a SIGTERM sent as soon as the readiness lines appear must shut down
        // cleanly, not kill the process with its files left behind.
        let signals = ShutdownSignals::install().context("cannot install signal handlers")?;
        bound.announce(std::io::stdout().lock())?;
        let notifier = rpc_server::systemd::ServiceNotifier::from_env();
        notifier.ready(bound.endpoints());
        bound.run_until(notifier.until(signals.recv())).await;
        Ok(())
    })
}
