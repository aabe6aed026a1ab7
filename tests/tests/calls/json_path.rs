//! The bytes `rpc-client call` sends are a compiled client's: for every method of the built-in
//! services and of the example `notes` service, the request built from JSON by the schema
//! encodes exactly as the generated request enum does.

use std::collections::BTreeSet;

use bytes::BytesMut;
use examples::notes::{Filter, NotesClient, NotesRequest};
use rpc_core::services::echo::{EchoClient, EchoRequest};
use rpc_core::services::health::{HealthClient, HealthRequest};
use rpc_core::services::introspect::{IntrospectClient, IntrospectRequest};
use rpc_core::services::kv::{KvClient, KvRequest};
use rpc_core::wire::WireFormat;
use rpc_core::{FrameLimit, Service};
use serde::Serialize;
use serde_json::json;

fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_body(value, &mut bytes)
        .expect("encodes");
    bytes.to_vec()
}

/// Checks each `(method, JSON arguments, compiled request)` of `C`, and that every method of
/// `C` is among them.
fn assert_json_path_matches<C: Service>(cases: Vec<(&str, serde_json::Value, C::Request)>) {
    let schema = C::schema().expect("the schema traces");
    let mut covered = BTreeSet::new();
    for (method, args, compiled) in cases {
        let request = schema
            .request_from_json(method, &args)
            .unwrap_or_else(|err| panic!("{}.{method} {args}: {err}", C::NAME));
        assert_eq!(
            encode(&request),
            encode(&compiled),
            "{}.{method} {args}: the JSON path's bytes differ from the compiled client's",
            C::NAME
        );
        covered.insert(method);
    }
    let all: BTreeSet<&str> = schema.method_names().into_iter().collect();
    assert_eq!(covered, all, "every method of {} is checked", C::NAME);
}

#[test]
fn built_in_services() {
    assert_json_path_matches::<EchoClient>(vec![
        ("ping", json!({}), EchoRequest::Ping {}),
        ("ping", json!(null), EchoRequest::Ping {}),
        (
            "echo",
            json!({"bytes": [0, 1, 255]}),
            EchoRequest::Echo {
                bytes: serde_bytes::ByteBuf::from(vec![0, 1, 255]),
            },
        ),
        (
            "echo",
            json!({"bytes": vec![7u8; 70_000]}),
            EchoRequest::Echo {
                bytes: serde_bytes::ByteBuf::from(vec![7; 70_000]),
            },
        ),
        ("delay", json!({"ms": 250}), EchoRequest::Delay { ms: 250 }),
        (
            "stream",
            json!({"len": 64, "count": null}),
            EchoRequest::Stream {
                len: 64,
                count: None,
            },
        ),
        (
            "stream",
            json!({"len": 1, "count": 3}),
            EchoRequest::Stream {
                len: 1,
                count: Some(3),
            },
        ),
    ]);
    assert_json_path_matches::<KvClient>(vec![
        (
            "get",
            json!({"key": "k"}),
            KvRequest::Get { key: "k".into() },
        ),
        (
            "set",
            json!({"key": "k", "value": "v\u{e9}"}),
            KvRequest::Set {
                key: "k".into(),
                value: "v\u{e9}".into(),
            },
        ),
        (
            "delete",
            json!({"key": ""}),
            KvRequest::Delete { key: "".into() },
        ),
        (
            "list",
            json!({"prefix": "a"}),
            KvRequest::List { prefix: "a".into() },
        ),
        (
            "watch",
            json!({"prefix": "a"}),
            KvRequest::Watch { prefix: "a".into() },
        ),
    ]);
    assert_json_path_matches::<HealthClient>(vec![("info", json!({}), HealthRequest::Info {})]);
    assert_json_path_matches::<IntrospectClient>(vec![
        ("services", json!({}), IntrospectRequest::Services {}),
        (
            "describe",
            json!({"service": "kv"}),
            IntrospectRequest::Describe {
                service: "kv".into(),
            },
        ),
        ("hashes", json!({}), IntrospectRequest::Hashes {}),
    ]);
}

#[test]
fn the_example_notes_service() {
    assert_json_path_matches::<NotesClient>(vec![
        (
            "add",
            json!({"title": "t", "body": "b"}),
            NotesRequest::Add {
                title: "t".into(),
                body: "b".into(),
            },
        ),
        ("list", json!({}), NotesRequest::List { filter: None }),
        (
            "list",
            json!({"filter": null}),
            NotesRequest::List { filter: None },
        ),
        (
            "list",
            json!({"filter": {"TitleContains": "x"}}),
            NotesRequest::List {
                filter: Some(Filter::TitleContains("x".into())),
            },
        ),
        (
            "list",
            json!({"filter": {"Since": {"id": 3}}}),
            NotesRequest::List {
                filter: Some(Filter::Since { id: 3 }),
            },
        ),
        (
            "get",
            json!({"id": u64::MAX}),
            NotesRequest::Get { id: u64::MAX },
        ),
    ]);
}
