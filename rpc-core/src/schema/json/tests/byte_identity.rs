//! JSON built from a derived value (`serde_json::to_value`) encodes to exactly the derived
//! value's bytes, and those bytes read back to the same JSON.

use std::collections::BTreeMap;

use serde_bytes::ByteBuf;
use serde_json::{Value, json};

use super::notes::*;
use super::*;
use crate::schema::{JsonRequestSeed, JsonResponseSeed};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }

    fn text(&mut self) -> String {
        match self.below(9) {
            0 => String::new(),
            1 => "x".repeat(300),
            2 => format!("n{}", self.next()),
            n => [
                "a",
                "grüße",
                "日本語 🦀",
                "\u{1b}[2J\n",
                "quote\" back\\slash",
                "\u{202e}",
            ][n as usize - 3]
                .to_owned(),
        }
    }

    /// Integers of every size, edges included.
    fn wide(&mut self) -> i128 {
        match self.below(6) {
            0 => i128::MIN,
            1 => i128::MAX,
            2 => self.next() as i64 as i128,
            _ => ((self.next() as i128) << 64 | self.next() as i128) >> self.below(127),
        }
    }
}

fn note(rng: &mut Rng) -> Note {
    Note {
        id: rng.next(),
        title: rng.text(),
        body: rng.text(),
        tags: (0..rng.below(4)).map(|_| rng.text()).collect(),
    }
}

fn filter(rng: &mut Rng) -> Filter {
    match rng.below(3) {
        0 => Filter::Tag(rng.text()),
        1 => Filter::Since { id: rng.next() },
        _ => Filter::All,
    }
}

fn everything(rng: &mut Rng) -> Everything {
    let len = rng.pick(&[0, 1, 3, 1000]);
    let wide = rng.wide().unsigned_abs();
    let odd = rng.next() as f64 / 7.0;
    Everything {
        bytes: ByteBuf::from((0..len).map(|_| rng.next() as u8).collect::<Vec<_>>()),
        by_name: (0..rng.below(4))
            .map(|_| (rng.text(), rng.next() as u32))
            .collect(),
        // Small and large keys, so that the string order ("10" < "9") and the numeric one differ.
        by_id: (0..rng.below(6))
            .map(|_| (rng.next() >> (rng.below(8) * 8), rng.text()))
            .collect(),
        by_note: (0..rng.below(4))
            .map(|_| (NoteId(rng.below(20)), rng.below(2) == 0))
            .collect(),
        pair: (rng.next() as u8, rng.text()),
        rgb: [rng.next() as u8, rng.next() as u8, rng.next() as u8],
        big: rng.wide(),
        huge: rng.pick(&[0, u128::MAX, wide]),
        letter: rng.pick(&['a', 'é', '日', '🦀', '\0', '"']),
        // Floats whose `f64` widening prints as the `f32` does: others are read back as their
        // shortest decimal (see `f32_is_read_as_its_shortest_decimal_and_written_back_exactly`).
        ratio: rng.pick(&[0.0, -0.5, 1.25, 0.375, 16_777_216.0, -1024.5]),
        precise: rng.pick(&[0.0, 0.1, -1e300, f64::MAX, f64::MIN_POSITIVE, odd]),
        flag: rng.below(2) == 0,
        // `Some(None)` is `null` in JSON, which reads as `None`: see the hostile tests.
        maybe: rng.pick(&[None, Some(Some(0)), Some(Some(255))]),
        marker: Marker,
        id: NoteId(rng.next()),
        point: Point(rng.next() as i16, rng.next() as i64),
        small: (
            rng.next() as i8,
            rng.next() as i16,
            rng.next() as i32,
            rng.next() as i64,
            rng.next() as u16,
            rng.next() as u32,
        ),
        nothing: (),
        filters: (0..rng.below(4)).map(|_| filter(rng)).collect(),
    }
}

/// A 128-bit integer in JSON: a number if it fits 64 bits, else a decimal string.
fn wide_json(n: i128) -> Value {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(n), _) => n.into(),
        (_, Ok(n)) => n.into(),
        _ => n.to_string().into(),
    }
}

/// `serde_json::to_value(all)`, except that it refuses integers beyond 64 bits: those are strings.
fn everything_json(all: &Everything) -> Value {
    let mut plain = all.clone();
    plain.big = 0;
    plain.huge = 0;
    let mut json = serde_json::to_value(&plain).expect("to JSON");
    json["big"] = wide_json(all.big);
    json["huge"] = match u64::try_from(all.huge) {
        Ok(n) => n.into(),
        Err(_) => all.huge.to_string().into(),
    };
    json
}

/// The method a request calls and its arguments, as `rpc-client call` would be given them.
fn call_of(request: &NotesRequest) -> (String, Value) {
    if let NotesRequest::Echo { all, outcome } = request {
        let outcome = serde_json::to_value(outcome).expect("to JSON");
        return (
            "echo".into(),
            json!({ "all": everything_json(all), "outcome": outcome }),
        );
    }
    let Value::Object(variant) = serde_json::to_value(request).expect("to JSON") else {
        panic!("a struct variant is an object");
    };
    let (name, args) = variant.into_iter().next().expect("one key");
    (name.to_lowercase(), args)
}

