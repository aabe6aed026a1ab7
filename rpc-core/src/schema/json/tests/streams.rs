//! A streaming method's answers: each a `StreamEvent` of its items, read into the JSON
//! serde_json writes for the same event; its request is an ordinary one.

use serde_json::json;

use super::*;
use crate::schema::{JsonError, JsonRequestSeed, JsonResponseSeed, MAX_JSON_DEPTH};
use crate::services::kv::{KvClient, KvEvent, KvRequest, KvResponse};
use crate::{Service, StreamEvent};

/// `kv`'s schema, as its server describes it; `watch` is method 4.
fn kv() -> JsonResponseSeed {
    JsonResponseSeed {
        schema: Arc::new(KvClient::schema().expect("kv traces")),
    }
}

const WATCH: u32 = 4;

/// A one-method service whose method `m` streams items of type `item`.
fn streaming(item: Type) -> Arc<ServiceSchema> {
    let mut schema = service(vec![], item, vec![]);
    Arc::make_mut(&mut schema).methods[0].streaming = true;
    schema
}

#[test]
fn kv_watch_is_method_4_and_streams_kv_events() {
    let schema = kv().schema;
    let (index, watch) = schema.method("watch").expect("kv has watch");
    assert_eq!(index, WATCH);
    assert!(watch.streaming);
    assert_eq!(watch.result, Type::Named("KvEvent".into()));
}

#[test]
fn stream_events_read_back_as_serde_json_writes_them() {
    let events = [
        StreamEvent::Item(KvEvent::Set {
            key: "a".into(),
            value: "1".into(),
        }),
        StreamEvent::Item(KvEvent::Delete {
            key: "\u{1b}[2J\n\u{202e}".into(),
        }),
        StreamEvent::Item(KvEvent::Set {
            key: String::new(),
            value: "日本語 🦀".repeat(100),
        }),
        StreamEvent::Lagged { missed: 0 },
        StreamEvent::Lagged { missed: 12 },
        StreamEvent::Lagged { missed: u64::MAX },
        StreamEvent::End,
    ];
    let seed = kv();
    for event in events {
        let bytes = wire(&KvResponse::Watch(event.clone()));
        let read = read(seed.clone(), &bytes).expect("reads");
        assert_eq!(read.method, WATCH);
        let expected = serde_json::to_value(&event).expect("to JSON");
        assert_eq!(read.value, expected, "{event:?}");
    }
    // The shapes, spelled out: what `rpc-client watch` prints, one per line.
    let lagged = wire(&KvResponse::Watch(StreamEvent::Lagged { missed: 12 }));
    assert_eq!(
        read(seed.clone(), &lagged).expect("reads").value,
        json!({ "Lagged": { "missed": 12 } })
    );
    let end = wire(&KvResponse::Watch(StreamEvent::End));
    assert_eq!(read(seed, &end).expect("reads").value, json!("End"));
}

#[test]
fn an_item_that_takes_no_bytes_reads_as_null() {
    let seed = JsonResponseSeed {
        schema: streaming(Type::Unit),
    };
    #[derive(Serialize)]
    enum Response {
        M(StreamEvent<()>),
    }
    let read = read(seed, &wire(&Response::M(StreamEvent::Item(())))).expect("reads");
    assert_eq!(read.value, json!({ "Item": null }));
}

#[test]
fn a_streaming_methods_request_is_an_ordinary_one() {
    let seed = kv();
    let request = seed
        .schema
        .request_from_json("watch", &json!({ "prefix": "a/" }))
        .expect("builds");
    let compiled = KvRequest::Watch {
        prefix: "a/".into(),
    };
    assert_eq!(wire(&request), wire(&compiled));
    let call = read(
        JsonRequestSeed {
            schema: seed.schema,
        },
        &wire(&compiled),
    )
    .expect("reads");
    assert_eq!(call.method, WATCH);
    assert_eq!(call.args, json!({ "prefix": "a/" }));
}

