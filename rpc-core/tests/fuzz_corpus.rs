//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own
//! decode loops, so `cargo test` catches a decoder regression without nightly or libFuzzer.
//!
//! Every file must decode without a panic and within the buffer bound (both checked inside the
//! loops). A file whose name starts with a known prefix (`valid-`, `bad-magic-`, `oversized-`,
//! `huge-`, ...) must also give the outcome that prefix promises, for the decoders its name tags
//! (`hello`, `reply`, `kv-request`, `echo-request`, `kv-response`; untagged means all of them).
//! Files the fuzzer adds, named by hash, get the general checks only.
//!
//! The named files are generated here from the real encoders: after changing the wire format,
//! `REGENERATE_CORPUS=1 cargo test -p rpc-core --test fuzz_corpus` rewrites them.

#[path = "../../fuzz/src/lib.rs"]
mod decode_loops;

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rpc_core::StreamEvent;
use rpc_core::handshake::{
    HandshakeCodec, HandshakeError, HandshakeMessage, Hello, HelloReply, MAGIC,
    MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION, Refusal, TOKEN_LEN, Token,
};
use rpc_core::services::echo::EchoRequest;
use rpc_core::services::kv::{KvError, KvEvent, KvRequest, KvResponse};
use rpc_core::tarpc::{self, Response, ServerError};
use rpc_core::wire::ClientMessage;
use rpc_core::wire::{BIG_FIELD, CodecError, FrameLimit, WireFormat};
use serde::Serialize;
use serde_bytes::ByteBuf;
use tokio_util::codec::Encoder;

use decode_loops::lane::{
    CountingAlloc, Descriptors, LANE_REGION_SIZE, LaneInput, decode_lane_frames, region_bytes,
};
use decode_loops::schema_json::{SchemaJsonInput, fixed_schemas, fuzz_schema_json, wire_format};
use decode_loops::{
    FUZZ_FRAME_LIMIT, Outcome, decode_frames, decode_handshake, decode_large_frames,
};
use rpc_core::Service;
use rpc_core::lane::{LANE_MAX_FIELDS, LANE_MAX_SMALLS};
use rpc_core::schema::ServiceSchema;
use rpc_core::services::{echo, health, introspect, kv};

// The lane loop measures each decode call's peak heap use on its thread; the counters are
// per thread, so the other tests running alongside do not disturb it.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The largest committed seed: corpus files stay small so the fuzzer mutates them quickly.
const MAX_SEED_LEN: usize = 2048;

/// The largest committed `large_frame` seed: a large frame is at least `BIG_FIELD` (32 KiB).
const MAX_LARGE_SEED_LEN: usize = 160 * 1024;

/// The largest committed `schema_json` seed: the introspect schema describing the kv schema.
const MAX_SCHEMA_SEED_LEN: usize = 8 * 1024;

/// A count no frame can hold: 2^60 elements or bytes.
const HUGE_LEN: u64 = 1 << 60;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, sorted by name; panics on an empty corpus so that the replay
/// cannot pass vacuously.
fn corpus_files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list corpus {}: {err}", dir.display()));
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        if path.is_file() {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .expect("utf-8 file name")
                .to_owned();
            let bytes = fs::read(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            files.push((name, bytes));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

/// What a file name's prefix promises about a decoder's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// At least one message, then the input runs out cleanly.
    Messages,
    /// No message and no error: the decoder waits for the rest of a frame.
    NeedsMoreBytes,
    /// Exactly one message, then an error.
    OneThenError,
    /// No message, this error.
    Error(ErrorClass),
}

/// The errors a corpus file can be named for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorClass {
    BadMagic,
    UnsupportedVersion,
    TooLarge,
    Malformed,
    /// The shared-memory lane's rules broken (`CodecError::Lane`).
    Lane,
    Other,
}

/// File name prefixes and what they promise.
const RULES: &[(&str, Expected)] = &[
    ("valid-", Expected::Messages),
    ("truncated-", Expected::NeedsMoreBytes),
    ("limit-exact-", Expected::NeedsMoreBytes),
    ("empty", Expected::NeedsMoreBytes),
    ("garbage-after-valid-", Expected::OneThenError),
    ("bad-magic-", Expected::Error(ErrorClass::BadMagic)),
    (
        "bad-version-",
        Expected::Error(ErrorClass::UnsupportedVersion),
    ),
    ("oversized-", Expected::Error(ErrorClass::TooLarge)),
    ("huge-", Expected::Error(ErrorClass::Malformed)),
    ("malformed-", Expected::Error(ErrorClass::Malformed)),
];

/// File name prefixes only the `lane` corpus uses, looked up before [`RULES`].
const LANE_RULES: &[(&str, Expected)] = &[
    ("refused-", Expected::Error(ErrorClass::Lane)),
    ("one-then-refused-", Expected::OneThenError),
];

fn lane_rule_for(name: &str) -> Option<(&'static str, Expected)> {
    LANE_RULES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .copied()
        .or_else(|| rule_for(name))
}

fn rule_for(name: &str) -> Option<(&'static str, Expected)> {
    RULES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .copied()
}

/// Whether the decoder tagged `tag` is meant by `name`: named by its tag, or no tag is named.
fn meant(name: &str, tag: &str, all_tags: &[&str]) -> bool {
    name.contains(tag) || !all_tags.iter().any(|t| name.contains(t))
}

fn codec_class(err: &CodecError) -> ErrorClass {
    match err {
        CodecError::IncomingTooLarge { len, limit } => {
            assert!(len > limit, "too large: {len} is within {limit}");
            ErrorClass::TooLarge
        }
        CodecError::Malformed(_) => ErrorClass::Malformed,
        CodecError::Lane(_) => ErrorClass::Lane,
        _ => ErrorClass::Other,
    }
}

