//! Under systemd: `rpc-server` started by `systemd-socket-activate` serves the socket it was
//! passed and leaves its file in place, and tells a datagram socket standing in as
//! `NOTIFY_SOCKET` that it is ready, alive and stopping.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rpc_client::{Connector, Target, read_endpoint_file};
use rpc_core::{Endpoint, ServerLocation};
use tests::binaries::server_binary;
use tests::{EXIT_TIMEOUT, START_TIMEOUT, TestDir, assert_serves_calls, wait_for};

/// The server's name in these tests; its socket is not at `<runtime-dir>/<name>.sock`, so a
/// client by name finds it through the endpoint file.
const NAME: &str = "activated";

/// `rpc-server` under `systemd-socket-activate`, with a datagram socket as its `NOTIFY_SOCKET`.
struct Activated {
    child: Child,
    socket: PathBuf,
    notify: UnixDatagram,
    stdout: mpsc::Receiver<String>,
    stderr_path: PathBuf,
    location: ServerLocation,
}

impl Activated {
    /// Starts `systemd-socket-activate -l <dir>/x.sock ... rpc-server`, with `env` passed on,
    /// and waits until it listens. The server itself starts at the first connection.
    fn start(dir: &TestDir, options: &[&str], env: &[&str]) -> Activated {
        let socket = dir.path().join("x.sock");
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("the notify socket binds");
        notify
            .set_read_timeout(Some(START_TIMEOUT))
            .expect("a read timeout");
        let stderr_path = dir.path().join("activated.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("the stderr log");
        let mut command = Command::new("systemd-socket-activate");
        command
            .arg("--listen")
            .arg(&socket)
            .args(options)
            .arg(format!("--setenv=NOTIFY_SOCKET={}", notify_path.display()))
            .arg("--setenv=RUST_LOG=info");
        for var in env {
            command.arg(format!("--setenv={var}"));
        }
        let mut child = command
            .arg(server_binary())
            .arg("--runtime-dir")
            .arg(dir.runtime_dir())
            .args(["--name", NAME])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("systemd-socket-activate starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        wait_for(START_TIMEOUT, "the activated socket", || socket.exists());
        Activated {
            child,
            socket,
            notify,
            stdout: lines_rx,
            stderr_path,
            location: ServerLocation::new(Some(dir.runtime_dir()), NAME).expect("valid name"),
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::Unix(self.socket.clone())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The next notification, or `None` if none comes within `timeout`.
    fn notification(&self, timeout: Duration) -> Option<String> {
        self.notify
            .set_read_timeout(Some(timeout))
            .expect("a read timeout");
        let mut buf = [0u8; 4096];
        let len = self.notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// Notifications until one holds `line`; panics if none does within [`START_TIMEOUT`].
    fn notifications_until(&self, line: &str) -> Vec<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        while !seen.iter().any(|m: &String| m.lines().any(|l| l == line)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.notification(left.max(Duration::from_millis(1))) {
                Some(message) => seen.push(message),
                None => panic!(
                    "no {line} within {START_TIMEOUT:?}; got {seen:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
        seen
    }

    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(tests::POLL_INTERVAL);
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn sigterm(child: &Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM can be sent");
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activated_server_serves_the_passed_socket_notifies_ready_and_stopping_and_leaves_the_file()
{
    let dir = TestDir::new();
    let mut server = Activated::start(&dir, &["--fdname=rpc-test"], &[]);

    // The first connection starts the server, which serves it on the passed socket.
    assert_serves_calls(&Connector::endpoint(server.endpoint()).expect("unix")).await;
    let ready = server.notifications_until("READY=1");
    let status = format!("STATUS=listening on {}", server.endpoint());
    assert!(
        ready.iter().any(|m| m.lines().any(|l| l == status)),
        "READY=1 came without `{status}`: {ready:?}"
    );
    let first = server
        .stdout
        .recv_timeout(START_TIMEOUT)
        .expect("a listening line");
    assert_eq!(first, format!("listening on {}", server.endpoint()));
    assert!(
        server.stderr().contains("name=rpc-test"),
        "the LISTEN_FDNAMES name is not logged; stderr:\n{}",
        server.stderr()
    );

    // The endpoint file names the passed socket, so a client by name finds it.
    let file = read_endpoint_file(&server.location.endpoint_file_path())
        .expect("readable")
        .expect("written");
    assert_eq!(file.endpoints, vec![server.endpoint()]);
    assert_serves_calls(&Connector::new(Target::Name(server.location.clone()))).await;

    sigterm(&server.child);
    let stopping = server.notifications_until("STOPPING=1");
    let status = server.wait_for_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        server.stderr()
    );
    assert!(
        !ready
            .iter()
            .chain(&stopping)
            .any(|m| m.contains("WATCHDOG")),
        "watchdog pings without WATCHDOG_USEC: {ready:?} {stopping:?}"
    );
    assert!(
        is_socket(&server.socket),
        "the server removed the socket systemd made"
    );
    assert!(
        !server.location.endpoint_file_path().exists(),
        "the server's own endpoint file is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activated_server_pings_the_watchdog_every_half_watchdog_usec() {
    let dir = TestDir::new();
    // 400 ms: a ping every 200 ms.
    let mut server = Activated::start(&dir, &[], &["WATCHDOG_USEC=400000"]);
    assert_serves_calls(&Connector::endpoint(server.endpoint()).expect("unix")).await;
    server.notifications_until("READY=1");

    // Pings sent while the test was busy wait in the queue: drain them, then count a window.
    while server.notification(Duration::from_millis(50)).is_some() {}
    let window = Duration::from_millis(1200);
    let end = Instant::now() + window;
    let mut pings = 0;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match server.notification(left.max(Duration::from_millis(1))) {
            Some(message) if message.lines().any(|l| l == "WATCHDOG=1") => pings += 1,
            Some(other) => panic!("unexpected notification {other:?}"),
            None => break,
        }
    }
    // Every 200 ms makes 6 in the window; every 400 ms (the whole timeout) would make 3.
    assert!(
        (4..=9).contains(&pings),
        "{pings} WATCHDOG=1 in {window:?}, expected about 6"
    );

    sigterm(&server.child);
    server.notifications_until("STOPPING=1");
    assert!(server.wait_for_exit().success());
    assert!(is_socket(&server.socket));
}

#[test]
fn a_passed_datagram_socket_is_refused_naming_the_descriptor() {
    let dir = TestDir::new();
    let mut server = Activated::start(&dir, &["--datagram"], &[]);
    // A datagram socket is activated by its first datagram.
    UnixDatagram::unbound()
        .expect("unbound")
        .send_to(b"wake", &server.socket)
        .expect("the datagram is sent");
    let status = server.wait_for_exit();
    assert!(!status.success(), "the server served a datagram socket");
    let stderr = server.stderr();
    assert!(
        stderr.contains("fd 3") && stderr.contains("not a unix or tcp stream socket"),
        "stderr does not say which descriptor is wrong: {stderr}"
    );
    assert_eq!(
        server.notification(Duration::from_millis(200)),
        None,
        "a server that refused to start notified the manager"
    );
    assert!(
        is_socket(&server.socket),
        "the passed socket's file was removed"
    );
}
