use serde::{Deserialize, Serialize};

use super::*;

#[derive(Serialize, Deserialize)]
struct Note {
    id: u64,
    title: String,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize)]
enum NotesError {
    NotFound { id: u64 },
    Locked,
}

#[derive(Serialize, Deserialize)]
enum Filter {
    Tag(String),
    Between(u64, u64),
}

fn notes() -> ServiceSchema {
    let mut builder = SchemaBuilder::new("notes");
    builder.root::<Note>().root::<NotesError>().root::<Filter>();
    let id = builder.trace::<u64>().expect("traces u64");
    let result = builder
        .trace::<Result<Note, NotesError>>()
        .expect("traces a Result");
    builder.method("get", " The note. ", vec![("id", id)], result);
    let filter = builder.trace::<Option<Filter>>().expect("traces a filter");
    let result = builder
        .trace::<Result<(), String>>()
        .expect("traces another Result");
    builder.method("check", "", vec![("filter", filter)], result);
    builder.finish()
}

#[test]
fn results_are_inlined_per_instantiation_and_named_types_defined() {
    let schema = notes();
    assert_eq!(schema.method_names(), ["get", "check"]);
    assert_eq!(schema.methods[0].doc, "The note.");
    assert_eq!(
        schema.methods[0].result,
        Type::Result {
            ok: Box::new(Type::Named("Note".into())),
            err: Box::new(Type::Named("NotesError".into())),
        }
    );
    assert_eq!(
        schema.methods[1].result,
        Type::Result {
            ok: Box::new(Type::Unit),
            err: Box::new(Type::Str),
        }
    );
    let names: Vec<_> = schema.types.keys().map(String::as_str).collect();
    assert_eq!(names, ["Filter", "Note", "NotesError"]);
    let TypeDef::Enum(variants) = &schema.types["Filter"] else {
        panic!("Filter is an enum");
    };
    assert_eq!(variants[1].index, 1);
    assert_eq!(variants[1].shape, Shape::Tuple(vec![Type::U64, Type::U64]));
}

#[test]
fn a_validating_type_needs_a_sample() {
    #[derive(Clone, Serialize, Deserialize)]
    struct Info {
        endpoint: crate::Endpoint,
    }
    let mut builder = SchemaBuilder::new("info");
    let err = builder
        .trace::<Info>()
        .expect_err("an empty endpoint fails to parse");
    assert!(err.to_string().contains("needs a sample"), "{err}");

    let mut builder = SchemaBuilder::new("info");
    builder.sample(Info {
        endpoint: "tcp:127.0.0.1:1".parse().expect("an endpoint"),
    });
    let ty = builder.trace::<Info>().expect("traced from the sample");
    assert_eq!(ty, Type::Named("Info".into()));
    assert_eq!(
        builder.finish().types["Info"],
        TypeDef::Struct(Shape::Struct(vec![Field {
            name: "endpoint".into(),
            ty: Type::Str
        }]))
    );
}

#[test]
fn two_types_of_one_name_are_refused() {
    mod a {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Item {
            pub x: u8,
        }
    }
    mod b {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Item {
            pub y: String,
        }
    }
    let mut builder = SchemaBuilder::new("twice");
    builder.trace::<a::Item>().expect("first");
    let err = builder.trace::<b::Item>().expect_err("a conflict");
    assert!(matches!(err, SchemaError::Conflict { ref name, .. } if name == "Item"));
}

#[test]
fn the_hash_changes_with_the_wire_and_not_with_docs() {
    let schema = notes();
    let mut documented = schema.clone();
    documented.methods[0].doc = "Something else.".into();
    assert_eq!(schema.hash(), documented.hash());

    let mut reordered = schema.clone();
    reordered.methods.swap(0, 1);
    assert_ne!(schema.hash(), reordered.hash());

    let mut retyped = schema.clone();
    retyped.methods[0].args[0].ty = Type::U32;
    assert_ne!(schema.hash(), retyped.hash());

    let mut streaming = schema.clone();
    streaming.methods[0].streaming = true;
    assert_ne!(schema.hash(), streaming.hash());
    assert_eq!(schema.hash().to_string().len(), 16);
}

#[test]
fn the_hash_is_fnv1a_over_the_bincode_encoding_without_docs() {
    // Clients and servers of other versions compare this hash in the handshake: it must stay the
    // one computed over `bincode::serialize` when the hash was introduced.
    let schema = notes();
    let mut bare = schema.clone();
    for method in &mut bare.methods {
        method.doc.clear();
    }
    let bytes = bincode::serialize(&bare).expect("a schema encodes");
    let expected = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    assert_eq!(schema.hash(), SchemaHash(expected));
}

