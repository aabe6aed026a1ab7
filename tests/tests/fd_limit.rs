//! The server raises its soft open-file limit to the hard limit at start. Its own test binary,
//! because it lowers this process's limit, which the server inherits: beside other tests in one
//! process, the lowered limit would starve those that open many connections (`limits` opens
//! 2000 at once), and one that raises the limit again would undo this test's setup.

use rustix::process::{Resource, getrlimit, setrlimit};
use tests::TestDir;

/// The "Max open files" soft and hard limits of process `pid`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits readable");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    (fields[3].to_owned(), fields[4].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_raises_its_soft_fd_limit_to_the_hard_limit_at_start() {
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.expect("a finite hard limit");
    assert!(hard > 256, "hard limit {hard} too low for this test");
    limit.current = Some(256);
    setrlimit(Resource::Nofile, limit).expect("lower our soft limit");

    let dir = TestDir::new();
    let server = dir.server().start();
    let (soft, server_hard) = open_file_limits(server.pid());
    assert_eq!(server_hard, hard.to_string());
    assert_eq!(
        soft,
        hard.to_string(),
        "the server kept the inherited soft limit of 256"
    );
    tests::assert_serves_calls(&server.connector()).await;
}