fn handshake_class(err: &HandshakeError) -> ErrorClass {
    match err {
        HandshakeError::BadMagic => ErrorClass::BadMagic,
        HandshakeError::UnsupportedVersion(version) => {
            assert_ne!(*version, PROTOCOL_VERSION);
            ErrorClass::UnsupportedVersion
        }
        HandshakeError::Codec(err) => codec_class(err),
    }
}

/// Asserts that `outcome` is what `expected` promises, naming the file and decoder if not.
fn check<T, E: std::fmt::Debug>(
    file: &str,
    decoder: &str,
    outcome: &Outcome<T, E>,
    expected: Expected,
    class: impl Fn(&E) -> ErrorClass,
) {
    let count = outcome.messages.len();
    let ok = match (expected, &outcome.end) {
        (Expected::Messages, Ok(())) => count >= 1,
        (Expected::NeedsMoreBytes, Ok(())) => count == 0,
        (Expected::OneThenError, Err(_)) => count == 1,
        (Expected::Error(want), Err(err)) => count == 0 && class(err) == want,
        _ => false,
    };
    assert!(
        ok,
        "{file} as {decoder}: expected {expected:?}, got {count} message(s) then {:?}",
        outcome.end
    );
}

/// [`check`]s a frame decoder's outcome, if the file is meant for the decoder tagged `tag`.
fn check_tagged<T>(
    file: &str,
    tag: &str,
    all_tags: &[&str],
    outcome: &Outcome<T, CodecError>,
    expected: Expected,
) {
    if meant(file, tag, all_tags) {
        check(file, tag, outcome, expected, codec_class);
    }
}

#[test]
fn every_handshake_corpus_file_decodes_without_panic_and_as_its_name_says() {
    const TAGS: &[&str] = &["hello", "reply"];
    let mut rules_seen = Vec::new();
    for (name, bytes) in corpus_files("handshake") {
        let outcomes = decode_handshake(&bytes);
        let Some((prefix, expected)) = rule_for(&name) else {
            continue;
        };
        rules_seen.push(prefix);
        if meant(&name, "hello", TAGS) {
            check(&name, "hello", &outcomes.hello, expected, handshake_class);
        }
        if meant(&name, "reply", TAGS) {
            check(&name, "reply", &outcomes.reply, expected, handshake_class);
        }
    }
    for (prefix, _) in RULES {
        assert!(
            rules_seen.contains(prefix),
            "no handshake corpus file is named {prefix}*"
        );
    }
}

#[test]
fn every_frame_corpus_file_decodes_without_panic_and_as_its_name_says() {
    const TAGS: &[&str] = &["kv-request", "echo-request", "kv-response"];
    let mut rules_seen = Vec::new();
    for (name, bytes) in corpus_files("frame") {
        let outcomes = decode_frames(&bytes);
        let Some((prefix, expected)) = rule_for(&name) else {
            continue;
        };
        rules_seen.push(prefix);
        check_tagged(&name, "kv-request", TAGS, &outcomes.kv_request, expected);
        check_tagged(
            &name,
            "echo-request",
            TAGS,
            &outcomes.echo_request,
            expected,
        );
        check_tagged(&name, "kv-response", TAGS, &outcomes.kv_response, expected);
        // Under the 16 MiB default only frames named for it keep their promise: 64 KiB + 1 is
        // no longer oversized there.
        if name.contains("kv-request") {
            check(
                &name,
                "kv-request under the default limit",
                &outcomes.kv_request_default_limit,
                expected,
                codec_class,
            );
        }
    }
    for (prefix, _) in RULES {
        if !prefix.starts_with("bad-") {
            assert!(
                rules_seen.contains(prefix),
                "no frame corpus file is named {prefix}*"
            );
        }
    }
}

#[test]
fn every_large_frame_corpus_file_decodes_without_panic_and_as_its_name_says() {
    const TAGS: &[&str] = &["kv-request", "echo-request", "kv-response"];
    let mut rules_seen = Vec::new();
    let mut large_paths = 0;
    for (name, bytes) in corpus_files("large_frame") {
        let outcomes = decode_large_frames(&bytes);
        let Some((prefix, expected)) = rule_for(&name) else {
            continue;
        };
        rules_seen.push(prefix);
        if name.contains("large") {
            large_paths += 1;
        }
        check_tagged(
            &name,
            "echo-request",
            TAGS,
            &outcomes.echo_request,
            expected,
        );
        check_tagged(&name, "kv-request", TAGS, &outcomes.kv_request, expected);
        check_tagged(&name, "kv-response", TAGS, &outcomes.kv_response, expected);
    }
    for prefix in ["valid-", "truncated-", "malformed-", "garbage-after-valid-"] {
        assert!(
            rules_seen.contains(&prefix),
            "no large_frame corpus file is named {prefix}*"
        );
    }
    assert!(large_paths >= 5, "too few seeds reach the large-frame path");
}

#[test]
fn every_schema_json_corpus_file_runs_its_checks_and_as_its_name_says() {
    let mut valid = 0;
    for (name, bytes) in corpus_files("schema_json") {
        // The schema, response and round-trip checks run inside, on every file.
        let outcome = fuzz_schema_json(&bytes);
        if name.starts_with("valid-") {
            valid += 1;
            assert!(outcome.schema_decoded, "{name}: the schema does not decode");
            assert!(outcome.response_read, "{name}: the response does not read");
            assert!(
                outcome.request_round_tripped,
                "{name}: the request is refused"
            );
        }
        if name.starts_with("fallback-") {
            assert!(!outcome.schema_decoded, "{name}: the schema decodes");
            assert!(
                outcome.request_round_tripped,
                "{name}: the request is refused"
            );
        }
    }
    assert!(valid >= 4, "too few valid schema_json seeds");
}