#[test]
fn an_event_variant_past_end_is_an_error_naming_the_three() {
    let seed = kv();
    for index in [3u32, 255, u32::MAX] {
        let mut bytes = WATCH.to_le_bytes().to_vec();
        bytes.extend(index.to_le_bytes());
        let err = read(seed.clone(), &bytes).expect_err("no such event");
        assert!(
            err.to_string().contains(&format!(
                "variant index {index} is out of range for a stream event of KvEvent \
                 (Item 0, Lagged 1 or End 2)"
            )),
            "{err}"
        );
    }
}

#[test]
fn truncated_and_malformed_events_are_errors() {
    let seed = kv();
    let lagged = wire(&KvResponse::Watch(StreamEvent::Lagged { missed: 12 }));
    for len in 4..lagged.len() {
        read(seed.clone(), &lagged[..len]).expect_err("truncated");
    }
    // An item whose `KvEvent` variant does not exist.
    let mut bytes = WATCH.to_le_bytes().to_vec();
    bytes.extend([0, 0, 0, 0, 9, 0, 0, 0]);
    let err = read(seed.clone(), &bytes).expect_err("no KvEvent variant 9");
    assert!(
        err.to_string()
            .contains("variant index 9 is out of range for KvEvent"),
        "{err}"
    );
    // An `End` with bytes after it.
    let mut end = wire(&KvResponse::Watch(StreamEvent::End));
    end.push(0);
    read(seed, &end).expect_err("trailing bytes");
}

#[test]
fn the_event_counts_as_a_level_of_nesting() {
    let nested = |levels: u32| (1..levels).fold(Type::U8, |inner, _| Type::Seq(Box::new(inner)));
    let bytes = |levels: u32| {
        // Method 0, `Item` (0), then a length of 1 per `Vec`, then the `u8`.
        let mut bytes = vec![0u8; 8];
        bytes.extend(std::iter::repeat_n(1u64.to_le_bytes(), levels as usize - 1).flatten());
        bytes.push(5);
        bytes
    };
    let levels = MAX_JSON_DEPTH - 1;
    let seed = JsonResponseSeed {
        schema: streaming(nested(levels)),
    };
    read(seed, &bytes(levels)).expect("deep enough");
    let levels = MAX_JSON_DEPTH;
    let seed = JsonResponseSeed {
        schema: streaming(nested(levels)),
    };
    let err = read(seed, &bytes(levels)).expect_err("too deep");
    assert!(err.to_string().contains("nests deeper than 128"), "{err}");
}

#[test]
fn a_caller_reading_one_answer_is_refused_a_streaming_method_and_the_other_way_round() {
    let schema = kv().schema;
    let args = json!({ "prefix": "a/" });
    let err = schema
        .call_request_from_json("watch", &args)
        .expect_err("watch streams");
    assert!(matches!(err, JsonError::StreamingMethod { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`kv.watch` streams its answers (watch(prefix: string) -> stream KvEvent): open it with \
         watch, not call"
    );
    let err = schema
        .stream_request_from_json("list", &args)
        .expect_err("list answers once");
    assert_eq!(
        err.to_string(),
        "`kv.list` answers once (list(prefix: string) -> Vec<string>): call it with call, not \
         watch"
    );
    // The kind is checked first: bad arguments to the wrong kind of method name the kind.
    let err = schema
        .call_request_from_json("watch", &json!(3))
        .expect_err("watch streams");
    assert!(matches!(err, JsonError::StreamingMethod { .. }), "{err:?}");

    // The right kind builds what `request_from_json` does; an unknown method is unknown.
    assert_eq!(
        schema.stream_request_from_json("watch", &args),
        schema.request_from_json("watch", &args)
    );
    assert_eq!(
        schema.call_request_from_json("list", &args),
        schema.request_from_json("list", &args)
    );
    let err = schema
        .stream_request_from_json("wach", &args)
        .expect_err("no such method");
    assert!(matches!(err, JsonError::UnknownMethod { .. }), "{err:?}");
}