#[test]
fn schemas_round_trip_and_deep_types_are_refused() {
    let schema = notes();
    let bytes = bincode::serialize(&schema).expect("encodes");
    let back: ServiceSchema = bincode::deserialize(&bytes).expect("decodes");
    assert_eq!(back, schema);

    let nest = |depth: u32| (0..depth).fold(Type::U8, |inner, _| Type::Option(Box::new(inner)));
    let ok = bincode::serialize(&nest(MAX_TYPE_DEPTH - 1)).expect("encodes");
    bincode::deserialize::<Type>(&ok).expect("63 levels inside one is fine");
    // 100,000 `Option` tags (variant 17, a u32 each), then `U8` (variant 7): built by hand, as
    // a hostile peer would, since encoding (or dropping) such a value would itself overflow.
    let mut deep: Vec<u8> = std::iter::repeat_n([17, 0, 0, 0], 100_000)
        .flatten()
        .collect();
    deep.extend([7, 0, 0, 0]);
    let err = bincode::deserialize::<Type>(&deep).expect_err("too deep");
    assert!(err.to_string().contains("nests deeper"), "{err}");
    // The guard was released: a shallow type decodes on this thread again.
    bincode::deserialize::<Type>(&ok).expect("the depth count went back to zero");
}

#[test]
fn an_enum_inside_a_struct_must_be_a_root() {
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Text,
        Link(String),
        Todo { done: bool },
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Item {
        kind: Kind,
    }
    let mut builder = SchemaBuilder::new("items");
    let err = builder.trace::<Item>().expect_err("Kind is half-known");
    assert!(
        matches!(err, SchemaError::Incomplete { ref names, .. } if names == "Kind"),
        "{err}"
    );
    assert!(err.to_string().contains("trace = [Kind]"), "{err}");

    let mut builder = SchemaBuilder::new("items");
    builder.root::<Kind>();
    builder.trace::<Item>().expect("Kind traced first");
    let TypeDef::Enum(variants) = &builder.finish().types["Kind"] else {
        panic!("Kind is an enum");
    };
    let names: Vec<_> = variants
        .iter()
        .map(|v| (v.index, v.name.as_str()))
        .collect();
    assert_eq!(names, [(0, "Text"), (1, "Link"), (2, "Todo")]);
}

#[test]
fn breaking_changes_name_the_method_and_the_place() {
    let old = notes();
    assert!(breaking_changes(&old, &old).is_empty());

    let mut reordered = old.clone();
    reordered.methods.swap(0, 1);
    let changes = breaking_changes(&old, &reordered);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes[0].contains("method 0 `get` is now `check`"),
        "{changes:?}"
    );

    let mut appended = old.clone();
    appended.methods.push(old.methods[0].clone());
    assert!(
        breaking_changes(&old, &appended).is_empty(),
        "adding at the end is safe"
    );

    let mut field_retyped = old.clone();
    let Some(TypeDef::Struct(Shape::Struct(fields))) = field_retyped.types.get_mut("Note") else {
        panic!("Note is a struct");
    };
    fields[0].ty = Type::U32;
    let changes = breaking_changes(&old, &field_retyped);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].contains("method 0 `get`, its result, Ok, type `Note`, its fields, `id`"),
        "{changes:?}"
    );

    let mut variant_added = old.clone();
    let Some(TypeDef::Enum(variants)) = variant_added.types.get_mut("NotesError") else {
        panic!("NotesError is an enum");
    };
    variants.push(Variant {
        index: 2,
        name: "Gone".into(),
        shape: Shape::Unit,
    });
    let changes = breaking_changes(&old, &variant_added);
    assert!(changes[0].contains("new variant"), "{changes:?}");

    // Each answer would be read as the other kind: a `StreamEvent` or the bare result.
    let mut now_streams = old.clone();
    now_streams.methods[1].streaming = true;
    let changes = breaking_changes(&old, &now_streams);
    assert_eq!(
        changes,
        ["method 1 `check` streams its answers now, and answers once before"]
    );
    let changes = breaking_changes(&now_streams, &old);
    assert_eq!(
        changes,
        ["method 1 `check` answers once now, and streams its answers before"]
    );

    let mut arg_renamed = old.clone();
    arg_renamed.methods[0].args[0].name = "key".into();
    let changes = breaking_changes(&old, &arg_renamed);
    assert!(
        changes[0].contains("were (id), are now (key)"),
        "{changes:?}"
    );
}

#[test]
fn names_that_could_forge_a_line_are_refused() {
    let schema = notes();
    schema.check_names().expect("a traced schema prints");
    let mut forged = schema.clone();
    forged.name = "x\n  kv.get(key: string) -> Option<string>".into();
    let err = forged
        .check_names()
        .expect_err("a newline in the service name");
    assert!(err.to_string().contains("\\u{a}"), "shown escaped: {err}");

    let mut forged = schema.clone();
    forged.methods[0].args[0].ty = Type::Option(Box::new(Type::Named("A\u{1b}[2J".into())));
    assert!(forged.check_names().is_err(), "a type named by an argument");

    let mut forged = schema.clone();
    let Some(TypeDef::Enum(variants)) = forged.types.get_mut("NotesError") else {
        panic!("NotesError is an enum");
    };
    variants[0].name = "Not\u{202e}Found".into();
    assert!(
        forged.check_names().is_err(),
        "a variant with a bidi override"
    );

    let mut documented = schema;
    documented.methods[0].doc = "two\nlines".into();
    documented.check_names().expect("docs may hold newlines");
}
