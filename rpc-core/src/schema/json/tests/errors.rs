//! Every error JSON arguments can get: the path, the type expected, what was found.

use serde_json::{Value, json};

use super::notes::*;
use super::*;
use crate::schema::{JsonError, Shape};

/// The error `method` gets for `args`, as text.
fn error(method: &str, args: Value) -> String {
    notes()
        .request_from_json(method, &args)
        .expect_err("refused")
        .to_string()
}

/// The arguments of a valid `echo` call, to spoil one field at a time.
fn echo() -> Value {
    let all = Everything {
        bytes: vec![1, 2].into(),
        by_name: [("a".to_owned(), 1)].into(),
        by_id: [(1, "a".to_owned())].into(),
        by_note: [(NoteId(1), true)].into(),
        pair: (1, "a".into()),
        rgb: [1, 2, 3],
        big: 1,
        huge: 1,
        letter: 'a',
        ratio: 0.5,
        precise: 0.5,
        flag: true,
        maybe: None,
        marker: Marker,
        id: NoteId(1),
        point: Point(1, 2),
        small: (1, 2, 3, 4, 5, 6),
        nothing: (),
        filters: vec![Filter::All],
    };
    json!({ "all": serde_json::to_value(all).expect("to JSON"), "outcome": { "Ok": null } })
}

/// The error `echo` gets with `all.field` set to `value`.
fn echo_error(field: &str, value: Value) -> String {
    let mut args = echo();
    args["all"][field] = value;
    error("echo", args)
}

#[test]
fn the_spoilable_echo_arguments_are_valid() {
    notes().request_from_json("echo", &echo()).expect("valid");
}

#[test]
fn methods_and_arguments_are_named_with_the_signature() {
    assert_eq!(
        error("ad", json!({})),
        "unknown method `ad`: notes has add, list, get, update, echo, ping"
    );
    assert_eq!(
        error("add", json!({ "title": "t" })),
        "missing argument `body` (add(title: string, body: string) -> Note)"
    );
    assert_eq!(
        error("add", json!({ "title": "t", "body": "b", "titel": "t" })),
        "unknown argument `titel` (add(title: string, body: string) -> Note)"
    );
    assert_eq!(
        error("add", json!(["t", "b"])),
        "the arguments must be a JSON object of named arguments, found an array of 2 items \
         (add(title: string, body: string) -> Note)"
    );
    let empty = service(vec![], Type::Unit, vec![]);
    let err = ServiceSchema {
        methods: vec![],
        ..(*empty).clone()
    }
    .request_from_json("m", &Value::Null)
    .expect_err("no methods");
    assert_eq!(err.to_string(), "unknown method `m`: svc has no methods");
}

#[test]
fn a_wrong_kind_of_value_names_its_path_and_the_type_expected() {
    assert_eq!(
        error("list", json!({ "filter": { "Tag": 3 } })),
        "argument `filter.Tag`: expected a string, found the number 3"
    );
    assert_eq!(
        error("add", json!({ "title": null, "body": "b" })),
        "argument `title`: expected a string, found null"
    );
    assert_eq!(
        echo_error("pair", json!([1])),
        "argument `all.pair`: expected an array of 2 items ((u8, string)), found an array of 1 item"
    );
    assert_eq!(
        echo_error("point", json!([1, 2, 3])),
        "argument `all.point`: expected an array of 2 items (Point), found an array of 3 items"
    );
    assert_eq!(
        echo_error("marker", json!(5)),
        "argument `all.marker`: expected null (Marker), found the number 5"
    );
    assert_eq!(
        echo_error("id", json!("7")),
        // A newtype's value is its content's: the content's type is the one named.
        "argument `all.id`: expected an integer (u64), found the string \"7\""
    );
    assert_eq!(
        echo_error("letter", json!("ab")),
        "argument `all.letter`: expected a one-character string, found the string \"ab\""
    );
    assert_eq!(
        echo_error("bytes", json!("abc")),
        "argument `all.bytes`: expected an array of integers 0 to 255 (bytes), found the string \"abc\""
    );
    assert_eq!(
        echo_error("maybe", json!("x")),
        // Not null, so an `Option`'s value is its content's.
        "argument `all.maybe`: expected an integer (u8), found the string \"x\""
    );
    assert_eq!(
        echo_error("by_name", json!([])),
        "argument `all.by_name`: expected an object (Map<string, u32>), found an empty array"
    );
    assert_eq!(
        echo_error("filters", json!([{ "Since": { "id": true } }])),
        "argument `all.filters[0].Since.id`: expected an integer (u64), found true"
    );
    assert_eq!(
        echo_error("ratio", json!("fast")),
        "argument `all.ratio`: expected a number (f32), found the string \"fast\""
    );
}

