//! Bad arguments through the C ABI: each gets its documented code and a message that says what
//! is wrong, nothing crashes, and NULL out-pointers are allowed.

use std::collections::HashMap;
use tests::TestDir;

use crate::support;

/// Runs `tests/c/bad_input.c` against a real server: its output, case name → rest of the line.
fn run_cases() -> HashMap<String, String> {
    let dir = TestDir::new();
    let _server = dir.server().start();
    support::run_cases("bad_input.c", dir.path(), dir.runtime_dir())
}

#[test]
fn bad_arguments_get_their_codes_and_say_what_is_wrong() {
    let cases = run_cases();
    let expect = |case: &str, prefix: &str| {
        let line = cases
            .get(case)
            .unwrap_or_else(|| panic!("no `{case}` line in {cases:#?}"));
        assert!(
            line.starts_with(prefix),
            "{case}: expected `{prefix}...`, got `{line}`"
        );
    };
    // rpc_connect: NULL and the message.
    expect("connect-null-target", "null target is NULL");
    expect("connect-not-utf8", "null target is not UTF-8");
    expect("connect-bad-name", "null invalid server name `no/slash`");
    expect(
        "connect-bad-endpoint",
        "null unix endpoint path `relative.sock` is not absolute",
    );
    expect("connect-absent", "null no server named `absent`");
    expect(
        "connect-nothing-listening",
        "null no server at unix:/nonexistent/rpc.sock",
    );
    expect("connect-no-error-pointer", "null");
    // Invalid arguments: 1.
    expect("null-conn", "1 conn is NULL");
    expect("null-method", "1 method is NULL");
    expect("null-args", "1 args_json is NULL");
    expect("method-not-utf8", "1 method is not UTF-8");
    expect("args-not-utf8", "1 args_json is not UTF-8");
    expect("no-dot", "1 method `kv` is not SERVICE.METHOD");
    expect("empty-method", "1 method `kv.` is not SERVICE.METHOD");
    // Requests that do not fit: 2, nothing sent.
    expect(
        "unknown-service",
        "2 unknown service `nosuch`: this server hosts echo, kv,",
    );
    expect(
        "unknown-method",
        "2 unknown method `nosuch`: kv has get, set, delete, list",
    );
    expect("not-json", "2 the arguments for kv.get are not JSON");
    expect(
        "wrong-type",
        "2 argument `key`: expected a string, found the number 3",
    );
    expect("missing-argument", "2 missing argument `value`");
    // The deadline: 4, and the handle goes on.
    expect(
        "deadline",
        "4 call to echo.delay failed: the request exceeded its deadline",
    );
    expect("after-deadline", "0 null");
    // NULL out-pointers.
    expect("no-out-pointers", "0");
    expect("no-out-pointers-failing", "2");
    expect("no-error-pointer", "0 \"v\"");
    // The out-pointer not written is set to NULL.
    expect("error-cleared", "0 yes");
    expect("result-cleared", "2 yes");
}
