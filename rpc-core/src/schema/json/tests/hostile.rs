//! Bytes from a hostile peer (and JSON from a careless user): depth, claimed lengths, indices,
//! and the documented differences from serde_json.

use serde_json::{Value, json};

use super::notes::*;
use super::*;
use crate::schema::{
    JsonError, JsonResponseSeed, MAX_JSON_DEPTH, MAX_ZERO_SIZED_ITEMS, Shape, TypeSeed, Variant,
};

/// `Vec<Vec<...<u8>>>`: `levels` levels in all, counting the `u8`.
fn nested_seqs(levels: u32) -> Type {
    (1..levels).fold(Type::U8, |inner, _| Type::Seq(Box::new(inner)))
}

/// A value of [`nested_seqs`] holding one `5`, as bytes: a length of 1 per `Vec`, then the `u8`.
fn nested_seq_bytes(levels: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = std::iter::repeat_n(1u64.to_le_bytes(), levels as usize - 1)
        .flatten()
        .collect();
    bytes.push(5);
    bytes
}

fn nested_json(levels: u32) -> Value {
    (1..levels).fold(json!(5), |inner, _| json!([inner]))
}

fn read_type(schema: &ServiceSchema, ty: &Type, bytes: &[u8]) -> bincode::Result<Value> {
    read(TypeSeed { schema, ty }, bytes)
}

#[test]
fn values_nest_up_to_the_depth_limit_either_way() {
    let schema = service(vec![], Type::Unit, vec![]);
    for levels in [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH] {
        let ty = nested_seqs(levels);
        let value = read_type(&schema, &ty, &nested_seq_bytes(levels)).expect("deep enough");
        assert_eq!(value, nested_json(levels));
        let schema = service(vec![("v", ty)], Type::Unit, vec![]);
        let built = schema
            .request_from_json("m", &json!({ "v": value }))
            .expect("deep enough");
        assert_eq!(wire(&built)[4..], nested_seq_bytes(levels));
    }
    let levels = MAX_JSON_DEPTH + 1;
    let ty = nested_seqs(levels);
    let err = read_type(&schema, &ty, &nested_seq_bytes(levels)).expect_err("too deep");
    assert!(
        err.to_string().contains("nests deeper than 128 levels"),
        "{err}"
    );
    let schema = service(vec![("v", ty)], Type::Unit, vec![]);
    let err = schema
        .request_from_json("m", &json!({ "v": nested_json(levels) }))
        .expect_err("too deep");
    assert!(matches!(err, JsonError::TooDeep { .. }), "{err}");
    assert!(err.to_string().starts_with("argument `v[0][0]"), "{err}");
}

/// `struct Chain { next: Option<Chain> }`.
fn chain() -> Arc<ServiceSchema> {
    let next = Type::Option(Box::new(Type::Named("Chain".into())));
    let chain = TypeDef::Struct(Shape::Struct(vec![Field {
        name: "next".into(),
        ty: next,
    }]));
    service(
        vec![("c", Type::Named("Chain".into()))],
        Type::Named("Chain".into()),
        vec![("Chain", chain)],
    )
}

#[test]
fn a_recursive_type_with_a_million_levels_of_bytes_fails_without_overflowing_the_stack() {
    let schema = chain();
    let mut bytes = vec![0, 0, 0, 0];
    bytes.extend(std::iter::repeat_n(1u8, 1_000_000));
    let err = read(
        JsonResponseSeed {
            schema: schema.clone(),
        },
        &bytes,
    )
    .expect_err("too deep");
    assert!(err.to_string().contains("nests deeper"), "{err}");

    // A short chain reads, as nested objects.
    let response = read(JsonResponseSeed { schema }, &[0, 0, 0, 0, 1, 0]).expect("reads");
    assert_eq!(response.value, json!({ "next": { "next": null } }));
}