#[test]
fn integers_out_of_range_name_the_range() {
    assert_eq!(
        echo_error("rgb", json!([1, 300, 2])),
        "argument `all.rgb[1]`: 300 is out of range for u8 (0 to 255)"
    );
    assert_eq!(
        error("get", json!({ "id": -1 })),
        "argument `id`: -1 is out of range for u64 (0 to 18446744073709551615)"
    );
    assert_eq!(
        error("get", json!({ "id": 1.5 })),
        "argument `id`: expected an integer (u64), found the number 1.5"
    );
    assert_eq!(
        echo_error("small", json!([128, 0, 0, 0, 0, 0])),
        "argument `all.small[0]`: 128 is out of range for i8 (-128 to 127)"
    );
    assert_eq!(
        echo_error("huge", json!("-1")),
        "argument `all.huge`: -1 is out of range for u128 (0 to 340282366920938463463374607431768211455)"
    );
    let past_u128 = "340282366920938463463374607431768211456";
    assert!(
        echo_error("huge", json!(past_u128))
            .ends_with("is out of range for u128 (0 to 340282366920938463463374607431768211455)")
    );
    let below_i128 = "-170141183460469231731687303715884105729";
    assert!(echo_error("big", json!(below_i128)).contains("is out of range for i128"));
    assert_eq!(
        echo_error("big", json!("1e3")),
        "argument `all.big`: expected an integer or a decimal string (i128), found the string \"1e3\""
    );
    let err = echo_error("big", json!(1e21));
    assert!(
        err.contains("write integers beyond 64 bits as decimal strings"),
        "{err}"
    );
    assert_eq!(
        echo_error("bytes", json!([1, 256])),
        "argument `all.bytes[1]`: 256 is out of range for a byte (0 to 255)"
    );
    let err = echo_error("ratio", json!(1e39));
    assert!(err.starts_with("argument `all.ratio`: 1"), "{err}");
    assert!(err.ends_with("is out of range for f32 (-340282350000000000000000000000000000000 to 340282350000000000000000000000000000000)"), "{err}");
}

#[test]
fn struct_fields_are_checked_by_name() {
    let note = json!({ "id": 1, "titel": "t", "body": "b", "tags": [] });
    assert_eq!(
        error("update", json!({ "note": note })),
        "unknown field `titel` in argument `note` (fields: id, title, body, tags)"
    );
    let note = json!({ "id": 1, "title": "t", "tags": [] });
    assert_eq!(
        error("update", json!({ "note": note })),
        "missing field `body` in argument `note` (body: string)"
    );
    assert_eq!(
        echo_error("filters", json!([{ "Since": {} }])),
        "missing field `id` in argument `all.filters[0].Since` (id: u64)"
    );
}

#[test]
fn enum_values_name_their_variants() {
    assert_eq!(
        error("list", json!({ "filter": "Everything" })),
        "unknown variant `Everything` in argument `filter` (Filter has Tag, Since, All)"
    );
    assert_eq!(
        error("list", json!({ "filter": "Tag" })),
        "argument `filter`: variant `Tag` of Filter holds a string: write {\"Tag\": ...}"
    );
    assert_eq!(
        error("list", json!({ "filter": { "Tag": "a", "All": null } })),
        "argument `filter`: expected {\"Tag\": ...}, {\"Since\": ...} or \"All\" (Filter), \
         found an object with 2 fields"
    );
    assert_eq!(
        error("list", json!({ "filter": { "All": 1 } })),
        "argument `filter.All`: expected null (Filter), found the number 1"
    );
    let mut args = echo();
    args["outcome"] = json!({ "Fine": null });
    assert_eq!(
        error("echo", args),
        "unknown variant `Fine` in argument `outcome` (Result<(), string> has Ok, Err)"
    );
    let mut args = echo();
    args["outcome"] = json!({ "Err": 3 });
    assert_eq!(
        error("echo", args),
        "argument `outcome.Err`: expected a string, found the number 3"
    );
}

#[test]
fn map_keys_are_parsed_as_their_type_and_must_differ() {
    assert_eq!(
        echo_error("by_id", json!({ "x": "a" })),
        "argument `all.by_id[\"x\"]`: expected an integer key (u64), found the key \"x\""
    );
    assert_eq!(
        echo_error("by_id", json!({ "1": "a", "01": "b" })),
        "argument `all.by_id`: the keys \"1\" and \"01\" are the same u64"
    );
    assert_eq!(
        echo_error("by_note", json!({ "-3": true })),
        "argument `all.by_note[\"-3\"]`: -3 is out of range for u64 (0 to 18446744073709551615)"
    );
    assert_eq!(
        echo_error("by_name", json!({ "k": -1 })),
        "argument `all.by_name[\"k\"]`: -1 is out of range for u32 (0 to 4294967295)"
    );
}

#[test]
fn user_text_in_errors_is_clipped_and_escaped() {
    let long = format!("\u{1b}]0;pwned\u{7}{}", "x".repeat(1 << 20));
    for err in [
        error(&long, json!({})),
        error("add", json!({ long.clone(): 1 })),
        error("add", json!({ "title": 1, "body": long.clone() })),
        error("get", json!({ "id": long.clone() })),
        error("update", json!({ "note": { long.clone(): 1 } })),
        error("list", json!({ "filter": long.clone() })),
        echo_error("by_id", json!({ long.clone(): "a" })),
        echo_error("huge", json!(format!("9{}", "9".repeat(1 << 20)))),
    ] {
        assert!(err.len() < 300, "{} bytes: {}", err.len(), &err[..300]);
        assert!(!crate::untrusted::has_unsafe_chars(&err), "{err}");
    }
    assert_eq!(
        error("get", json!({ "id": format!("\u{1b}{}", "y".repeat(100)) })),
        format!(
            "argument `id`: expected an integer (u64), found the string \"\\u001b{}\"…",
            "y".repeat(39)
        )
    );
}

#[test]
fn a_type_the_schema_does_not_define_is_named() {
    let schema = service(vec![("g", Type::Named("Ghost".into()))], Type::Unit, vec![]);
    let err = schema
        .request_from_json("m", &json!({ "g": 1 }))
        .expect_err("undefined");
    assert_eq!(
        err,
        JsonError::UndefinedType {
            path: "g".into(),
            name: "Ghost".into()
        }
    );
    let schema = service(
        vec![("w", Type::Named("Wrap".into()))],
        Type::Unit,
        vec![(
            "Wrap",
            TypeDef::Struct(Shape::Newtype(Type::Named("Ghost".into()))),
        )],
    );
    let err = schema
        .request_from_json("m", &json!({ "w": 1 }))
        .expect_err("undefined");
    assert!(err.to_string().contains("does not define it"), "{err}");
}
