//! The server processes a run measures: the real `rpc-server`, and this binary re-executed as the
//! raw and stock-tarpc baseline servers. Each is a separate process, as in real use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use rpc_core::{Endpoint, Token};

/// How long a server gets to print its `listening on` lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// What it listens on, in the order printed.
    pub endpoints: Vec<Endpoint>,
    /// The TCP token, for the rpc server.
    pub token: Option<Token>,
}

impl ServerProcess {
    /// Starts `command` and waits for `expected` lines of `listening on <endpoint>`.
    pub fn start(mut command: Command, expected: usize) -> anyhow::Result<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut endpoints = Vec::new();
        while endpoints.len() < expected {
            let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    bail!("{program} did not print `listening on` within {STARTUP_TIMEOUT:?}");
                }
            };
            if let Some(text) = line.strip_prefix("listening on ") {
                endpoints.push(
                    text.parse()
                        .with_context(|| format!("{program} printed {line}"))?,
                );
            }
        }
        Ok(ServerProcess {
            child,
            endpoints,
            token: None,
        })
    }

    /// The endpoint of the given kind.
    pub fn endpoint(&self, tcp: bool) -> anyhow::Result<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.is_tcp() == tcp)
            .context("server lacks an endpoint of that kind")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real `rpc-server` on a Unix socket in `dir` and on TCP loopback at once, with
/// `args` beside the bench's own (limits, e.g. `--max-frame`).
pub fn start_rpc_server(
    dir: &Path,
    threads: Option<usize>,
    args: &[String],
) -> anyhow::Result<ServerProcess> {
    start_rpc_server_binary(&sibling_binary("rpc-server")?, "bench", dir, threads, args)
}

/// Starts the rpc-server at `binary` as the server called `name` in `dir`, on a Unix socket and
/// on TCP loopback at once, with `args` beside the bench's own.
pub fn start_rpc_server_binary(
    binary: &Path,
    name: &str,
    dir: &Path,
    threads: Option<usize>,
    args: &[String],
) -> anyhow::Result<ServerProcess> {
    let mut command = Command::new(binary);
    command
        .arg("--runtime-dir")
        .arg(dir)
        .args(["--name", name, "--listen"])
        .arg(format!(
            "unix:{}",
            dir.join(format!("{name}.sock")).display()
        ))
        .args(["--listen", "tcp:127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn");
    if let Some(threads) = threads {
        command.arg("--threads").arg(threads.to_string());
    }
    let mut server = ServerProcess::start(command, 2)?;
    let file = rpc_client::read_endpoint_file(&dir.join(format!("{name}.endpoint")))?
        .with_context(|| format!("{} wrote no endpoint file", binary.display()))?;
    server.token = file.token;
    Ok(server)
}

/// Starts this binary as a baseline server (`serve-raw` or `serve-tarpc`, with `args`) in `dir`.
pub fn start_baseline(
    subcommand: &str,
    dir: &Path,
    args: &[&str],
) -> anyhow::Result<ServerProcess> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg(subcommand).arg("--dir").arg(dir).args(args);
    ServerProcess::start(command, 2)
}

/// The path of another binary of this workspace, next to this one; built first if missing and
/// this process runs under cargo (`cargo run -p rpc-bench` does not build `rpc-server`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary has no directory")?;
    let path = dir.join(name);
    if path.exists() {
        return Ok(path);
    }
    let Some(cargo) = std::env::var_os("CARGO") else {
        bail!(
            "{} not found: build it with `cargo build --release -p {name}`",
            path.display()
        );
    };
    let mut build = Command::new(cargo);
    build.args(["build", "-p", name, "--bin", name]);
    if dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().context("cannot run cargo build")?;
    if !status.success() || !path.exists() {
        bail!("building {name} failed; try `cargo build --release -p {name}`");
    }
    Ok(path)
}