#[test]
fn a_newtype_that_wraps_itself_fails_instead_of_recursing_forever() {
    let schema = service(
        vec![("l", Type::Named("Loop".into()))],
        Type::Named("Loop".into()),
        vec![(
            "Loop",
            TypeDef::Struct(Shape::Newtype(Type::Named("Loop".into()))),
        )],
    );
    let err = read(
        JsonResponseSeed {
            schema: schema.clone(),
        },
        &[0, 0, 0, 0],
    )
    .expect_err("loops");
    assert!(err.to_string().contains("nests deeper"), "{err}");
    let err = schema
        .request_from_json("m", &json!({ "l": 1 }))
        .expect_err("loops");
    assert!(matches!(err, JsonError::TooDeep { .. }), "{err}");
    // Describing it in an error, or as a map key, terminates too.
    let schema = service(
        vec![(
            "m",
            Type::Map {
                key: Box::new(Type::Named("Loop".into())),
                value: Box::new(Type::Unit),
            },
        )],
        Type::Unit,
        vec![(
            "Loop",
            TypeDef::Struct(Shape::Newtype(Type::Named("Loop".into()))),
        )],
    );
    schema
        .request_from_json("m", &json!({ "m": 1 }))
        .expect_err("not a map");
}

#[test]
fn out_of_range_method_and_variant_indices_are_errors() {
    let seed = JsonResponseSeed {
        schema: Arc::new(notes()),
    };
    let err = read(seed.clone(), &[6, 0, 0, 0]).expect_err("no method 6");
    assert!(
        err.to_string()
            .contains("method index 6 is out of range: notes has 6 methods"),
        "{err}"
    );
    let err = read(seed.clone(), &u32::MAX.to_le_bytes()).expect_err("no such method");
    assert!(err.to_string().contains("out of range"), "{err}");

    // `get` (2) returning `Err` (1) with `NotesError` variant 2, which does not exist.
    let err = read(seed.clone(), &[2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]).expect_err("no variant 2");
    assert!(
        err.to_string()
            .contains("variant index 2 is out of range for NotesError (2 variants)"),
        "{err}"
    );
    // A `Result` with variant 2.
    let err = read(seed.clone(), &[2, 0, 0, 0, 2, 0, 0, 0]).expect_err("no variant 2");
    assert!(
        err.to_string()
            .contains("out of range for Result<Note, NotesError>"),
        "{err}"
    );
    // `Err(Locked)` reads.
    let locked = read(seed, &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]).expect("reads");
    assert_eq!(locked.value, json!({ "Err": "Locked" }));

    // A variant index the schema skips (its variants need not be numbered densely).
    let sparse = TypeDef::Enum(vec![Variant {
        index: 3,
        name: "Three".into(),
        shape: Shape::Unit,
    }]);
    let schema = service(vec![], Type::Named("E".into()), vec![("E", sparse)]);
    let seed = JsonResponseSeed { schema };
    assert_eq!(
        read(seed.clone(), &[0, 0, 0, 0, 3, 0, 0, 0])
            .expect("reads")
            .value,
        json!("Three")
    );
    read(seed, &[0, 0, 0, 0, 0, 0, 0, 0]).expect_err("no variant 0");
}

#[test]
fn a_claimed_length_reserves_nothing_it_is_not_given() {
    let schema = service(vec![], Type::Unit, vec![]);
    let claim = (1u64 << 60).to_le_bytes();
    for ty in [
        Type::Seq(Box::new(Type::Str)),
        Type::Str,
        Type::Bytes,
        Type::Map {
            key: Box::new(Type::U8),
            value: Box::new(Type::U8),
        },
        Type::Array {
            item: Box::new(Type::U64),
            len: 1 << 60,
        },
    ] {
        read_type(&schema, &ty, &claim).expect_err("the bytes run out");
    }
}