#[test]
fn every_lane_corpus_file_decodes_without_panic_and_as_its_name_says() {
    const TAGS: &[&str] = &["echo-request", "kv-response"];
    let mut rules_seen = Vec::new();
    let (mut through_lane, mut refused) = (0, 0);
    for (name, bytes) in corpus_files("lane") {
        let outcomes = decode_lane_frames(&bytes);
        let (echo, kv) = (&outcomes.echo_request, &outcomes.kv_response);
        if echo.through_lane + kv.through_lane > 0 {
            through_lane += 1;
        }
        let lane_error = |end: &Result<(), CodecError>| matches!(end, Err(CodecError::Lane(_)));
        if lane_error(&echo.outcome.end) || lane_error(&kv.outcome.end) {
            refused += 1;
        }
        let Some((prefix, expected)) = lane_rule_for(&name) else {
            continue;
        };
        rules_seen.push(prefix);
        check_tagged(&name, "echo-request", TAGS, &echo.outcome, expected);
        check_tagged(&name, "kv-response", TAGS, &kv.outcome, expected);
        if prefix == "valid-" {
            for (tag, count) in [
                ("echo-request", echo.through_lane),
                ("kv-response", kv.through_lane),
            ] {
                if meant(&name, tag, TAGS) {
                    assert!(count >= 1, "{name} as {tag}: nothing came through the lane");
                }
            }
        }
        if prefix == "one-then-refused-" {
            assert!(
                lane_error(&echo.outcome.end),
                "{name}: {:?}",
                echo.outcome.end
            );
        }
        if name == "valid-echo-request-lane" {
            // The payload is the region's bytes at the slot, copied out intact.
            let region = region_bytes(LaneInput::parse(&bytes).pattern);
            let (pos, len) = LANE_ECHO_SLOT;
            let ClientMessage::Request(request) = &echo.outcome.messages[0] else {
                panic!("{name}: not a request");
            };
            let EchoRequest::Echo { bytes: payload } = &request.message else {
                panic!("{name}: not an echo");
            };
            assert_eq!(payload[..], region[pos as usize..][..len]);
        }
        if name.contains("released") && prefix == "valid-" {
            assert_eq!(echo.peer_released, Some(LANE_RELEASED_THROUGH), "{name}");
            assert_eq!(kv.peer_released, Some(LANE_RELEASED_THROUGH), "{name}");
        }
    }
    for prefix in [
        "valid-",
        "truncated-",
        "limit-exact-",
        "malformed-",
        "oversized-",
        "refused-",
        "one-then-refused-",
    ] {
        assert!(
            rules_seen.contains(&prefix),
            "no lane corpus file is named {prefix}*"
        );
    }
    assert!(
        through_lane >= 5,
        "too few lane seeds decode through the lane"
    );
    assert!(
        refused >= 5,
        "too few lane seeds are refused by the lane's rules"
    );
}

#[test]
fn committed_corpus_holds_every_generated_seed() {
    let regenerate = std::env::var_os("REGENERATE_CORPUS").is_some_and(|value| value == "1");
    for (target, seeds, max_len) in [
        ("handshake", handshake_seeds(), MAX_SEED_LEN),
        ("frame", frame_seeds(), MAX_SEED_LEN),
        ("large_frame", large_frame_seeds(), MAX_LARGE_SEED_LEN),
        ("schema_json", schema_json_seeds(), MAX_SCHEMA_SEED_LEN),
        ("lane", lane_seeds(), MAX_SEED_LEN),
    ] {
        let dir = corpus_dir(target);
        for (name, bytes) in seeds {
            assert!(bytes.len() <= max_len, "seed {name} is too large");
            let path = dir.join(name);
            if regenerate {
                fs::create_dir_all(&dir).expect("create corpus directory");
                fs::write(&path, &bytes).expect("write seed");
                continue;
            }
            let committed = fs::read(&path).unwrap_or_else(|err| {
                panic!(
                    "cannot read {}: {err}; run REGENERATE_CORPUS=1 cargo test -p rpc-core --test fuzz_corpus",
                    path.display()
                )
            });
            assert!(
                committed == bytes,
                "{} differs from its seed; run REGENERATE_CORPUS=1 cargo test -p rpc-core --test fuzz_corpus",
                path.display()
            );
        }
    }
}

#[test]
fn a_request_whose_deadline_overflows_an_instant_is_malformed_not_a_panic() {
    let mut frame = request_frame(1, KvRequest::Get { key: "k".into() });
    frame[DEADLINE_SECS].copy_from_slice(&u64::MAX.to_le_bytes());
    let outcomes = decode_frames(&frame);
    assert!(matches!(
        outcomes.kv_request.end,
        Err(CodecError::Malformed(_))
    ));
}

// Seeds. Layouts: a frame is a u32 big-endian length and a body; bodies are bincode 1.3 with
// fixed-width little-endian integers (u32 enum tags, u64 lengths, u8 option tags); a handshake
// body is MAGIC, a u16 big-endian version, then bincode.

/// A frame around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("small body");
    [&len.to_be_bytes()[..], body].concat()
}

fn handshake_frame<M: HandshakeMessage>(message: M) -> Vec<u8> {
    let mut wire = BytesMut::new();
    HandshakeCodec::<(), M>::new()
        .encode(message, &mut wire)
        .expect("encodes");
    wire.to_vec()
}

/// Overwrites the u64 at `at` (a length the encoder wrote), checking it held `was`.
fn patch_len(mut bytes: Vec<u8>, at: usize, was: u64, now: u64) -> Vec<u8> {
    let field = &mut bytes[at..at + 8];
    assert_eq!(field, was.to_le_bytes(), "seed layout changed");
    field.copy_from_slice(&now.to_le_bytes());
    bytes
}

