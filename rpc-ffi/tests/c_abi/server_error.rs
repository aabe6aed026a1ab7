//! A call the server answers with an error (its answer over the server's frame limit) gets
//! `RPC_ERR_SERVER` and the server's reason, and the handle goes on serving calls.

use tests::TestDir;

use crate::support::{command, test_program};

#[test]
fn an_answer_over_the_servers_frame_limit_is_a_server_error_and_the_handle_goes_on() {
    let dir = TestDir::new();
    let _server = dir.server().arg("--max-frame").arg("4096").start();
    let program = test_program("server_error.c", dir.path());
    let output = command(&program)
        .arg(dir.runtime_dir())
        .output()
        .expect("server_error runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("done\n"),
        "server_error exited with {:?}:\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |case: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(case)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{case}` line in:\n{stdout}"))
    };
    let list = line("list");
    assert!(
        list.starts_with("6 ") && list.contains("larger than the server's frame limit of 4096"),
        "kv.list over the limit: {list}"
    );
    assert_eq!(line("after"), "0 null", "the next call on the same handle");
}
