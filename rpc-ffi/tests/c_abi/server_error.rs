//! A call the server answers with an error (its answer over the server's frame limit) gets
//! `RPC_ERR_SERVER` and the server's reason, and the handle goes on serving calls.

use tests::TestDir;

use crate::support::run_cases;

#[test]
fn an_answer_over_the_servers_frame_limit_is_a_server_error_and_the_handle_goes_on() {
    let dir = TestDir::new();
    let _server = dir.server().arg("--max-frame").arg("4096").start();
    let cases = run_cases("server_error.c", dir.path(), dir.runtime_dir());
    let list = &cases["list"];
    assert!(
        list.starts_with("6 ") && list.contains("larger than the server's frame limit of 4096"),
        "kv.list over the limit: {list}"
    );
    assert_eq!(cases["after"], "0 null", "the next call on the same handle");
}