fn handshake_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let hello = handshake_frame(Hello::new("kv", None));
    let hello_body = &hello[4 + MAGIC.len() + 2..];
    let with_version =
        |version: u16| frame(&[&MAGIC[..], &version.to_be_bytes(), hello_body].concat());
    let unknown_service = HelloReply::Refused(Refusal::UnknownService {
        requested: "nope".into(),
        available: vec!["echo".into(), "kv".into()],
    });
    let accepted = handshake_frame(HelloReply::Accepted {
        server_version: "0.1.0".into(),
        max_frame: FrameLimit::default(),
        schema_hash: rpc_core::schema::SchemaHash(0),
        shm: rpc_core::lane::ShmSize::default(),
    });
    let limit = u32::try_from(MAX_HANDSHAKE_FRAME).expect("small limit");
    let header = |len: u32| {
        [
            &len.to_be_bytes()[..],
            &MAGIC,
            &PROTOCOL_VERSION.to_be_bytes(),
        ]
        .concat()
    };
    vec![
        ("valid-hello-no-token", hello.clone()),
        (
            "valid-hello-with-token",
            handshake_frame(Hello::new(
                "echo",
                Some(Token::from_bytes([0x5a; TOKEN_LEN])),
            )),
        ),
        ("valid-hello-twice", [&hello[..], &hello].concat()),
        ("valid-reply-accepted", accepted.clone()),
        (
            "valid-reply-refused-unknown-service",
            handshake_frame(unknown_service.clone()),
        ),
        (
            "valid-reply-refused-peer-not-allowed",
            handshake_frame(HelloReply::Refused(Refusal::PeerNotAllowed {
                uid: 1000,
                gid: 1000,
            })),
        ),
        (
            "bad-magic-http-get",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "bad-magic-tls-record",
            vec![
                0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
            ],
        ),
        (
            "bad-magic-in-frame",
            frame(&[&b"XRPC"[..], &PROTOCOL_VERSION.to_be_bytes(), hello_body].concat()),
        ),
        ("bad-magic-frame-too-short", frame(b"LR")),
        ("bad-version-hello-v0", with_version(0)),
        ("bad-version-hello-next", with_version(PROTOCOL_VERSION + 1)),
        ("oversized-u32-max", header(u32::MAX)),
        ("oversized-limit-plus-one", header(limit + 1)),
        ("limit-exact-header", header(limit)),
        ("truncated-hello-length-prefix", hello[..3].to_vec()),
        (
            "truncated-hello-missing-last-byte",
            hello[..hello.len() - 1].to_vec(),
        ),
        ("truncated-reply-header-only", accepted[..10].to_vec()),
        // Hello body: service length at 10.
        (
            "huge-string-hello-service",
            patch_len(hello.clone(), 10, 2, HUGE_LEN),
        ),
        // Reply body: reply tag, refusal tag, `requested` (8 + 4 bytes), then `available`'s length.
        (
            "huge-vec-reply-unknown-service",
            patch_len(handshake_frame(unknown_service), 30, 2, HUGE_LEN),
        ),
        (
            "malformed-hello-token-tag",
            [&hello[..hello.len() - 1], &[2]].concat(),
        ),
        (
            "malformed-hello-trailing-byte",
            frame(&[&hello[4..], &[0]].concat()),
        ),
        (
            "malformed-reply-unknown-variant",
            frame(
                &[
                    &MAGIC[..],
                    &PROTOCOL_VERSION.to_be_bytes(),
                    &7u32.to_le_bytes(),
                ]
                .concat(),
            ),
        ),
        (
            "garbage-after-valid-hello",
            [&hello[..], b"\x00\x00\x00\x06XXXX\x00\x01"].concat(),
        ),
        ("empty", Vec::new()),
    ]
}

/// Where a request frame holds its deadline's seconds: after the length prefix and the
/// `ClientMessage::Request` tag.
const DEADLINE_SECS: std::ops::Range<usize> = 8..16;

/// The deadline every seed request carries, fixed so that seeds are reproducible.
const DEADLINE: Duration = Duration::from_secs(10);

fn encode_frame<T: Serialize>(message: &T) -> Vec<u8> {
    let mut wire = BytesMut::new();
    WireFormat::new(FrameLimit::new(FUZZ_FRAME_LIMIT).expect("in range"))
        .encode_frame(message, &mut wire)
        .expect("encodes");
    wire.to_vec()
}

/// A request frame with a trace context of zeros and a deadline of exactly [`DEADLINE`] (tarpc
/// encodes the deadline relative to the clock, so the encoder's bytes are patched).
fn request_frame<T: Serialize>(id: u64, message: T) -> Vec<u8> {
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + DEADLINE;
    context.trace_context = tarpc::trace::Context::default();
    let mut wire = encode_frame(&ClientMessage::Request(tarpc::Request {
        context,
        id,
        message,
    }));
    let secs = u64::from_le_bytes(wire[DEADLINE_SECS].try_into().expect("8 bytes"));
    assert!(
        secs.abs_diff(DEADLINE.as_secs()) <= 1,
        "seed layout changed"
    );
    wire[DEADLINE_SECS].copy_from_slice(&DEADLINE.as_secs().to_le_bytes());
    let nanos = DEADLINE_SECS.end..DEADLINE_SECS.end + 4;
    wire[nanos].copy_from_slice(&DEADLINE.subsec_nanos().to_le_bytes());
    wire
}

fn response_frame(request_id: u64, message: Result<KvResponse, ServerError>) -> Vec<u8> {
    encode_frame(&Response {
        request_id,
        message,
    })
}

fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let get = request_frame(
        1,
        KvRequest::Get {
            key: "greeting".into(),
        },
    );
    let set = request_frame(
        2,
        KvRequest::Set {
            key: "greeting".into(),
            value: "hello".into(),
        },
    );
    let echo = request_frame(
        3,
        EchoRequest::Echo {
            bytes: ByteBuf::from(vec![1, 2, 3, 4]),
        },
    );
    let list = response_frame(4, Ok(KvResponse::List(vec!["a".into(), "b".into()])));
    let limit = u32::try_from(FUZZ_FRAME_LIMIT).expect("small limit");
    let header = |len: u32| [&len.to_be_bytes()[..], &get[4..12]].concat();
    // Request body: request tag 4, context 40 (deadline 12, trace 28), id 8, kv tag 4, then `key`.
    let key_len_at = 4 + 4 + 40 + 8 + 4;
    vec![
        ("valid-kv-request-get", get.clone()),
        ("valid-kv-request-set", set.clone()),
        (
            "valid-kv-request-list",
            request_frame(5, KvRequest::List { prefix: "".into() }),
        ),
        (
            "valid-kv-request-cancel",
            encode_frame(&ClientMessage::<KvRequest>::Cancel {
                trace_context: tarpc::trace::Context::default(),
                request_id: 1,
            }),
        ),
        (
            "valid-kv-request-watch",
            request_frame(7, KvRequest::Watch { prefix: "a".into() }),
        ),
        (
            "valid-kv-request-grant",
            encode_frame(&ClientMessage::<KvRequest>::Grant {
                request_id: 7,
                bytes: 256 * 1024,
            }),
        ),
        (
            "valid-kv-request-grant-huge",
            encode_frame(&ClientMessage::<KvRequest>::Grant {
                request_id: u64::MAX,
                bytes: u64::MAX,
            }),
        ),
        (
            "valid-kv-response-watch-item",
            response_frame(
                7,
                Ok(KvResponse::Watch(StreamEvent::Item(KvEvent::Set {
                    key: "a".into(),
                    value: "1".into(),
                }))),
            ),
        ),
        (
            "valid-kv-response-watch-lagged",
            response_frame(7, Ok(KvResponse::Watch(StreamEvent::Lagged { missed: 12 }))),
        ),
        (
            "valid-kv-response-watch-end",
            response_frame(7, Ok(KvResponse::Watch(StreamEvent::End))),
        ),
        ("valid-kv-requests-two-frames", [&get[..], &set].concat()),
        (
            "valid-echo-request-ping",
            request_frame(6, EchoRequest::Ping {}),
        ),
        ("valid-echo-request-echo", echo.clone()),
        (
            "valid-kv-response-get",
            response_frame(1, Ok(KvResponse::Get(Some("hello".into())))),
        ),
        ("valid-kv-response-list", list.clone()),
        (
            "valid-kv-response-set-full",
            response_frame(
                2,
                Ok(KvResponse::Set(Err(KvError::Full { limit: 100_000 }))),
            ),
        ),
        (
            "valid-kv-response-server-error",
            response_frame(
                3,
                Err(ServerError::new(
                    io::ErrorKind::TimedOut,
                    "deadline exceeded".into(),
                )),
            ),
        ),
        ("oversized-u32-max", header(u32::MAX)),
        ("oversized-limit-plus-one", header(limit + 1)),
        ("limit-exact-header", header(limit)),
        ("truncated-length-prefix", get[..2].to_vec()),
        (
            "truncated-kv-request-missing-last-byte",
            get[..get.len() - 1].to_vec(),
        ),
        (
            "huge-string-kv-request-key",
            patch_len(get.clone(), key_len_at, 8, HUGE_LEN),
        ),
        // Echo's `bytes` sits where kv's `key` does.
        (
            "huge-bytes-echo-request",
            patch_len(echo, key_len_at, 4, HUGE_LEN),
        ),
        // Response body: request id 8, result tag 4, kv tag 4, then the list's length.
        (
            "huge-vec-kv-response-list",
            patch_len(list, 4 + 8 + 4 + 4, 2, HUGE_LEN),
        ),
        ("malformed-zero-length-frame", frame(&[])),
        (
            "malformed-unknown-variant",
            frame(&[9, 0, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "malformed-garbage-body",
            frame(&[0xde, 0xad, 0xbe, 0xef].repeat(8)),
        ),
        (
            "garbage-after-valid-kv-request",
            [&get[..], &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]].concat(),
        ),
        ("empty", Vec::new()),
    ]
}

/// A `large_frame` seed: 8 bytes that seed the piece sizes, then the stream.
fn pieces(seed: u64, stream: &[u8]) -> Vec<u8> {
    [&seed.to_le_bytes()[..], stream].concat()
}

/// A request frame under the default limit, for frames over the fuzz limit.
fn large_request_frame<T: Serialize>(id: u64, message: T) -> Vec<u8> {
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + DEADLINE;
    context.trace_context = tarpc::trace::Context::default();
    let mut wire = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_frame(
            &ClientMessage::Request(tarpc::Request {
                context,
                id,
                message,
            }),
            &mut wire,
        )
        .expect("encodes");
    let mut wire = wire.to_vec();
    wire[DEADLINE_SECS].copy_from_slice(&DEADLINE.as_secs().to_le_bytes());
    let nanos = DEADLINE_SECS.end..DEADLINE_SECS.end + 4;
    wire[nanos].copy_from_slice(&DEADLINE.subsec_nanos().to_le_bytes());
    wire
}

/// Bytes that vary, so a field's contents are not all one value.
fn varied(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}