#[test]
fn items_that_take_no_bytes_are_limited() {
    let marker = TypeDef::Struct(Shape::Unit);
    let empty = TypeDef::Struct(Shape::Struct(vec![
        Field {
            name: "a".into(),
            ty: Type::Unit,
        },
        Field {
            name: "b".into(),
            ty: Type::Array {
                item: Box::new(Type::Named("Marker".into())),
                len: 9,
            },
        },
    ]));
    let schema = service(
        vec![],
        Type::Unit,
        vec![("Marker", marker), ("Empty", empty)],
    );
    for item in [
        Type::Unit,
        Type::Named("Marker".into()),
        Type::Named("Empty".into()),
        Type::Tuple(vec![]),
        Type::Array {
            item: Box::new(Type::U8),
            len: 0,
        },
    ] {
        let seq = Type::Seq(Box::new(item.clone()));
        // An `Empty` is 12 values that take no bytes (itself, its `a`, its array of 9): the
        // limit counts them all, so fewer `Empty`s fit.
        let each = if item == Type::Named("Empty".into()) {
            12
        } else {
            1
        };
        for count in [MAX_ZERO_SIZED_ITEMS / each - 1, MAX_ZERO_SIZED_ITEMS / each] {
            let value =
                read_type(&schema, &seq, &(count as u64).to_le_bytes()).expect("at the limit");
            assert_eq!(value.as_array().map(Vec::len), Some(count));
        }
        for count in [MAX_ZERO_SIZED_ITEMS as u64 + 1, u64::MAX] {
            let err = read_type(&schema, &seq, &count.to_le_bytes()).expect_err("past the limit");
            assert!(
                err.to_string().contains("items that take no bytes"),
                "{item}: {err}"
            );
        }
        let array = Type::Array {
            item: Box::new(item.clone()),
            len: u64::MAX,
        };
        read_type(&schema, &array, &[]).expect_err("past the limit");
        let map = Type::Map {
            key: Box::new(item.clone()),
            value: Box::new(item),
        };
        read_type(&schema, &map, &u64::MAX.to_le_bytes()).expect_err("past the limit");
    }
    // The limit is per message, not per sequence: a sequence of sequences of `()` at 8 bytes
    // each cannot make 65,536 values per 8 bytes.
    let nested = Type::Seq(Box::new(Type::Seq(Box::new(Type::Unit))));
    let mut bytes = 100u64.to_le_bytes().to_vec();
    for _ in 0..100 {
        bytes.extend((MAX_ZERO_SIZED_ITEMS as u64).to_le_bytes());
    }
    let err = read_type(&schema, &nested, &bytes).expect_err("100 x 65,536 values");
    assert!(
        err.to_string().contains("values that take no bytes"),
        "{err}"
    );
    // Items that take bytes are not limited by count, only by the bytes.
    let seq = Type::Seq(Box::new(Type::Bool));
    let mut bytes = (MAX_ZERO_SIZED_ITEMS as u64 + 1).to_le_bytes().to_vec();
    bytes.resize(bytes.len() + MAX_ZERO_SIZED_ITEMS + 1, 1);
    read_type(&schema, &seq, &bytes).expect("as many as the bytes hold");
}

#[test]
fn floats_that_json_numbers_cannot_hold_are_strings_both_ways() {
    let schema = service(vec![("x", Type::F64), ("y", Type::F32)], Type::F64, vec![]);
    for (value, text) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let built = schema
            .request_from_json("m", &json!({ "x": text, "y": text }))
            .expect("builds");
        let bytes = wire(&built);
        assert_eq!(bytes[4..12], value.to_le_bytes());
        assert_eq!(bytes[12..], (value as f32).to_le_bytes());
        let response = read(
            JsonResponseSeed {
                schema: schema.clone(),
            },
            &bytes[..12],
        )
        .expect("reads");
        assert_eq!(response.value, json!(text));
    }
}

#[test]
fn f32_is_read_as_its_shortest_decimal_and_written_back_exactly() {
    let schema = service(vec![("x", Type::F32)], Type::F32, vec![]);
    let seed = JsonResponseSeed {
        schema: schema.clone(),
    };
    let mut bits = 0x1234_5678u32;
    let samples = (0..20_000).map(|_| {
        bits ^= bits << 13;
        bits ^= bits >> 17;
        bits ^= bits << 5;
        f32::from_bits(bits)
    });
    for value in samples.chain([0.1, f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0]) {
        if !value.is_finite() {
            continue;
        }
        let mut bytes = vec![0, 0, 0, 0];
        bytes.extend(value.to_le_bytes());
        let read = read(seed.clone(), &bytes).expect("reads").value;
        let built = schema
            .request_from_json("m", &json!({ "x": read }))
            .expect("builds");
        assert_eq!(wire(&built), bytes, "{value:e} read as {read}");
    }
    let mut bytes = vec![0, 0, 0, 0];
    bytes.extend(0.1f32.to_le_bytes());
    assert_eq!(read(seed, &bytes).expect("reads").value.to_string(), "0.1");
}

