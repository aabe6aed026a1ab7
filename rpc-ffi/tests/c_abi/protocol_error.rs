//! Answers the client cannot use get `RPC_ERR_PROTOCOL` and the reason, from a fake server: a
//! service that is not the one its server described, and another method's answer to a call.

use rpc_core::Service;
use rpc_core::schema::SchemaHash;
use rpc_core::services::introspect::{IntrospectClient, IntrospectRequest, IntrospectResponse};
use rpc_core::services::kv::{KvClient, KvRequest, KvResponse};
use tests::TestDir;
use tests::raw::{accept_any_hello, accept_as_fake_server, answer_each};
use tokio::net::UnixListener;

use crate::support::run_cases;

#[test]
fn answers_the_client_cannot_use_are_protocol_errors() {
    let dir = TestDir::new();
    let socket = dir.path().join("fake.sock");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(async { UnixListener::bind(&socket).expect("binds") });
    runtime.spawn(fake_server(listener));

    let cases = run_cases(
        "protocol_error.c",
        dir.path(),
        format!("unix:{}", socket.display()),
    );
    let changed = &cases["changed"];
    assert!(
        changed.starts_with("7 ") && changed.contains("is not the one described"),
        "a service other than the one described: {changed}"
    );
    let wrong = &cases["wrong"];
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
            tokio::spawn(answer_each(transport, {
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
            tokio::spawn(answer_each(transport, |request| {
                assert!(matches!(request, KvRequest::Get { .. }), "{request:?}");
                KvResponse::Delete(Some("not what was asked".into()))
            }));
        } else {
            panic!("the C program asked for service {:?}", hello.service);
        }
    }
}
