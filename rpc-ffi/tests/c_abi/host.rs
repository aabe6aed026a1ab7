//! `tests/c/host.c` as a child process: one line in, one line out.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use crate::support::{command, test_program};

/// How long one answer may take: well over any call's own timeout in these tests.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A running C host with one `rpc_conn` to the server named `rpc` in a runtime directory.
pub struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Host {
    /// Compiles the host into `dir`, starts it against the server named `rpc` in `runtime_dir`
    /// with `timeout_ms` for each call, and waits for it to connect.
    pub fn start(dir: &Path, runtime_dir: &Path, timeout_ms: u32) -> Host {
        let program = test_program("host.c", dir);
        let mut child = command(&program)
            .arg("rpc")
            .arg(runtime_dir)
            .arg(timeout_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the C host starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut host = Host {
            child,
            stdin,
            lines,
        };
        assert_eq!(host.next_line(), "ready");
        host
    }

    /// Sends one command line and returns the host's answer line.
    pub fn send(&mut self, command: &str) -> String {
        self.send_only(command);
        self.next_line()
    }

    /// Sends one command line without waiting for its answer.
    pub fn send_only(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("the host's stdin is open");
        writeln!(stdin, "{command}").expect("the host reads its stdin (is it still alive?)");
        stdin.flush().expect("the host reads its stdin");
    }

    /// The next line the host prints.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(ANSWER_WAIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the C host did not answer within {ANSWER_WAIT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the C host exited: {:?}", self.child.wait())
            }
        }
    }

    /// Whether the host is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes its stdin, so it closes its handle and exits, and returns how it exited.
    pub fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("the C host can be waited for")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Splits an `err CODE MESSAGE` answer; panics on anything else.
pub fn error_of(answer: &str) -> (i32, &str) {
    let rest = answer
        .strip_prefix("err ")
        .unwrap_or_else(|| panic!("expected an error, got `{answer}`"));
    let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let code = code
        .parse()
        .unwrap_or_else(|_| panic!("`{answer}` has no status code"));
    (code, message)
}
