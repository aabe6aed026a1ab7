//! Handshake refusals that tell the client exactly what went wrong.

use rpc_client::ConnectError;
use rpc_core::handshake::PROTOCOL_VERSION;
use rpc_core::services::echo::{EchoRequest, EchoResponse};
use rpc_core::{Hello, HelloReply, Refusal};
use tests::raw::{handshake, read_until_closed};
use tests::resources::Baseline;
use tests::{TestDir, assert_serves_calls};
use tokio::net::UnixStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_service_is_refused_with_the_list_of_hosted_services() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let err = server
        .connector()
        .channel::<EchoRequest, EchoResponse>("nope")
        .await
        .expect_err("no such service");
    match &err {
        ConnectError::Refused {
            refusal:
                Refusal::UnknownService {
                    requested,
                    available,
                },
            endpoint,
        } => {
            assert_eq!(requested, "nope");
            assert_eq!(available, &["echo", "health", "introspect", "kv"]);
            assert_eq!(endpoint, server.endpoint());
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        err.to_string().contains("echo, health, introspect, kv"),
        "the message lists the services: {err}"
    );
    assert_serves_calls(&server.connector()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_protocol_version_is_refused_with_the_version_the_server_speaks() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let baseline = Baseline::after_warm_up(&server).await;
    let path = server.endpoint().unix_path().expect("a unix endpoint");
    let stream = UnixStream::connect(path).await.expect("connects");
    let hello = Hello {
        version: PROTOCOL_VERSION + 1,
        ..Hello::new("echo", None)
    };
    let (reply, mut stream) = handshake(stream, hello).await;
    assert_eq!(
        reply,
        HelloReply::Refused(Refusal::UnsupportedVersion {
            requested: PROTOCOL_VERSION + 1,
            supported: PROTOCOL_VERSION,
        })
    );
    assert!(read_until_closed(&mut stream).await.is_empty());
    // Serves others, with descriptors and memory back where they were.
    baseline
        .assert_restored(&server, "a refused newer-version handshake")
        .await;
}
