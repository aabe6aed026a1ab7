//! Answers the client cannot use get `RPC_ERR_PROTOCOL` and the reason, from a fake server: a
//! service that is not the one its server described, and another method's answer to a call.

use futures::{SinkExt, StreamExt};
use rpc_core::Service;
use rpc_core::schema::SchemaHash;
use rpc_core::services::introspect::{IntrospectClient, IntrospectRequest, IntrospectResponse};
use rpc_core::services::kv::{KvClient, KvRequest, KvResponse};
use rpc_core::tarpc::Response;
use rpc_core::wire::ClientMessage;
use tests::TestDir;
use tests::raw::{accept_any_hello, accept_as_fake_server};
use tokio::net::UnixListener;

use crate::support::{command, test_program};

#[test]
fn answers_the_client_cannot_use_are_protocol_errors() {
    let dir = TestDir::new();
    let socket = dir.path().join("fake.sock");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(async { UnixListener::bind(&socket).expect("binds") });
    runtime.spawn(fake_server(listener));

    let program = test_program("protocol_error.c", dir.path());
    let output = command(&program)
        .arg(format!("unix:{}", socket.display()))
        .output()
        .expect("protocol_error runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("done\n"),
        "protocol_error exited with {:?}:\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let line = |case: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(case)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{case}` line in:\n{stdout}"))
    };
    let changed = line("changed");
    assert!(
        changed.starts_with("7 ") && changed.contains("is not the one described"),
        "a service other than the one described: {changed}"
    );
    let wrong = line("wrong");
    assert!(
        wrong.starts_with("7 ") && wrong.contains("with the response of method"),
        "another method's answer: {wrong}"
    );
}

/// Serves, in turn, the connections the C program makes: `introspect` ones as the real server
/// would (describing the real `kv`); the first `kv` one with another schema's hash; the next
/// one answering every `kv.get` with `kv.delete`'s response.
async fn fake_server(listener: UnixListener) {
    let kv = KvClient::schema().expect("kv traces");
    let mut kv_connections = 0;
    loop {
        let (hello, framed) = accept_any_hello(&listener).await;
        if hello.service == IntrospectClient::NAME {
            let hash = IntrospectClient::schema().expect("traces").hash();
            let transport = accept_as_fake_server(framed, hash).await;
            tokio::spawn(serve(transport, {
                let kv = kv.clone();
                move |request| match request {
                    IntrospectRequest::Describe { .. } => {
                        IntrospectResponse::Describe(Some(kv.clone()))
                    }
                    IntrospectRequest::Hashes {} => {
                        IntrospectResponse::Hashes(vec![(kv.name.clone(), kv.hash())])
                    }
                    IntrospectRequest::Services {} => {
                        IntrospectResponse::Services(vec![kv.clone()])
                    }
                }
            }));
        } else if hello.service == KvClient::NAME {
            kv_connections += 1;
            let hash = match kv_connections {
                1 => SchemaHash(kv.hash().0 ^ 1),
                _ => kv.hash(),
            };
            let transport = accept_as_fake_server(framed, hash).await;
            tokio::spawn(serve(transport, |request| {
                assert!(matches!(request, KvRequest::Get { .. }), "{request:?}");
                KvResponse::Delete(Some("not what was asked".into()))
            }));
        } else {
            panic!("the C program asked for service {:?}", hello.service);
        }
    }
}

/// Answers each request on `transport` with `answer(request)` until the client hangs up.
async fn serve<Req, Resp>(
    mut transport: rpc_core::WireTransport<
        rpc_core::LocalStream,
        ClientMessage<Req>,
        Response<Resp>,
    >,
    answer: impl Fn(Req) -> Resp,
) where
    Req: rpc_core::serde::de::DeserializeOwned,
    Resp: rpc_core::serde::Serialize,
{
    while let Some(Ok(message)) = transport.next().await {
        let ClientMessage::Request(request) = message else {
            continue;
        };
        let response = Response {
            request_id: request.id,
            message: Ok(answer(request.message)),
        };
        if transport.send(response).await.is_err() {
            break;
        }
    }
}