fn large_frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let echo = |id, len, salt| {
        large_request_frame(
            id,
            EchoRequest::Echo {
                bytes: ByteBuf::from(varied(len, salt)),
            },
        )
    };
    let big = echo(1, 40 * 1024, 7);
    let ping = large_request_frame(2, EchoRequest::Ping {});
    let kv_set = large_request_frame(
        3,
        KvRequest::Set {
            key: "k".repeat(33 * 1024),
            value: "v".repeat(34 * 1024),
        },
    );
    let many = response_frame(
        4,
        Ok(KvResponse::List(
            (0..3000).map(|i| format!("key {i}")).collect(),
        )),
    );
    // Request body: request tag 4, context 40, id 8, echo tag 4, then the field's u64 length.
    let field_len_at = 4 + 4 + 40 + 8 + 4;
    let field_len = |frame: &[u8]| {
        u64::from_le_bytes(
            frame[field_len_at..field_len_at + 8]
                .try_into()
                .expect("8 bytes"),
        )
    };
    // A frame that announces almost 16 MiB, its field claiming nearly all of it, cut after
    // 100 bytes: the peer that stalls inside a large field.
    let stalled = {
        let claimed = (16u64 << 20) - 4096;
        let body_len = big.len() as u64 - 4 - field_len(&big) + claimed;
        let mut frame = patch_len(big.clone(), field_len_at, field_len(&big), claimed);
        frame[..4].copy_from_slice(&u32::try_from(body_len).expect("fits").to_be_bytes());
        frame.truncate(100);
        frame
    };
    // The field claims 64 KiB more than its 40 KiB frame holds.
    let field_past_frame = patch_len(big.clone(), field_len_at, field_len(&big), 104 * 1024);
    // Four bytes the message does not use, inside the frame's announced length.
    let left_over = {
        let mut frame = [&big[..], &[0xde, 0xad, 0xbe, 0xef]].concat();
        let body_len = u32::try_from(frame.len() - 4).expect("fits");
        frame[..4].copy_from_slice(&body_len.to_be_bytes());
        frame
    };
    let mut huge_deadline = big.clone();
    huge_deadline[DEADLINE_SECS].copy_from_slice(&u64::MAX.to_le_bytes());
    vec![
        ("valid-echo-request-large-field", pieces(1, &big)),
        (
            "valid-echo-request-large-small-large",
            pieces(
                0x9e37_79b9_7f4a_7c15,
                &[&big[..], &ping, &echo(5, 33 * 1024, 3)].concat(),
            ),
        ),
        ("valid-kv-request-large-strings", pieces(42, &kv_set)),
        ("valid-kv-response-large-many-strings", pieces(7, &many)),
        (
            "truncated-echo-request-large-stalled-in-field",
            pieces(3, &stalled),
        ),
        (
            "truncated-echo-request-large-missing-last-byte",
            pieces(11, &big[..big.len() - 1]),
        ),
        (
            "malformed-echo-request-large-field-past-frame",
            pieces(5, &field_past_frame),
        ),
        (
            "malformed-echo-request-large-left-over",
            pieces(13, &left_over),
        ),
        (
            "malformed-echo-request-large-huge-deadline",
            pieces(17, &huge_deadline),
        ),
        (
            "garbage-after-valid-echo-request-large",
            pieces(
                19,
                &[&big[..], &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]].concat(),
            ),
        ),
        ("empty", Vec::new()),
    ]
}

/// A body as the wire encodes it.
fn body<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = BytesMut::new();
    wire_format()
        .encode_body(value, &mut body)
        .expect("encodes");
    body.to_vec()
}

/// A `schema_json` seed: a schema, a response of method `method` under it, and JSON arguments
/// for that method.
fn schema_seed(schema: &ServiceSchema, method: u8, response: &[u8], json: &str) -> Vec<u8> {
    SchemaJsonInput {
        method,
        ty: method,
        schema: &body(schema),
        response,
        json: json.as_bytes(),
    }
    .join()
}

fn schema_json_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let kv = kv::KvClient::schema().expect("kv traces");
    let echo = echo::EchoClient::schema().expect("echo traces");
    let health = health::HealthClient::schema().expect("health traces");
    let introspect = introspect::IntrospectClient::schema().expect("introspect traces");
    let info = health::ServerInfo {
        version: "0.1.0".into(),
        pid: 4242,
        uptime_ms: 60_000,
        endpoints: vec!["unix:/run/user/1000/rpc.sock".parse().expect("an endpoint")],
        services: vec!["kv".into(), "echo".into()],
        open_connections: 2,
        calls_served: 10,
        calls_cancelled: 1,
        calls_in_progress: 0,
    };
    // A schema that does not decode falls back to the fixed ones, picked by the method selector:
    // 0 picks the first, notes, and its first method, `add`.
    assert_eq!(fixed_schemas()[0].name, "notes");
    let notes = SchemaJsonInput {
        method: 0,
        ty: 0,
        schema: b"not a schema",
        response: &[],
        json: br#"{"note": {
            "id": 7, "title": "t", "tags": ["Pinned", {"Pinned": null}, {"Colour": [1, 2, 3]},
                {"Named": "n"}, {"Due": {"day": 3}}],
            "attachment": [0, 255], "scores": {"01": 0.1, "2": "NaN", "3": "-inf"},
            "links": {"9": "Parent", "10": {"Related": [1, 2]}}, "grid": [[[1, 2], true]],
            "created": [-5, 6], "checksum": [1, 2, 3],
            "big": "-170141183460469231731687303715884105728", "huge": "12",
            "weight": -0.0, "initial": "\u00e9", "reviewed": 3,
            "outline": {"heading": "h", "children": [{"heading": "i", "children": []}]},
            "marker": null}}"#,
    }
    .join();
    vec![
        (
            "valid-kv-get",
            schema_seed(
                &kv,
                0,
                &body(&kv::KvResponse::Get(Some("hello".into()))),
                r#"{"key": "greeting"}"#,
            ),
        ),
        (
            "valid-kv-set-full",
            schema_seed(
                &kv,
                1,
                &body(&kv::KvResponse::Set(Err(kv::KvError::Full {
                    limit: 100_000,
                }))),
                r#"{"key": "k", "value": "v"}"#,
            ),
        ),
        (
            "valid-echo-echo",
            schema_seed(
                &echo,
                1,
                &body(&echo::EchoResponse::Echo(ByteBuf::from(vec![1, 2, 3]))),
                r#"{"bytes": [1, 2, 3]}"#,
            ),
        ),
        (
            "valid-health-info",
            schema_seed(&health, 0, &body(&health::HealthResponse::Info(info)), "{}"),
        ),
        (
            "valid-introspect-describe-kv",
            schema_seed(
                &introspect,
                1,
                &body(&introspect::IntrospectResponse::Describe(Some(kv.clone()))),
                r#"{"service": "kv"}"#,
            ),
        ),
        ("fallback-notes-add-every-convention", notes),
    ]
}

