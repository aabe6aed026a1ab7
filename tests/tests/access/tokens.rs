//! Who may connect: TCP peers need the token from the endpoint file; Unix peers need none.

use rpc_client::{ConnectError, Connector, Target, read_endpoint_file};
use rpc_core::services::echo::EchoClient;
use rpc_core::{Endpoint, Hello, HelloReply, Refusal, Token};
use tests::raw::{handshake, read_until_closed};
use tests::{ServerProcess, TestDir, assert_serves_calls};
use tokio::net::{TcpStream, UnixStream};

/// Starts a server listening on TCP loopback only.
fn tcp_server(dir: &TestDir) -> ServerProcess {
    dir.server().listen("tcp:127.0.0.1:0").start()
}

/// The token in `server`'s endpoint file.
fn token_of(server: &ServerProcess) -> Token {
    read_endpoint_file(&server.location().endpoint_file_path())
        .expect("the endpoint file is readable")
        .expect("the endpoint file exists")
        .token
        .expect("a tcp server writes its token")
}

/// `token` with its last hex digit changed: as close to right as a wrong token gets.
fn almost(token: &Token) -> Token {
    let mut hex = token.to_string();
    let last = if hex.ends_with('0') { "1" } else { "0" };
    hex.replace_range(hex.len() - 1.., last);
    hex.parse().expect("still valid hex")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_with_a_wrong_token_is_refused_with_bad_token() {
    let dir = TestDir::new();
    let server = tcp_server(&dir);
    let wrong = almost(&token_of(&server));

    let err = Connector::new(Target::Endpoint {
        endpoint: server.endpoint().clone(),
        token: Some(wrong),
    })
    .connect::<EchoClient>()
    .await
    .expect_err("a wrong token is refused");
    assert!(
        matches!(
            err,
            ConnectError::Refused {
                refusal: Refusal::BadToken,
                ..
            }
        ),
        "unexpected error: {err}"
    );
    tests::wait_for(tests::EXIT_TIMEOUT, "the refusal to be logged", || {
        server.stderr().contains("connection refused")
    });
    assert!(
        !server.stderr().contains(&token_of(&server).to_string()),
        "the token must never be logged"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_will_not_connect_to_tcp_without_a_token() {
    let dir = TestDir::new();
    let server = tcp_server(&dir);
    let err = Connector::new(Target::Endpoint {
        endpoint: server.endpoint().clone(),
        token: None,
    })
    .connect::<EchoClient>()
    .await
    .expect_err("no token, no connection");
    assert!(
        matches!(&err, ConnectError::MissingToken { endpoint } if endpoint == server.endpoint()),
        "unexpected error: {err}"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_handshake_without_a_token_is_refused_with_missing_token_and_closed() {
    let dir = TestDir::new();
    let server = tcp_server(&dir);
    let Endpoint::Tcp(addr) = server.endpoint() else {
        panic!("expected tcp, got {}", server.endpoint());
    };
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (reply, mut stream) = handshake(stream, Hello::new("echo", None)).await;
    assert_eq!(reply, HelloReply::Refused(Refusal::MissingToken));
    let after = read_until_closed(&mut stream).await;
    assert!(
        after.is_empty(),
        "the server sent more after refusing: {after:?}"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_handshake_with_the_right_token_is_accepted() {
    let dir = TestDir::new();
    let server = tcp_server(&dir);
    let Endpoint::Tcp(addr) = server.endpoint() else {
        panic!("expected tcp, got {}", server.endpoint());
    };
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (reply, _stream) = handshake(stream, Hello::new("echo", Some(token_of(&server)))).await;
    assert!(
        matches!(reply, HelloReply::Accepted { .. }),
        "unexpected reply: {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_peers_need_no_token_and_a_stray_one_is_ignored() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let path = server.endpoint().unix_path().expect("a unix endpoint");
    for token in [None, Some("ab".repeat(32).parse().expect("valid hex"))] {
        let stream = UnixStream::connect(path).await.expect("connects");
        let (reply, _stream) = handshake(stream, Hello::new("kv", token)).await;
        assert!(
            matches!(reply, HelloReply::Accepted { .. }),
            "unexpected reply: {reply:?}"
        );
    }
}
