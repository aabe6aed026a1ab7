//! A C host with SIGPIPE at its default action, its server stopped under it and started again.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use rpc_ffi::{RPC_ERR_INTERRUPTED, RPC_ERR_UNREACHABLE};
use tests::{ServerProcess, TestDir};

use crate::host::{Host, error_of};

/// Each call's timeout in the host: long enough for a restarted server to be reached, short
/// enough that waiting out a call to a stopped server costs little.
const CALL_TIMEOUT_MS: u32 = 1_000;

/// How the server is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Term,
}

fn stop(server: &mut ServerProcess, how: Stop) {
    match how {
        Stop::Kill => server.kill(),
        Stop::Term => {
            let status = server.terminate();
            assert!(
                status.success(),
                "rpc-server exited with {status:?} on SIGTERM"
            );
        }
    }
}

/// Calls, stops the server with `how`, calls (an error, the host alive), calls again while the
/// server is down (unreachable within the call's timeout), starts the server in the same
/// runtime directory, and calls (answered).
fn survives_restart(how: Stop) {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let mut host = Host::start(dir.path(), &dir.runtime_dir(), CALL_TIMEOUT_MS);
    assert_eq!(
        host.send(r#"kv.set {"key":"k","value":"v"}"#),
        r#"ok {"Ok":null}"#
    );
    assert_eq!(host.send(r#"kv.get {"key":"k"}"#), r#"ok "v""#);

    stop(&mut server, how);
    // The connection broke between calls: the call reconnects within its timeout, finds no
    // server, and says so. Nothing was sent, so the code is "unreachable", not "interrupted".
    let answer = host.send(r#"kv.get {"key":"k"}"#);
    let (code, message) = error_of(&answer);
    assert_eq!(code, RPC_ERR_UNREACHABLE, "{answer}");
    assert!(
        message.starts_with("cannot reach the `kv` service again: no server"),
        "{answer}"
    );
    assert!(
        host.is_running(),
        "the host died when its server was stopped ({how:?})"
    );
    let started = Instant::now();
    let (code, _) = error_of(&host.send(r#"kv.get {"key":"k"}"#));
    assert_eq!(code, RPC_ERR_UNREACHABLE);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "a call to a stopped server gives up only near its timeout (it retries until then)"
    );

    let _server = dir.server().start();
    // A new server, a new store: the key is gone, and the call is answered.
    assert_eq!(host.send(r#"kv.get {"key":"k"}"#), "ok null");
    assert_eq!(
        host.send(r#"kv.set {"key":"k","value":"w"}"#),
        r#"ok {"Ok":null}"#
    );

    let status = host.finish();
    assert_eq!(
        status.signal(),
        None,
        "the host was killed by a signal: {status:?}"
    );
    assert!(status.success(), "the host exited with {status:?}");
}

#[test]
fn c_host_survives_sigkill_of_its_server_and_is_served_after_restart() {
    survives_restart(Stop::Kill);
}

#[test]
fn c_host_survives_sigterm_of_its_server_and_is_served_after_restart() {
    survives_restart(Stop::Term);
}

#[test]
fn call_in_flight_when_the_server_is_killed_is_interrupted() {
    let dir = TestDir::new();
    let mut server = dir.server().start();
    let mut host = Host::start(dir.path(), &dir.runtime_dir(), 10_000);
    assert_eq!(host.send("echo.ping {}"), "ok null");
    host.send_only(r#"echo.delay {"ms":5000}"#);
    // Long enough for the request to reach the server; the answer would take 5 s.
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    let answer = host.next_line();
    let (code, message) = error_of(&answer);
    assert_eq!(code, RPC_ERR_INTERRUPTED, "{answer}");
    assert!(message.contains("may or may not have run"), "{answer}");

    let _server = dir.server().start();
    assert_eq!(host.send("echo.ping {}"), "ok null");
    assert!(host.finish().success());
}