#[test]
fn some_none_is_null_and_reads_back_as_none() {
    let ty = Type::Option(Box::new(Type::Option(Box::new(Type::U8))));
    let schema = service(vec![("x", ty.clone())], ty, vec![]);
    let some_none: Option<Option<u8>> = Some(None);
    assert_eq!(
        serde_json::to_value(some_none).expect("to JSON"),
        Value::Null
    );
    let response = read(
        JsonResponseSeed {
            schema: schema.clone(),
        },
        &[0, 0, 0, 0, 1, 0],
    );
    assert_eq!(response.expect("reads").value, Value::Null);
    // JSON has one null: it is the outer `None`.
    let built = schema
        .request_from_json("m", &json!({ "x": null }))
        .expect("builds");
    assert_eq!(wire(&built), [0, 0, 0, 0, 0]);
    let built = schema
        .request_from_json("m", &json!({ "x": 7 }))
        .expect("builds");
    assert_eq!(wire(&built), [0, 0, 0, 0, 1, 1, 7]);
}

#[test]
fn values_at_the_depth_limit_fit_half_a_threads_stack_either_way() {
    // `enum Tree { Leaf, Node { kids: Vec<Tree> } }`, two levels per node (the enum and the
    // `Vec`), through the heaviest path: an enum's struct variant.
    let kids = Type::Seq(Box::new(Type::Named("Tree".into())));
    let tree = TypeDef::Enum(vec![
        Variant {
            index: 0,
            name: "Leaf".into(),
            shape: Shape::Unit,
        },
        Variant {
            index: 1,
            name: "Node".into(),
            shape: Shape::Struct(vec![Field {
                name: "kids".into(),
                ty: kids,
            }]),
        },
    ]);
    let tree_type = Type::Named("Tree".into());
    let schema = service(
        vec![("t", tree_type.clone())],
        tree_type,
        vec![("Tree", tree)],
    );
    let mut bytes = vec![0, 0, 0, 0];
    for _ in 0..MAX_JSON_DEPTH {
        bytes.extend([1, 0, 0, 0]);
        bytes.extend(1u64.to_le_bytes());
    }
    // The deepest tree JSON arguments may hold: a leaf under 63 nodes, each two levels.
    let deepest = (1..MAX_JSON_DEPTH / 2).fold(
        json!("Leaf"),
        |tree, _| json!({ "Node": { "kids": [tree] } }),
    );
    // Half the 2 MiB that std and tokio give a thread, in a debug build (an optimized one needs
    // far less).
    let worker = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let built = schema.request_from_json("m", &json!({ "t": deepest }));
            let encoded = built.map(|request| wire(&request).len());
            (
                encoded,
                read(JsonResponseSeed { schema }, &bytes).map(|_| ()),
            )
        })
        .expect("spawns");
    let (encoded, read) = worker.join().expect("no stack overflow");
    assert!(encoded.expect("deep enough") > 500);
    let err = read.expect_err("too deep");
    assert!(err.to_string().contains("nests deeper"), "{err}");
}

#[test]
fn a_struct_that_doubles_at_each_level_and_reads_nothing_stops_at_the_limit() {
    // T0 { a: T1, b: T1 }, T1 { a: T2, b: T2 }, ... T39 a unit struct: 2^40 values from no bytes.
    let levels = 40;
    let mut types = vec![(format!("T{levels}"), TypeDef::Struct(Shape::Unit))];
    for level in 0..levels {
        let next = Type::Named(format!("T{}", level + 1));
        let field = |name: &str| Field {
            name: name.into(),
            ty: next.clone(),
        };
        types.push((
            format!("T{level}"),
            TypeDef::Struct(Shape::Struct(vec![field("a"), field("b")])),
        ));
    }
    let schema = ServiceSchema {
        name: "doubling".into(),
        methods: vec![],
        types: types.into_iter().collect(),
    };
    // Without the limit this would not return: 2^40 values.
    let err = read_type(&schema, &Type::Named("T0".into()), &[]).expect_err("2^40 values");
    assert!(
        err.to_string().contains("values that take no bytes"),
        "{err}"
    );
}
