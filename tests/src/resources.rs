//! A server's footprint as the kernel sees it: open file descriptors, resident memory and CPU
//! time, read from `/proc/<pid>`, so that a test can check that whatever a hostile or unlucky
//! client did left nothing behind.
//!
//! The usual shape: [`Baseline::after_warm_up`] once the server is up (and any long-lived
//! client is connected), the test's mischief, then [`Baseline::assert_restored`], which checks
//! that a normal client is still served and that descriptors and memory are back near the
//! baseline.

use std::time::{Duration, Instant};

use crate::{POLL_INTERVAL, ServerProcess, assert_serves_calls};

/// Descriptors a server may hold over its baseline once a test is done: the runtime may have
/// opened one or two it had no need for when the baseline was taken. A leak of one descriptor per
/// connection shows far above this, since tests open many connections.
pub const FD_SLACK: usize = 3;

/// Resident memory a server may hold over its baseline once a test is done. Generous: an
/// allocator keeps freed pages for reuse rather than returning them at once. Allocating what a
/// peer merely claims (gigabytes) or keeping per-connection buffers shows far above this.
pub const RSS_SLACK: u64 = 32 * 1024 * 1024;

/// How long a server gets to close what it should close before a check fails.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Clock ticks per second in `/proc/<pid>/stat`: `USER_HZ`, fixed at 100 by the kernel's ABI
/// whatever the kernel's internal tick rate.
const USER_HZ: u64 = 100;

/// How many descriptors process `pid` has open (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|err| panic!("cannot list the descriptors of process {pid}: {err}"))
        .count()
}

/// The resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("cannot read the status of process {pid}: {err}"));
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in the status of process {pid}:\n{status}"));
    kib * 1024
}

/// The CPU time process `pid` has used so far, user and system (`utime + stime` of
/// `/proc/<pid>/stat`), to the kernel's 10 ms resolution.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|err| panic!("cannot read the stat of process {pid}: {err}"));
    // The command name, in parentheses, may hold spaces: count fields after its closing one.
    // After it come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .unwrap_or_else(|| panic!("bad field {} in the stat of {pid}: {stat}", index + 3))
    };
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / USER_HZ)
}

/// Polls the descriptor count of `pid` until `condition` holds and returns that count; panics
/// naming `what` (and the last count) if it still does not after `timeout`.
pub async fn wait_for_fds(
    pid: u32,
    timeout: Duration,
    what: &str,
    condition: impl Fn(usize) -> bool,
) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let fds = open_fds(pid);
        if condition(fds) {
            return fds;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}: the server has {fds} descriptors open"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Raises this process's soft limit on open files to its hard limit, for tests that open
/// thousands of connections themselves, and returns the new soft limit (`None`: unlimited).
pub fn raise_own_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).expect("the soft open-file limit can be raised");
    }
    getrlimit(Resource::Nofile).current
}

/// A server's descriptors and resident memory at a quiet moment, to compare against later.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pid: u32,
    fds: usize,
    rss: u64,
}

impl Baseline {
    /// Serves one normal client (so that lazily made things, such as runtime threads and
    /// allocator pools, exist), then measures once its connections are closed.
    pub async fn after_warm_up(server: &ServerProcess) -> Baseline {
        assert_serves_calls(&server.connector()).await;
        Baseline::measure(server.pid()).await
    }

    /// Measures `pid` once its descriptor count has been steady for a few polls (connections
    /// closed just before are still being torn down), or after two seconds at the lowest seen.
    pub async fn measure(pid: u32) -> Baseline {
        const STEADY_POLLS: usize = 10;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut lowest = open_fds(pid);
        let mut steady = 0;
        while steady < STEADY_POLLS && Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
            let fds = open_fds(pid);
            if fds == lowest {
                steady += 1;
            } else {
                lowest = lowest.min(fds);
                steady = 0;
            }
        }
        Baseline {
            pid,
            fds: lowest,
            rss: resident_bytes(pid),
        }
    }

    /// The descriptors open at the baseline.
    pub fn fds(&self) -> usize {
        self.fds
    }

    /// The resident memory at the baseline, in bytes.
    pub fn rss(&self) -> u64 {
        self.rss
    }

    /// Checks that the server's resident memory now is at most `budget` bytes over this
    /// baseline, and returns how far over it is (also printed, with the test's output). `what`
    /// says what the test did, for the message.
    pub fn assert_rss_within(&self, budget: u64, what: &str) -> u64 {
        let held = resident_bytes(self.pid).saturating_sub(self.rss);
        eprintln!("{what}: {} KiB over the baseline", held >> 10);
        assert!(
            held <= budget,
            "{what}: the server holds {} MiB over its baseline, over the {} MiB budget",
            held >> 20,
            budget >> 20
        );
        held
    }

    /// Checks that `server` (the one measured) still serves a normal client, that its
    /// descriptors come back to within [`FD_SLACK`] of the baseline within [`SETTLE_TIMEOUT`],
    /// and that its resident memory is within [`RSS_SLACK`] of the baseline. `after` says what
    /// the test did, for the failure message.
    pub async fn assert_restored(&self, server: &ServerProcess, after: &str) {
        self.assert_restored_within(server, after, RSS_SLACK).await;
    }

    /// [`Baseline::assert_restored`] with `rss_slack` instead of [`RSS_SLACK`], for a test
    /// whose load leaves more freed memory in the allocator's caches.
    pub async fn assert_restored_within(
        &self,
        server: &ServerProcess,
        after: &str,
        rss_slack: u64,
    ) {
        assert_eq!(server.pid(), self.pid, "the baseline is of another server");
        assert_serves_calls(&server.connector()).await;
        self.assert_resources_restored(after, rss_slack).await;
    }

    /// The resource half of [`Baseline::assert_restored_within`], for a server no normal client
    /// can reach at the moment.
    pub async fn assert_resources_restored(&self, after: &str, rss_slack: u64) {
        let limit = self.fds + FD_SLACK;
        wait_for_fds(
            self.pid,
            SETTLE_TIMEOUT,
            &format!(
                "the server's descriptors to come back to its baseline of {} (+{FD_SLACK}) after {after}",
                self.fds
            ),
            |fds| fds <= limit,
        )
        .await;
        let rss = resident_bytes(self.pid);
        // Shown with the test's output when it fails, and with --nocapture.
        eprintln!(
            "server {}: {} descriptors (baseline {}), {} KiB resident (baseline {} KiB) after {after}",
            self.pid,
            open_fds(self.pid),
            self.fds,
            rss >> 10,
            self.rss >> 10
        );
        assert!(
            rss <= self.rss + rss_slack,
            "after {after} the server's resident memory is {} MiB, over its baseline of {} MiB by more than {} MiB",
            rss >> 20,
            self.rss >> 20,
            rss_slack >> 20
        );
    }
}
