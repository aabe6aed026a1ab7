//! Calls over each transport, through the library and through the `rpc-client` CLI.

use rpc_client::{ConnectError, Connector, Target, read_endpoint_file};
use rpc_core::Endpoint;
use rpc_core::services::echo::EchoClient;
use rpc_core::services::kv::KvClient;
use serde_bytes::ByteBuf;
use tarpc::context;
use tests::{TestDir, run_client, run_client_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_serves_kv_and_echo_through_the_library() {
    let dir = TestDir::new();
    let server = dir.server().start();
    assert_eq!(
        server.endpoint(),
        &Endpoint::Unix(dir.location().socket_path()),
        "auto listens on <runtime-dir>/<name>.sock"
    );

    let connector = server.connector();
    let kv = connector
        .connect::<KvClient>()
        .await
        .expect("kv connects over unix");
    let replaced = kv
        .set(context::current(), "greeting".into(), "hello".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    assert_eq!(replaced, None);
    let replaced = kv
        .set(context::current(), "greeting".into(), "hi".into())
        .await
        .expect("kv.set is answered")
        .expect("kv.set succeeds");
    assert_eq!(
        replaced.as_deref(),
        Some("hello"),
        "set returns the replaced value"
    );
    let value = kv
        .get(context::current(), "greeting".into())
        .await
        .expect("kv.get is answered");
    assert_eq!(value.as_deref(), Some("hi"));

    let echo = connector
        .connect::<EchoClient>()
        .await
        .expect("echo connects over unix");
    let payload: Vec<u8> = (0..=255).collect();
    let echoed = echo
        .echo(context::current(), ByteBuf::from(payload.clone()))
        .await
        .expect("echo.echo is answered");
    assert_eq!(echoed.into_vec(), payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_serves_kv_through_the_cli_and_shares_the_store_with_the_library() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let runtime_dir = dir.runtime_dir();

    let set = run_client_in(
        &runtime_dir,
        &["call", "kv.set", r#"{"key":"greeting","value":"hello"}"#],
        &[],
    );
    assert_eq!(
        set.json(),
        serde_json::Value::Null,
        "set of a new key replaces nothing"
    );

    let get = run_client_in(
        &runtime_dir,
        &["call", "kv.get", r#"{"key":"greeting"}"#],
        &[],
    );
    assert_eq!(get.json(), serde_json::json!("hello"));
    assert_eq!(get.stdout.trim(), r#""hello""#);

    let kv = server
        .connector()
        .connect::<KvClient>()
        .await
        .expect("kv connects");
    let value = kv
        .get(context::current(), "greeting".into())
        .await
        .expect("kv.get is answered");
    assert_eq!(
        value.as_deref(),
        Some("hello"),
        "the CLI's set is seen by the library"
    );
}

#[test]
fn health_reports_the_server_pid_and_its_services() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let runtime_dir = dir.runtime_dir();
    let health = run_client_in(&runtime_dir, &["health"], &[]).json();
    assert_eq!(health["pid"], serde_json::json!(server.pid()));
    let services = health["services"]
        .as_array()
        .unwrap_or_else(|| panic!("no services array in {health}"));
    for name in ["echo", "kv", "health"] {
        assert!(
            services.contains(&serde_json::json!(name)),
            "{name} missing from {health}"
        );
    }
    assert_eq!(
        health["endpoints"],
        serde_json::json!([server.endpoint().to_string()])
    );
}

#[test]
fn cli_without_a_server_fails_and_says_to_start_one() {
    let dir = TestDir::new();
    let runtime_dir = dir.runtime_dir();
    let out = run_client_in(&runtime_dir, &["call", "echo.ping"], &[]);
    assert_eq!(out.status.code(), Some(3), "not reachable: {}", out.stderr);
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
    assert!(
        out.stderr.contains("is rpc-server running"),
        "stderr gives no hint: {}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_endpoint_serves_clients_that_find_it_by_name() {
    let dir = TestDir::new();
    let server = dir.server().listen("tcp:127.0.0.1:0").start();
    let Endpoint::Tcp(addr) = server.endpoint() else {
        panic!("expected a tcp endpoint, got {}", server.endpoint());
    };
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the printed endpoint has the real port");
    assert!(
        !dir.location().socket_path().exists(),
        "a tcp-only server creates no socket file"
    );

    let file = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    assert_eq!(file.pid, server.pid());
    assert_eq!(file.endpoints, server.endpoints());
    assert!(file.token.is_some(), "a tcp server writes its token");

    tests::assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_endpoint_serves_an_explicit_endpoint_with_the_token_from_the_endpoint_file() {
    let dir = TestDir::new();
    let server = dir.server().listen("tcp:127.0.0.1:0").start();
    let token = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists")
        .token
        .expect("a tcp server writes its token");

    let connector = Connector::new(Target::Endpoint {
        endpoint: server.endpoint().clone(),
        token: Some(token),
    });
    tests::assert_serves_calls(&connector).await;
}

#[test]
fn cli_reaches_an_explicit_tcp_endpoint_with_rpc_token() {
    let dir = TestDir::new();
    let server = dir.server().listen("tcp:127.0.0.1:0").start();
    let token = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists")
        .token
        .expect("a tcp server writes its token")
        .to_string();
    let endpoint = server.endpoint().to_string();

    let args = [
        "--endpoint",
        &endpoint,
        "call",
        "echo.echo",
        r#"{"bytes":[1,2,3]}"#,
    ];
    let with_token = run_client(args, &[(rpc_client::RPC_TOKEN, &token)]);
    assert_eq!(with_token.json(), serde_json::json!([1, 2, 3]));

    let without_token = run_client(args, &[]);
    assert_eq!(
        without_token.status.code(),
        Some(2),
        "a usage error: nothing was sent"
    );
    assert!(
        without_token.stderr.contains("RPC_TOKEN"),
        "the error should say how to pass a token: {}",
        without_token.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_server_writes_an_endpoint_file_without_a_token() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let file = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    assert_eq!(file.pid, server.pid());
    assert_eq!(file.endpoints, server.endpoints());
    assert!(file.token.is_none(), "no tcp endpoint, so no token to leak");

    // Connecting explicitly to the unix endpoint needs no token either.
    let connector = Connector::new(Target::Endpoint {
        endpoint: server.endpoint().clone(),
        token: None,
    });
    tests::assert_serves_calls(&connector).await;
    let err = Connector::new(Target::Endpoint {
        endpoint: Endpoint::Unix(dir.path().join("absent.sock")),
        token: None,
    })
    .connect::<EchoClient>()
    .await
    .expect_err("nothing listens there");
    assert!(
        matches!(err, ConnectError::NoServer { .. }),
        "unexpected error: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_and_tcp_together_are_listed_unix_first_and_both_serve() {
    let dir = TestDir::new();
    let server = dir
        .server()
        .listen("tcp:127.0.0.1:0")
        .listen("auto")
        .start();
    let [unix, tcp] = server.endpoints() else {
        panic!("expected two endpoints, got {:?}", server.endpoints());
    };
    assert_eq!(unix, &Endpoint::Unix(dir.location().socket_path()));
    assert!(tcp.is_tcp(), "second endpoint: {tcp}");

    let file = read_endpoint_file(&dir.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists");
    assert_eq!(file.endpoints, server.endpoints());
    let token = file
        .token
        .expect("a server with a tcp endpoint writes its token");

    for (endpoint, token) in [(unix, None), (tcp, Some(token))] {
        let connector = Connector::new(Target::Endpoint {
            endpoint: endpoint.clone(),
            token,
        });
        tests::assert_serves_calls(&connector).await;
    }
}