fn requests() -> Vec<NotesRequest> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut requests = vec![
        NotesRequest::Add {
            title: "t".into(),
            body: "b".into(),
        },
        NotesRequest::List { filter: None },
        NotesRequest::List {
            filter: Some(Filter::All),
        },
        NotesRequest::List {
            filter: Some(Filter::Since { id: u64::MAX }),
        },
        NotesRequest::Get { id: 0 },
        NotesRequest::Get { id: u64::MAX },
        NotesRequest::Ping {},
    ];
    for i in 0..200 {
        requests.push(match i % 5 {
            0 => NotesRequest::Add {
                title: rng.text(),
                body: rng.text(),
            },
            1 => NotesRequest::List {
                filter: Some(filter(&mut rng)),
            },
            2 => NotesRequest::Update {
                note: note(&mut rng),
            },
            _ => NotesRequest::Echo {
                all: everything(&mut rng),
                outcome: if rng.below(2) == 0 {
                    Ok(())
                } else {
                    Err(rng.text())
                },
            },
        });
    }
    requests
}

#[test]
fn json_requests_encode_exactly_as_the_derived_request_enum() {
    let schema = notes();
    for request in requests() {
        let (method, args) = call_of(&request);
        let built = schema
            .request_from_json(&method, &args)
            .unwrap_or_else(|err| panic!("{method} {args}: {err}"));
        assert_eq!(wire(&built), wire(&request), "{method} {args}");
        assert_eq!(tarpc::RequestName::name(&built), method);
    }
}

#[test]
fn derived_requests_read_back_to_their_json() {
    let seed = JsonRequestSeed {
        schema: Arc::new(notes()),
    };
    for request in requests() {
        let (method, args) = call_of(&request);
        let call = read(seed.clone(), &wire(&request)).expect("reads");
        assert_eq!(seed.schema.methods[call.method as usize].name, method);
        assert_eq!(call.args, args);
    }
}

#[test]
fn missing_option_arguments_and_null_arguments_are_none() {
    let schema = notes();
    let none = wire(&NotesRequest::List { filter: None });
    for args in [json!({}), Value::Null, json!({ "filter": null })] {
        let built = schema.request_from_json("list", &args).expect("builds");
        assert_eq!(wire(&built), none, "{args}");
    }
    let ping = schema
        .request_from_json("ping", &Value::Null)
        .expect("builds");
    assert_eq!(wire(&ping), wire(&NotesRequest::Ping {}));
}

/// The variant index and the JSON the derived response's result should read back as.
fn expected(response: &NotesResponse) -> (u32, Value) {
    let (index, value) = match response {
        NotesResponse::Add(v) => (0, serde_json::to_value(v)),
        NotesResponse::List(v) => (1, serde_json::to_value(v)),
        NotesResponse::Get(v) => (2, serde_json::to_value(v)),
        NotesResponse::Update(v) => (3, serde_json::to_value(v)),
        NotesResponse::Echo(all) => return (4, everything_json(all)),
        NotesResponse::Ping(v) => (5, serde_json::to_value(v)),
    };
    (index, value.expect("to JSON"))
}

#[test]
fn derived_responses_read_back_as_serde_json_writes_them() {
    let seed = JsonResponseSeed {
        schema: Arc::new(notes()),
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut responses = vec![
        NotesResponse::List(vec![]),
        NotesResponse::Get(Err(NotesError::Locked)),
        NotesResponse::Get(Err(NotesError::NotFound { id: 7 })),
        NotesResponse::Update(()),
        NotesResponse::Ping(()),
    ];
    for i in 0..200 {
        responses.push(match i % 4 {
            0 => NotesResponse::Add(note(&mut rng)),
            1 => NotesResponse::List((0..rng.below(4)).map(|_| note(&mut rng)).collect()),
            2 => NotesResponse::Get(Ok(note(&mut rng))),
            _ => NotesResponse::Echo(everything(&mut rng)),
        });
    }
    for response in responses {
        let (method, value) = expected(&response);
        let read = read(seed.clone(), &wire(&response)).expect("reads");
        assert_eq!(read.method, method);
        assert_eq!(read.value, value, "{response:?}");
    }
}

#[test]
fn maps_with_integer_keys_go_out_in_numeric_order() {
    let schema = service(
        vec![(
            "m",
            Type::Map {
                key: Box::new(Type::I32),
                value: Box::new(Type::Unit),
            },
        )],
        Type::Unit,
        vec![],
    );
    let args = json!({ "m": { "10": null, "9": null, "-1": null, "+2": null } });
    let built = schema.request_from_json("m", &args).expect("builds");
    let derived: BTreeMap<i32, ()> = [(10, ()), (9, ()), (-1, ()), (2, ())].into();
    let mut expected = vec![0, 0, 0, 0];
    expected.extend(wire(&derived));
    assert_eq!(wire(&built), expected);
}

#[test]
fn maps_whose_keys_are_not_strings_are_arrays_of_pairs() {
    let pair_key = Type::Tuple(vec![Type::U8, Type::U8]);
    let schema = service(
        vec![(
            "m",
            Type::Map {
                key: Box::new(pair_key.clone()),
                value: Box::new(Type::Str),
            },
        )],
        Type::Map {
            key: Box::new(pair_key),
            value: Box::new(Type::Str),
        },
        vec![],
    );
    let args = json!({ "m": [[[1, 2], "a"], [[0, 0], "b"]] });
    let built = schema.request_from_json("m", &args).expect("builds");
    // Sent in the order given.
    let derived: Vec<((u8, u8), String)> = vec![((1, 2), "a".into()), ((0, 0), "b".into())];
    let mut expected = vec![0, 0, 0, 0];
    expected.extend(wire(&derived));
    assert_eq!(wire(&built), expected);

    let seed = JsonResponseSeed { schema };
    let response = read(seed, &expected).expect("reads");
    assert_eq!(response.value, args["m"]);
}
