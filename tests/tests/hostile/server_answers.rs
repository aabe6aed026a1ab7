//! A hostile server's answers: another method's response to a typed client, and schemas whose
//! names would forge lines in `rpc-client list`. The client reports an error; it never panics
//! and never prints a forged line.

use std::path::{Path, PathBuf};

use rpc_client::Connector;
use rpc_core::Service;
use rpc_core::schema::ServiceSchema;
use rpc_core::services::introspect::{IntrospectClient, IntrospectRequest, IntrospectResponse};
use rpc_core::services::kv::{KvClient, KvRequest, KvResponse};
use rpc_core::tarpc::context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tests::raw::{accept_as_fake_server, accept_hello, answer_each};
use tests::{TestDir, run_client};
use tokio::net::UnixListener;

/// Listens on a Unix socket in `dir`, accepts one connection for service `C`, and answers each
/// of its requests with `answer(request)` until the client hangs up. Returns the socket's path.
fn fake_server<C: Service>(
    dir: &Path,
    mut answer: impl FnMut(C::Request) -> C::Response + Send + 'static,
) -> PathBuf
where
    C::Request: DeserializeOwned,
    C::Response: Serialize,
{
    let path = dir.join("fake.sock");
    let listener = UnixListener::bind(&path).expect("the fake server binds");
    tokio::spawn(async move {
        let framed = accept_hello(&listener).await;
        let hash = C::schema().expect("traces").hash();
        let transport = accept_as_fake_server::<C::Request, C::Response>(framed, hash).await;
        let answered = answer_each(transport, &mut answer).await;
        assert!(answered > 0, "the client sent no request");
    });
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_methods_answer_is_an_error_for_a_typed_client_not_a_panic() {
    let dir = TestDir::new();
    let socket = fake_server::<KvClient>(dir.path(), |request| {
        assert!(matches!(request, KvRequest::Get { .. }), "{request:?}");
        KvResponse::Delete(Some("not what was asked".into()))
    });
    let endpoint = format!("unix:{}", socket.display())
        .parse()
        .expect("an endpoint");
    let connector = Connector::endpoint(endpoint).expect("a unix endpoint");
    let kv = connector.connect::<KvClient>().await.expect("connects");
    let err = kv
        .get(context::current(), "k".into())
        .await
        .expect_err("the answer is another method's");
    assert!(
        err.to_string().contains("another method's response")
            || format!("{err:?}").contains("another method's response"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_whose_names_would_forge_lines_is_refused_by_list() {
    let dir = TestDir::new();
    let mut forged: ServiceSchema = IntrospectClient::schema().expect("traces");
    forged.name = "x\n  kv.get(key: string) -> Option<string>".into();
    let socket = fake_server::<IntrospectClient>(dir.path(), move |request| match request {
        // `list` asks for the names, then for each schema.
        IntrospectRequest::Hashes {} => {
            IntrospectResponse::Hashes(vec![(forged.name.clone(), forged.hash())])
        }
        IntrospectRequest::Describe { .. } => IntrospectResponse::Describe(Some(forged.clone())),
        other => panic!("list asked for {other:?}"),
    });
    let endpoint = format!("unix:{}", socket.display());
    let out =
        tokio::task::spawn_blocking(move || run_client(["--endpoint", &endpoint, "list"], &[]))
            .await
            .expect("rpc-client ran");
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing printed: {}", out.stdout);
    assert!(
        out.stderr.contains(r"x\u{a}  kv.get"),
        "shown escaped: {}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
