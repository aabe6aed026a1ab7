//! [`ResponseSeed`] against `Response<T>`'s derived `Deserialize`: the same bytes give the same
//! value or the same error, in bincode (the wire) and in JSON (a self-describing format, where
//! fields come by name and may repeat, be missing or be unknown).

use std::io;
use std::marker::PhantomData;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::*;
use crate::services::kv::KvResponse;
use crate::wire::{FrameLimit, WireFormat};

/// A response body with a byte field, a string and an enum, as a service's might have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Answer {
    Empty,
    Payload { id: u64, bytes: ByteBuf },
    Note(String),
}

fn format() -> WireFormat {
    WireFormat::new(FrameLimit::default())
}

fn body<T: Serialize>(value: &T) -> BytesMut {
    let mut body = BytesMut::new();
    format().encode_body(value, &mut body).expect("encodes");
    body
}

/// `body` decoded by the derive and by the seed: both results, errors as text.
fn both<T>(body: &[u8]) -> (Result<Response<T>, String>, Result<Response<T>, String>)
where
    T: serde::de::DeserializeOwned,
{
    let derived = format()
        .decode::<Response<T>>(body)
        .map_err(|err| crate::error_chain(&err));
    let seeded = format()
        .decode_seed(body, ResponseSeed::new(PhantomData::<T>))
        .map_err(|err| crate::error_chain(&err));
    (derived, seeded)
}

fn responses() -> Vec<Response<Answer>> {
    let mut all = vec![
        Response {
            request_id: 0,
            message: Ok(Answer::Empty),
        },
        Response {
            request_id: u64::MAX,
            message: Ok(Answer::Payload {
                id: 7,
                bytes: ByteBuf::from(vec![3u8; 100_000]),
            }),
        },
        Response {
            request_id: 42,
            message: Ok(Answer::Note("hello".to_owned())),
        },
    ];
    // Every kind tarpc maps to a number, and one it does not (sent as `Other`).
    let kinds = [
        io::ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied,
        io::ErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::NotConnected,
        io::ErrorKind::AddrInUse,
        io::ErrorKind::AddrNotAvailable,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::AlreadyExists,
        io::ErrorKind::WouldBlock,
        io::ErrorKind::InvalidInput,
        io::ErrorKind::InvalidData,
        io::ErrorKind::TimedOut,
        io::ErrorKind::WriteZero,
        io::ErrorKind::Interrupted,
        io::ErrorKind::Other,
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::Unsupported,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        all.push(Response {
            request_id: i as u64,
            message: Err(ServerError::new(kind, format!("failed {i}"))),
        });
    }
    all
}

#[test]
fn real_responses_decode_through_the_seed_as_through_the_derive() {
    for response in responses() {
        let (derived, seeded) = both::<Answer>(&body(&response));
        let derived = derived.expect("the derive decodes it");
        assert_eq!(seeded, Ok(derived.clone()), "{response:?}");
        if response.message.is_ok() {
            assert_eq!(derived, response);
        }
    }
    // A generated service's response enum, as `Channel` decodes it.
    let kv = Response {
        request_id: 5,
        message: Ok(KvResponse::List(vec!["a".to_owned(), "b".to_owned()])),
    };
    let (derived, seeded) = both::<KvResponse>(&body(&kv));
    // `KvResponse` has no `PartialEq`: compare what they print.
    let derived = format!("{:?}", derived.expect("the derive decodes it"));
    assert_eq!(derived, format!("{kv:?}"));
    assert_eq!(
        format!("{:?}", seeded.expect("the seed decodes it")),
        derived
    );
}

#[test]
fn broken_bodies_fail_through_the_seed_with_the_derives_error() {
    let mut bodies = Vec::new();
    for response in responses().into_iter().take(4) {
        let whole = body(&response);
        // Every cut of the body, and the body with a byte too many.
        for cut in 0..whole.len().min(64) {
            bodies.push(whole[..cut].to_vec());
        }
        let mut longer = whole.to_vec();
        longer.push(0);
        bodies.push(longer);
    }
    // `Result` variant 2, and an `Err` whose kind is past tarpc's table (decoded as `Other`).
    let mut bad_variant = body(&responses()[0]).to_vec();
    bad_variant[8..12].copy_from_slice(&2u32.to_le_bytes());
    bodies.push(bad_variant);
    let mut odd_kind = body(&responses()[3]).to_vec();
    odd_kind[12..16].copy_from_slice(&999u32.to_le_bytes());
    bodies.push(odd_kind);
    for bytes in bodies {
        let (derived, seeded) = both::<Answer>(&bytes);
        assert_eq!(seeded, derived, "{bytes:?}");
    }
}

#[test]
fn json_responses_decode_through_the_seed_as_through_the_derive() {
    let texts = [
        r#"{"request_id":1,"message":{"Ok":"Empty"}}"#,
        r#"{"message":{"Ok":{"Note":"hi"}},"request_id":2}"#,
        r#"{"request_id":3,"message":{"Err":{"kind":13,"detail":"slow"}}}"#,
        r#"{"request_id":4,"extra":[1,2],"message":{"Ok":"Empty"}}"#,
        r#"[5,{"Ok":"Empty"}]"#,
        r#"[5]"#,
        r#"{"request_id":6}"#,
        r#"{"message":{"Ok":"Empty"}}"#,
        r#"{"request_id":7,"request_id":8,"message":{"Ok":"Empty"}}"#,
        r#"{"request_id":9,"message":{"Ok":"Empty"},"message":{"Ok":"Empty"}}"#,
        r#"{"request_id":10,"message":{"Maybe":"Empty"}}"#,
        r#"{"request_id":11,"message":"Ok"}"#,
        r#"7"#,
    ];
    for text in texts {
        let derived = serde_json::from_str::<Response<Answer>>(text).map_err(|e| e.to_string());
        let mut json = serde_json::Deserializer::from_str(text);
        let seeded = ResponseSeed::new(PhantomData::<Answer>)
            .deserialize(&mut json)
            .and_then(|response| json.end().map(|()| response))
            .map_err(|e| e.to_string());
        assert_eq!(seeded, derived, "{text}");
    }
}