/// Where `valid-echo-request-lane` puts its payload in the region: past the front, and longer
/// than `BIG_FIELD`.
const LANE_ECHO_SLOT: (u64, usize) = (4096, 40 * 1024);

/// What the released frame of `valid-echo-request-lane-released-then-fields` reports.
const LANE_RELEASED_THROUGH: u64 = 123_456;

/// A lane fields frame's first bytes: zero length, kind 1, field count, small bytes' length.
fn lane_header(count: u8, smalls_len: u32) -> Vec<u8> {
    [&[0, 0, 0, 0, 1, count][..], &smalls_len.to_be_bytes()].concat()
}

/// A lane fields frame naming `slots` (position, length), with `smalls` as its small bytes.
fn lane_fields_frame(slots: &[(u64, u64)], smalls: &[u8]) -> Vec<u8> {
    let count = u8::try_from(slots.len()).expect("at most 255 slots");
    let mut frame = lane_header(count, u32::try_from(smalls.len()).expect("small"));
    for (pos, len) in slots {
        frame.extend_from_slice(&pos.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
    }
    frame.extend_from_slice(smalls);
    frame
}

/// A lane released frame: every slot up to `through` copied.
fn lane_released_frame(through: u64) -> Vec<u8> {
    [&[0, 0, 0, 0, 2][..], &through.to_le_bytes()].concat()
}

/// The small bytes of the message in `frame`: its body with the bytes of each of `fields` cut
/// out, in order. Their u64 lengths stay, as bincode wrote them, which is how a lane frame
/// carries a message.
fn cut_fields(frame: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let body = &frame[4..];
    let mut smalls = Vec::new();
    let mut at = 0;
    for field in fields {
        let len = u64::try_from(field.len()).expect("fits");
        let needle = [&len.to_le_bytes()[..], field].concat();
        let start = body[at..]
            .windows(needle.len())
            .position(|window| window == needle)
            .expect("the field is in the body")
            + at
            + 8;
        smalls.extend_from_slice(&body[at..start]);
        at = start + field.len();
    }
    smalls.extend_from_slice(&body[at..]);
    smalls
}

/// A response frame under the default limit, for messages over the fuzz limit.
fn large_response_frame(request_id: u64, message: KvResponse) -> Vec<u8> {
    let mut wire = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_frame(
            &Response {
                request_id,
                message: Ok(message),
            },
            &mut wire,
        )
        .expect("encodes");
    wire.to_vec()
}

fn lane_seeds() -> Vec<(&'static str, Vec<u8>)> {
    const SIZE: u64 = LANE_REGION_SIZE;
    let ascii = b"lane: large fields are copied out of the peer's region once. ".to_vec();
    let not_utf8 = b"caf\xc3 \xff\xfe \xed\xa0\x80".to_vec();
    let region = region_bytes(&ascii);
    let slot = |pos: u64, len: usize| region[(pos % SIZE) as usize..][..len].to_vec();
    let text = |pos: u64, len: usize| String::from_utf8(slot(pos, len)).expect("ascii");
    let input = |descriptors, pattern: &[u8], stream: &[u8]| {
        LaneInput {
            descriptors,
            piece_seed: 7,
            pattern,
            stream,
        }
        .join()
    };
    let once = |stream: &[u8]| input(Descriptors::Once, &ascii, stream);

    // Echo requests: the payload cut out of a real request and left in the region.
    let echo_smalls = |id, payload: &[u8]| {
        let frame = large_request_frame(
            id,
            EchoRequest::Echo {
                bytes: ByteBuf::from(payload.to_vec()),
            },
        );
        cut_fields(&frame, &[payload])
    };
    let echo_at = |id, pos: u64, len: usize| {
        lane_fields_frame(&[(pos, len as u64)], &echo_smalls(id, &slot(pos, len)))
    };
    // A message whose only fault is its slot: small bytes for a payload of `len`.
    let echo_slots = |slots: &[(u64, u64)], len: usize| {
        lane_fields_frame(slots, &echo_smalls(9, &varied(len, 5)))
    };
    let (pos, len) = LANE_ECHO_SLOT;
    let echo = echo_at(1, pos, len);
    let ping = request_frame(2, EchoRequest::Ping {});
    let big = 40 * 1024;

    // Kv responses: string fields, valid UTF-8 only when the region's pattern is.
    let set_value = text(8192, big);
    let set = lane_fields_frame(
        &[(8192, big as u64)],
        &cut_fields(
            &large_response_frame(1, KvResponse::Set(Ok(Some(set_value.clone())))),
            &[set_value.as_bytes()],
        ),
    );
    let (key, value) = (text(0, 33 * 1024), text(33 * 1024, 34 * 1024));
    let event = large_response_frame(
        2,
        KvResponse::Watch(StreamEvent::Item(KvEvent::Set {
            key: key.clone(),
            value: value.clone(),
        })),
    );
    let event_smalls = cut_fields(&event, &[key.as_bytes(), value.as_bytes()]);
    let two_fields = |second: u64| {
        lane_fields_frame(
            &[(0, key.len() as u64), (second, value.len() as u64)],
            &event_smalls,
        )
    };
    // As many fields as a lane frame may name, each `BIG_FIELD` long, one lap of the ring apart.
    let field = text(0, BIG_FIELD);
    let list = large_response_frame(3, KvResponse::List(vec![field.clone(); LANE_MAX_FIELDS]));
    let most_slots: Vec<(u64, u64)> = (0..LANE_MAX_FIELDS as u64)
        .map(|lap| (lap * SIZE, BIG_FIELD as u64))
        .collect();
    let most_fields = lane_fields_frame(
        &most_slots,
        &cut_fields(&list, &vec![field.as_bytes(); LANE_MAX_FIELDS]),
    );
    let mut too_many_fields = most_fields.clone();
    too_many_fields[5] = LANE_MAX_FIELDS as u8 + 1;

    // Slots of the whole region, one per lap, filling the frame limit exactly.
    let limit = FrameLimit::default().bytes() as u64;
    let whole_region_slots: Vec<(u64, u64)> =
        (0..limit / SIZE).map(|lap| (lap * SIZE, SIZE)).collect();
    assert!(
        whole_region_slots.len() <= LANE_MAX_FIELDS,
        "seed layout changed"
    );

    vec![
        ("valid-echo-request-lane", once(&echo)),
        (
            "valid-echo-request-lane-then-socket-then-next-lap",
            once(&[&echo[..], &ping, &echo_at(3, SIZE + 64, 50_000)].concat()),
        ),
        (
            "valid-echo-request-lane-released-then-fields",
            once(&[&lane_released_frame(LANE_RELEASED_THROUGH)[..], &echo].concat()),
        ),
        (
            "valid-echo-request-lane-descriptor-offered-twice",
            input(Descriptors::Twice, &ascii, &echo),
        ),
        (
            "valid-echo-request-lane-slot-exactly-big-field",
            once(&echo_at(4, 0, BIG_FIELD)),
        ),
        ("valid-kv-response-lane-set-replaced", once(&set)),
        (
            "valid-kv-response-lane-two-fields-back-to-back",
            once(&two_fields(key.len() as u64)),
        ),
        ("valid-kv-response-lane-64-fields", once(&most_fields)),
        (
            "malformed-kv-response-lane-invalid-utf8",
            input(Descriptors::Once, &not_utf8, &set),
        ),
        (
            "malformed-kv-response-lane-65-fields",
            once(&too_many_fields),
        ),
        (
            "malformed-echo-request-lane-off-zero-length-frame",
            input(Descriptors::LaneOff, &ascii, &echo),
        ),
        (
            "malformed-echo-request-lane-slot-under-big-field",
            once(&echo_at(5, 0, BIG_FIELD - 1)),
        ),
        (
            "malformed-echo-request-lane-slot-length-differs",
            once(&lane_fields_frame(
                &[(0, 48 * 1024)],
                &echo_smalls(6, &slot(0, big)),
            )),
        ),
        (
            "malformed-echo-request-lane-slot-left-unused",
            once(&lane_fields_frame(
                &[(0, big as u64), (64 * 1024, big as u64)],
                &echo_smalls(7, &slot(0, big)),
            )),
        ),
        ("malformed-lane-no-fields", once(&lane_header(0, 0))),
        (
            "malformed-lane-too-many-small-bytes",
            once(&lane_header(1, LANE_MAX_SMALLS as u32 + 1)),
        ),
        ("malformed-lane-unknown-kind", once(&[0, 0, 0, 0, 3])),
        (
            "malformed-lane-whole-frame-limit-of-slots-no-message",
            once(&lane_fields_frame(&whole_region_slots, &[])),
        ),
        (
            "oversized-lane-slots-past-frame-limit",
            once(&lane_fields_frame(&whole_region_slots, &[0])),
        ),
        (
            "refused-echo-request-lane-no-descriptor",
            input(Descriptors::None, &ascii, &echo),
        ),
        (
            "refused-echo-request-lane-slot-bigger-than-region",
            once(&echo_slots(&[(0, SIZE + 64)], SIZE as usize + 64)),
        ),
        (
            "refused-echo-request-lane-slot-wraps-region-end",
            once(&echo_slots(&[(4 * SIZE - 16 * 1024, big as u64)], big)),
        ),
        (
            "refused-echo-request-lane-slot-position-overflows",
            once(&echo_slots(&[(u64::MAX - SIZE + 1, SIZE)], SIZE as usize)),
        ),
        (
            "refused-kv-response-lane-slots-overlap",
            once(&two_fields(16 * 1024)),
        ),
        (
            "one-then-refused-echo-request-lane-slot-goes-back",
            once(&[&echo_at(1, 64 * 1024, big)[..], &echo_at(2, 0, big)].concat()),
        ),
        (
            "limit-exact-lane-small-bytes",
            once(&[&lane_header(1, LANE_MAX_SMALLS as u32)[..], &[0; 16]].concat()),
        ),
        (
            "truncated-echo-request-lane-missing-last-byte",
            once(&echo[..echo.len() - 1]),
        ),
        ("truncated-lane-inside-slots", once(&echo[..20])),
    ]
}
