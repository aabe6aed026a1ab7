//! Running `rpc-server`: start it, wait until it listens, signal it, and never leak it.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rpc_client::{Connector, Target};
use rpc_core::{Endpoint, ServerLocation};

use crate::binaries::server_binary;
use crate::{EXIT_TIMEOUT, POLL_INTERVAL, START_TIMEOUT};

/// An `rpc-server` invocation being assembled.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    runtime_dir: PathBuf,
    log_dir: PathBuf,
    name: String,
    args: Vec<OsString>,
    listen_count: usize,
    launcher: Vec<OsString>,
}

impl ServerCommand {
    /// A command for a server called `name` in `runtime_dir`, its stderr saved in `log_dir`.
    pub(crate) fn new(runtime_dir: PathBuf, log_dir: PathBuf, name: &str) -> Self {
        ServerCommand {
            runtime_dir,
            log_dir,
            name: name.to_owned(),
            args: Vec::new(),
            listen_count: 0,
            launcher: Vec::new(),
        }
    }

    /// Uses `dir` as `--runtime-dir` instead of the test directory's `run`.
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = dir.into();
        self
    }

    /// Passes `--name name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Passes `--listen endpoint`; the server is then expected to print one `listening on` line
    /// per `--listen`.
    pub fn listen(mut self, endpoint: &str) -> Self {
        self.args.push("--listen".into());
        self.args.push(endpoint.into());
        self.listen_count += 1;
        self
    }

    /// Passes one more argument as is.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Runs the server through `launcher`, whose last word is the `rpc-server` to run: e.g.
    /// [`OtherUser::launcher`](crate::other_user::OtherUser::launcher), to run it as another
    /// user. The launcher must exec the server, so the process waited for is the server.
    pub fn launched_by(mut self, launcher: Vec<OsString>) -> Self {
        self.launcher = launcher;
        self
    }

    fn spawn(&self) -> (Child, PathBuf) {
        static NEXT_LOG: AtomicU64 = AtomicU64::new(0);
        let log = self.log_dir.join(format!(
            "rpc-server-{}.stderr",
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr = std::fs::File::create(&log).expect("the stderr log can be created");
        let mut command = match self.launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest);
                command
            }
            None => Command::new(server_binary()),
        };
        let child = command
            .arg("--runtime-dir")
            .arg(&self.runtime_dir)
            .arg("--name")
            .arg(&self.name)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("rpc-server starts");
        (child, log)
    }

    /// Starts the server and waits (at most [`START_TIMEOUT`]) until it has printed a
    /// `listening on` line for each endpoint: one per [`ServerCommand::listen`], or one for the
    /// default `auto`. Panics with the server's stderr if it exits or stays silent instead.
    pub fn start(self) -> ServerProcess {
        let expected = self.listen_count.max(1);
        let (mut child, stderr_path) = self.spawn();
        let location = ServerLocation::new(Some(self.runtime_dir.clone()), &self.name)
            .expect("the server name is valid");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        // Reads stdout to its end, so the server can never block on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            pid: child.id(),
            child,
            location,
            endpoints: Vec::new(),
            stderr_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while server.endpoints.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(text) = line.strip_prefix("listening on ") {
                        let endpoint = text.parse().unwrap_or_else(|err| {
                            panic!("rpc-server printed a bad endpoint `{text}`: {err}")
                        });
                        server.endpoints.push(endpoint);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "rpc-server printed {} of {expected} `listening on` lines within {START_TIMEOUT:?}; stderr:\n{}",
                    server.endpoints.len(),
                    server.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "rpc-server exited ({:?}) before listening; stderr:\n{}",
                    wait_for_child(&mut server.child, EXIT_TIMEOUT),
                    server.stderr()
                ),
            }
        }
        server
    }

    /// Runs a server that is expected to refuse to start: waits (at most [`START_TIMEOUT`]) for
    /// it to exit on its own. Panics if it is still running by then.
    pub fn run_to_exit(self) -> ServerExit {
        let (mut child, stderr_path) = self.spawn();
        let status = wait_for_child(&mut child, START_TIMEOUT);
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rpc-server was expected to exit but still ran after {START_TIMEOUT:?}; stderr:\n{}",
                read_lossy(&stderr_path)
            );
        };
        let mut stdout = String::new();
        if let Some(pipe) = child.stdout.as_mut() {
            let _ = std::io::Read::read_to_string(pipe, &mut stdout);
        }
        ServerExit {
            status,
            stdout,
            stderr: read_lossy(&stderr_path),
        }
    }
}

/// How a server that ran to its end ended.
#[derive(Debug)]
pub struct ServerExit {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// A running `rpc-server`, killed with SIGKILL when dropped if it is still running.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pid: u32,
    location: ServerLocation,
    endpoints: Vec<Endpoint>,
    stderr_path: PathBuf,
}

impl ServerProcess {
    /// The endpoints from the server's `listening on` lines, in the order printed.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The only endpoint; panics if the server listens on several.
    pub fn endpoint(&self) -> &Endpoint {
        match self.endpoints.as_slice() {
            [endpoint] => endpoint,
            many => panic!("expected one endpoint, the server listens on {many:?}"),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's name and runtime directory.
    pub fn location(&self) -> &ServerLocation {
        &self.location
    }

    /// The server's runtime directory.
    pub fn runtime_dir(&self) -> &Path {
        self.location.runtime_dir()
    }

    /// A connector that finds this server by name, as a client of it would.
    pub fn connector(&self) -> Connector {
        Connector::new(Target::Name(self.location.clone()))
    }

    /// Everything the server has written to stderr so far (its logs, at `RUST_LOG=info`).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .expect("SIGTERM can be sent to the server");
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `timeout` for the server to exit; panics with its stderr if it does not.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_for_child(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "rpc-server did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Sends SIGTERM and waits at most [`EXIT_TIMEOUT`] for the server to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        self.wait_for_exit(EXIT_TIMEOUT)
    }

    /// Kills the server with SIGKILL, as a crash would: it gets no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("the server can be killed");
        self.child.wait().expect("the killed server can be reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `child` until it exits or `timeout` passes.
fn wait_for_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status can be read") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|err| format!("<cannot read {}: {err}>", path.display()))
}

/// Polls `condition` every [`POLL_INTERVAL`] until it holds; panics naming `what` if it still does
/// not after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}
