//! Every socket write is a `sendmsg` with `MSG_NOSIGNAL`, over Unix sockets and TCP: a write to
//! a peer that has gone fails with `EPIPE` instead of raising SIGPIPE, which would kill a host
//! that keeps the signal's default action (a C, C++ or Go program embedding the client). Checked
//! on the real `rpc-client` under `strace`, which shows each write's system call and flags.

use std::process::Command;

use rpc_client::read_endpoint_file;
use tests::TestDir;
use tests::binaries::client_binary;

/// Runs `rpc-client args` under `strace -f`, tracing the calls a socket write could use, and
/// returns the trace. `env` is passed on.
fn traced_client(dir: &TestDir, args: &[&str], env: &[(&str, &str)]) -> String {
    let trace = dir.path().join("client.strace");
    let output = Command::new("strace")
        .arg("-f")
        .arg("-o")
        .arg(&trace)
        .args(["-e", "trace=write,writev,send,sendto,sendmsg"])
        .arg(client_binary())
        .args(args)
        .env_remove(rpc_client::RPC_ENDPOINT)
        .env_remove(rpc_client::RPC_TOKEN)
        .envs(env.iter().copied())
        .output()
        .expect("strace runs (it is installed by .ci/run)");
    assert!(
        output.status.success(),
        "rpc-client under strace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(&trace).expect("strace wrote its trace")
}

/// Checks that no write in `trace` went to a socket without `MSG_NOSIGNAL`: no `writev` or
/// `write` to a descriptor above stderr's but the runtime's own, and the calls' frames went out
/// as `sendmsg(..., MSG_NOSIGNAL)`.
fn assert_no_signal_writes(trace: &str) {
    let sends: Vec<&str> = trace.lines().filter(|l| l.contains("sendmsg(")).collect();
    assert!(
        sends.len() >= 4,
        "a call sends hello and request on two connections:\n{trace}"
    );
    for line in &sends {
        assert!(
            line.contains("MSG_NOSIGNAL"),
            "a send without MSG_NOSIGNAL: {line}"
        );
    }
    for line in trace.lines() {
        let call = line.split_whitespace().nth(1).unwrap_or_default();
        if call.starts_with("writev(") || call.starts_with("send(") || call.starts_with("sendto(") {
            panic!("a socket write that can raise SIGPIPE: {line}");
        }
        if let Some(args) = call.strip_prefix("write(") {
            // stdout and stderr, and the runtime's eventfd (8-byte writes), are not sockets.
            let fd: u32 = args
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let eventfd = line.contains(", 8)") && line.trim_end().ends_with("= 8");
            assert!(
                fd <= 2 || eventfd,
                "a write to descriptor {fd}, maybe a socket: {line}"
            );
        }
    }
}

#[test]
fn every_socket_write_is_a_sendmsg_with_msg_nosignal() {
    let dir = TestDir::new();
    let _server = dir
        .server()
        .listen("auto")
        .listen("tcp:127.0.0.1:0")
        .start();
    let runtime_dir = dir.runtime_dir();
    let runtime_dir = runtime_dir.to_str().expect("a UTF-8 temp path");
    let call = ["call", "echo.echo", r#"{"bytes":[1,2,3]}"#];

    let unix = traced_client(
        &dir,
        &[&["--runtime-dir", runtime_dir][..], &call].concat(),
        &[],
    );
    assert_no_signal_writes(&unix);

    let file = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    let tcp = file
        .endpoints
        .iter()
        .find(|e| e.is_tcp())
        .expect("a tcp endpoint")
        .to_string();
    let token = file.token.expect("a token").to_string();
    let traced = traced_client(
        &dir,
        &[&["--endpoint", &tcp][..], &call].concat(),
        &[(rpc_client::RPC_TOKEN, &token)],
    );
    assert_no_signal_writes(&traced);
}
