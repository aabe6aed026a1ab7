//! The `schema_json` target's loop: a schema from a possibly hostile server, the JSON a client
//! reads from it, and the JSON a user sends through it.
//!
//! An input is split ([`SchemaJsonInput::split`]) into a schema's bytes, a response's bytes and
//! JSON text. The schema is decoded as the `introspect` answer is, with [`WireFormat`]; bytes that
//! do not decode fall back to one of a few fixed schemas traced from real Rust types (the
//! built-in services' and [`Notes`]'), so the JSON readers and writers are always reached. Then:
//!
//! - a decoded schema goes through what the CLI runs on it: `check_names`, `to_idl`, every
//!   method's `signature`, `hash`, and `breaking_changes(schema, schema)`, which must be empty
//!   for a well-formed schema (every type it uses defined, variant indices distinct);
//!   and its encoding must decode back to it;
//! - the response bytes are read with `JsonResponseSeed`, and with a `TypeSeed` for a type the
//!   selector picks among those the schema uses;
//! - the JSON text, if it parses, is the arguments of a method the selector picks; when
//!   `request_from_json` accepts them, the request's encoding read back with `JsonRequestSeed`
//!   must give back the same arguments ([`same_value`]), and those arguments, sent again, must
//!   encode to the very same bytes.
//!
//! A run fails on a panic, a stack overflow, memory past libFuzzer's `-rss_limit_mb`, or a
//! broken round trip.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use rpc_core::Service;
use rpc_core::schema::{
    JsonRequestSeed, JsonResponseSeed, SchemaBuilder, ServiceSchema, Shape, Type, TypeDef,
    TypeSeed, breaking_changes,
};
use rpc_core::services::{echo, health, introspect, kv};
use rpc_core::wire::{FrameLimit, WireFormat};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use serde_json::Value;

/// One input, split into its parts.
#[derive(Debug, Clone, Copy)]
pub struct SchemaJsonInput<'a> {
    /// Picks the method a response or request is for, and the fallback schema.
    pub method: u8,
    /// Picks the type the `TypeSeed` reads.
    pub ty: u8,
    /// A schema's encoding, as the `introspect` service sends one.
    pub schema: &'a [u8],
    /// A response's body, read as JSON under the schema.
    pub response: &'a [u8],
    /// JSON text: the arguments of a call.
    pub json: &'a [u8],
}

impl<'a> SchemaJsonInput<'a> {
    /// Splits `input`: a method selector byte, a type selector byte, the schema's length (u16
    /// little-endian) and bytes, the response's length (u16 little-endian) and bytes, and the
    /// rest as JSON. A length past the end takes what there is.
    pub fn split(input: &'a [u8]) -> Self {
        let mut rest = input;
        let mut byte = || match rest.split_first() {
            Some((first, tail)) => {
                rest = tail;
                *first
            }
            None => 0,
        };
        let method = byte();
        let ty = byte();
        let mut part = || {
            let len = match rest.split_first_chunk::<2>() {
                Some((len, tail)) => {
                    rest = tail;
                    usize::from(u16::from_le_bytes(*len))
                }
                None => std::mem::take(&mut rest).len(),
            };
            let (part, tail) = rest.split_at(len.min(rest.len()));
            rest = tail;
            part
        };
        let schema = part();
        let response = part();
        SchemaJsonInput {
            method,
            ty,
            schema,
            response,
            json: rest,
        }
    }

    /// The inverse of [`Self::split`], for seeds.
    pub fn join(&self) -> Vec<u8> {
        let len = |part: &[u8]| u16::try_from(part.len()).expect("part under 64 KiB");
        [
            &[self.method, self.ty][..],
            &len(self.schema).to_le_bytes(),
            self.schema,
            &len(self.response).to_le_bytes(),
            self.response,
            self.json,
        ]
        .concat()
    }
}

/// What became of one input, for the corpus replay's checks.
#[derive(Debug)]
pub struct SchemaJsonOutcome {
    /// Whether the schema bytes decoded (else a fixed schema was used).
    pub schema_decoded: bool,
    /// Whether the response bytes read as a response.
    pub response_read: bool,
    /// Whether the JSON was accepted as a request (and so round-tripped).
    pub request_round_tripped: bool,
}

/// The format the `introspect` answer is decoded with: the wire's, at the default frame limit.
pub fn wire_format() -> WireFormat {
    WireFormat::new(FrameLimit::default())
}

/// Runs every check on one input.
pub fn fuzz_schema_json(input: &[u8]) -> SchemaJsonOutcome {
    let input = SchemaJsonInput::split(input);
    let format = wire_format();
    let decoded = format.decode::<ServiceSchema>(input.schema).ok();
    let schema_decoded = decoded.is_some();
    let schema = Arc::new(match decoded {
        Some(schema) => {
            check_schema(&schema);
            schema
        }
        None => {
            let fixed = fixed_schemas();
            fixed[usize::from(input.method) % fixed.len()].clone()
        }
    });

    let response = format.decode_seed(
        input.response,
        JsonResponseSeed {
            schema: Arc::clone(&schema),
        },
    );
    if let Ok(response) = &response {
        assert!(
            (response.method as usize) < schema.methods.len(),
            "a response for method {} of {}",
            response.method,
            schema.methods.len()
        );
    }
    let types = types_of(&schema);
    if !types.is_empty() {
        let ty = &types[usize::from(input.ty) % types.len()];
        let _ = format.decode_seed(
            input.response,
            TypeSeed {
                schema: &schema,
                ty,
            },
        );
    }

    let request_round_tripped = match serde_json::from_slice::<Value>(input.json) {
        Ok(args) if !schema.methods.is_empty() => {
            let method = &schema.methods[usize::from(input.method) % schema.methods.len()];
            request_round_trip(&schema, &method.name, &args)
        }
        _ => false,
    };
    SchemaJsonOutcome {
        schema_decoded,
        response_read: response.is_ok(),
        request_round_tripped,
    }
}

/// What the CLI runs on a schema from a server; none may panic, and a schema is compatible with
/// itself. Its encoding decodes back to it.
fn check_schema(schema: &ServiceSchema) {
    let _ = schema.check_names();
    let _ = schema.to_idl();
    for method in &schema.methods {
        let _ = method.signature();
    }
    let _ = schema.hash();
    // A schema that uses a type it does not define, or gives two variants one index, is
    // reported against itself too ("its definition is missing", "variant 1 was `A`, is now
    // `B`"): those are faults of the schema, not changes, so only a well-formed one must come
    // out clean.
    let changes = breaking_changes(schema, schema);
    assert!(
        changes.is_empty() || !well_formed(schema),
        "a schema breaks itself: {changes:?}"
    );
    let format = wire_format();
    let mut body = BytesMut::new();
    format
        .encode_body(schema, &mut body)
        .expect("a decoded schema encodes");
    let again: ServiceSchema = format.decode(&body).expect("a schema's encoding decodes");
    assert_eq!(
        &again, schema,
        "a schema's encoding decodes to another schema"
    );
}

/// Whether every type the schema uses is defined and no enum gives two variants one index.
fn well_formed(schema: &ServiceSchema) -> bool {
    let shape_types = |shape: &Shape| -> Vec<Type> {
        match shape {
            Shape::Unit => vec![],
            Shape::Newtype(ty) => vec![ty.clone()],
            Shape::Tuple(types) => types.clone(),
            Shape::Struct(fields) => fields.iter().map(|f| f.ty.clone()).collect(),
        }
    };
    let mut used = types_of(schema);
    for def in schema.types.values() {
        match def {
            TypeDef::Struct(shape) => used.extend(shape_types(shape)),
            TypeDef::Enum(variants) => {
                let mut indices: Vec<u32> = variants.iter().map(|v| v.index).collect();
                indices.sort_unstable();
                if indices.windows(2).any(|pair| pair[0] == pair[1]) {
                    return false;
                }
                used.extend(variants.iter().flat_map(|v| shape_types(&v.shape)));
            }
        }
    }
    used.iter()
        .flat_map(Type::named_types)
        .all(|name| schema.types.contains_key(name))
}

/// Every type the schema's methods use directly, and every type it defines, by name.
fn types_of(schema: &ServiceSchema) -> Vec<Type> {
    let mut types = Vec::new();
    for method in &schema.methods {
        types.extend(method.args.iter().map(|arg| arg.ty.clone()));
        types.push(method.result.clone());
    }
    types.extend(schema.types.keys().map(|name| Type::Named(name.clone())));
    types
}

/// Sends `args` to `method` through the JSON path and reads the request back; returns whether
/// `request_from_json` accepted them. Panics if what is read back is not what was sent.
fn request_round_trip(schema: &Arc<ServiceSchema>, method: &str, args: &Value) -> bool {
    let Ok(request) = schema.request_from_json(method, args) else {
        return false;
    };
    let format = wire_format();
    let mut body = BytesMut::new();
    // A request the frame limit refuses is the user's problem, reported before sending.
    if format.encode_body(&request, &mut body).is_err() {
        return true;
    }
    let seed = JsonRequestSeed {
        schema: Arc::clone(schema),
    };
    let call = match format.decode_seed(&body, seed) {
        Ok(call) => call,
        // The one documented way a request can be sent and not read: more values that take no
        // bytes than a message may hold (`Vec<()>` of 65,537 `null`s). A writer does not limit
        // what its own user asks for; a reader limits what a peer's bytes make it build.
        Err(err) if err.to_string().contains("values that take no bytes") => return true,
        Err(err) => panic!("a request built from JSON does not read back: {err}"),
    };
    assert_eq!(
        call.method,
        request.index(),
        "the request read back is for another method"
    );
    let schema_method = &schema.methods[request.index() as usize];
    let Value::Object(read) = &call.args else {
        panic!("a request's arguments read back as {}", call.args);
    };
    let given = args.as_object();
    for arg in &schema_method.args {
        let sent = given.and_then(|given| given.get(&arg.name));
        let back = read
            .get(&arg.name)
            .unwrap_or_else(|| panic!("argument `{}` is missing when read back", arg.name));
        if let Err(why) = same_value(schema, &arg.ty, sent, back, 0) {
            panic!(
                "argument `{}` of `{method}` reads back otherwise: {why}\nsent {args}\nread {}",
                arg.name, call.args
            );
        }
    }
    // What was read back is the canonical spelling: sent again, the very same bytes.
    let again = schema
        .request_from_json(method, &call.args)
        .unwrap_or_else(|err| panic!("the arguments read back are refused: {err}"));
    let mut body_again = BytesMut::new();
    format
        .encode_body(&again, &mut body_again)
        .expect("the same request encodes again");
    assert_eq!(
        body, body_again,
        "the arguments read back encode to other bytes"
    );
    true
}

/// Whether `back`, read from the wire, is the value `sent` (`None`: left out) stands for, as a
/// `ty`, by the conventions documented on `rpc_core::schema::JsonRequest`. These are the known
/// ways the two differ, each compared by what it means rather than skipped:
///
/// - an `Option` left out is `null` when read back;
/// - integers: a 128-bit one may be sent as a decimal string and is read back as a number when
///   it fits 64 bits; compared as integers;
/// - floats: `"NaN"`, `"inf"`, `"-inf"` are strings both ways; compared as floats (NaN equal to
///   NaN, zeros by sign), an `f32` after narrowing what was sent, as the writer does, since it
///   is read back as the shortest decimal of the `f32`, not the decimal sent;
/// - a unit variant may be sent as `{"Name": null}` and reads back as `"Name"`;
/// - map keys sent as object keys (`"01"`) are compared as the key type (an integer 1);
/// - `Some(None)` reads back as `null`, i.e. `None`: JSON has one `null`. JSON cannot say
///   `Some(None)` either (`null` is `None` at the outer level), so no request built from JSON
///   holds one and this never arises here.
pub fn same_value(
    schema: &ServiceSchema,
    ty: &Type,
    sent: Option<&Value>,
    back: &Value,
    depth: u32,
) -> Result<(), String> {
    // The writer refuses deeper values; a schema's newtypes around newtypes are the only way
    // past that here, and those add no JSON, so this bound is generous.
    if depth > 4 * rpc_core::schema::MAX_JSON_DEPTH {
        return Err("the comparison nests too deep".into());
    }
    let depth = depth + 1;
    let differ = || Err(format!("sent {sent:?}, read back {back} as {ty}"));
    let Some(sent) = sent else {
        return match (ty, back) {
            (Type::Option(_), Value::Null) => Ok(()),
            _ => differ(),
        };
    };
    match ty {
        Type::Option(inner) => match sent {
            Value::Null if back.is_null() => Ok(()),
            Value::Null => differ(),
            _ => same_value(schema, inner, Some(sent), back, depth),
        },
        Type::I8 | Type::I16 | Type::I32 | Type::I64 | Type::I128 => same_if(
            int_of(sent).is_some() && int_of(sent) == int_of(back),
            differ,
        ),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 | Type::U128 => same_if(
            int_of(sent).is_some() && int_of(sent) == int_of(back),
            differ,
        ),
        Type::F64 => same_if(same_float(float_of(sent), float_of(back)), differ),
        Type::F32 => same_if(
            same_float(
                float_of(sent).map(|v| f64::from(v as f32)),
                float_of(back).map(|v| f64::from(v as f32)),
            ),
            differ,
        ),
        Type::Unit | Type::Bool | Type::Char | Type::Str | Type::Bytes => {
            same_if(sent == back, differ)
        }
        Type::Seq(item) | Type::Array { item, .. } => {
            same_items(schema, std::iter::repeat(&**item), sent, back, depth)
        }
        Type::Tuple(types) => same_items(schema, types.iter(), sent, back, depth),
        Type::Map { key, value } => same_map(schema, key, value, sent, back, depth),
        Type::Result { ok, err } => {
            let variants = [
                ("Ok", Shape::Newtype((**ok).clone())),
                ("Err", Shape::Newtype((**err).clone())),
            ];
            same_variant(schema, &variants, sent, back, depth)
        }
        Type::Named(name) => match schema.types.get(name) {
            Some(TypeDef::Struct(shape)) => same_shape(schema, shape, sent, back, depth),
            Some(TypeDef::Enum(variants)) => {
                let variants: Vec<(&str, Shape)> = variants
                    .iter()
                    .map(|v| (v.name.as_str(), v.shape.clone()))
                    .collect();
                same_variant(schema, &variants, sent, back, depth)
            }
            None => Err(format!("`{name}` is undefined, yet a value was sent")),
        },
    }
}

fn same_if(same: bool, differ: impl Fn() -> Result<(), String>) -> Result<(), String> {
    if same { Ok(()) } else { differ() }
}

fn same_items<'t>(
    schema: &ServiceSchema,
    types: impl Iterator<Item = &'t Type>,
    sent: &Value,
    back: &Value,
    depth: u32,
) -> Result<(), String> {
    match (sent, back) {
        (Value::Array(sent), Value::Array(back)) if sent.len() == back.len() => types
            .zip(sent.iter().zip(back))
            .try_for_each(|(ty, (s, b))| same_value(schema, ty, Some(s), b, depth)),
        _ => Err(format!("sent {sent}, read back {back}: not the same items")),
    }
}

fn same_map(
    schema: &ServiceSchema,
    key: &Type,
    value: &Type,
    sent: &Value,
    back: &Value,
    depth: u32,
) -> Result<(), String> {
    match (sent, back) {
        (Value::Object(sent), Value::Object(back)) if sent.len() == back.len() => {
            let key = key_type(schema, key);
            let back_by_key: BTreeMap<String, &Value> = back
                .iter()
                .map(|(k, v)| (canonical_key(key, k), v))
                .collect();
            for (k, v) in sent {
                let Some(b) = back_by_key.get(&canonical_key(key, k)) else {
                    return Err(format!("key {k:?} is missing when read back"));
                };
                same_value(schema, value, Some(v), b, depth)?;
            }
            Ok(())
        }
        (Value::Array(sent), Value::Array(back)) if sent.len() == back.len() => {
            for (s, b) in sent.iter().zip(back) {
                match (s, b) {
                    (Value::Array(s), Value::Array(b)) if s.len() == 2 && b.len() == 2 => {
                        same_value(schema, key, Some(&s[0]), &b[0], depth)?;
                        same_value(schema, value, Some(&s[1]), &b[1], depth)?;
                    }
                    _ => return Err(format!("pair {s} read back as {b}")),
                }
            }
            Ok(())
        }
        _ => Err(format!("map {sent} read back as {back}")),
    }
}

/// A map key's type through its newtypes (as many as the writer follows).
fn key_type<'s>(schema: &'s ServiceSchema, key: &'s Type) -> &'s Type {
    let mut key = key;
    for _ in 0..8 {
        match key {
            Type::Named(name) => match schema.types.get(name) {
                Some(TypeDef::Struct(Shape::Newtype(inner))) => key = inner,
                _ => return key,
            },
            _ => return key,
        }
    }
    key
}

/// An object key as its type reads it: integers by value, anything else as written.
fn canonical_key(key: &Type, text: &str) -> String {
    let is_int = matches!(
        key,
        Type::I8
            | Type::I16
            | Type::I32
            | Type::I64
            | Type::I128
            | Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::U128
    );
    match is_int
        .then(|| int_of(&Value::String(text.to_owned())))
        .flatten()
    {
        Some(n) => format!("{n:?}"),
        None => text.to_owned(),
    }
}

fn same_shape(
    schema: &ServiceSchema,
    shape: &Shape,
    sent: &Value,
    back: &Value,
    depth: u32,
) -> Result<(), String> {
    match shape {
        Shape::Unit => same_if(sent.is_null() && back.is_null(), || {
            Err(format!("unit {sent} read back as {back}"))
        }),
        Shape::Newtype(inner) => same_value(schema, inner, Some(sent), back, depth),
        Shape::Tuple(types) => same_items(schema, types.iter(), sent, back, depth),
        Shape::Struct(fields) => match (sent, back) {
            (Value::Object(sent_fields), Value::Object(back_fields))
                if back_fields.len() <= fields.len() =>
            {
                for field in fields {
                    let Some(b) = back_fields.get(&field.name) else {
                        return Err(format!("field `{}` is missing when read back", field.name));
                    };
                    same_value(schema, &field.ty, sent_fields.get(&field.name), b, depth)?;
                }
                Ok(())
            }
            _ => Err(format!("struct {sent} read back as {back}")),
        },
    }
}

fn same_variant(
    schema: &ServiceSchema,
    variants: &[(&str, Shape)],
    sent: &Value,
    back: &Value,
    depth: u32,
) -> Result<(), String> {
    let named = |value: &Value| -> Option<(String, Option<Value>)> {
        match value {
            Value::String(name) => Some((name.clone(), None)),
            Value::Object(map) if map.len() == 1 => {
                map.iter().next().map(|(k, v)| (k.clone(), Some(v.clone())))
            }
            _ => None,
        }
    };
    let (Some((sent_name, sent_content)), Some((back_name, back_content))) =
        (named(sent), named(back))
    else {
        return Err(format!("variant {sent} read back as {back}"));
    };
    if sent_name != back_name {
        return Err(format!("variant {sent_name:?} read back as {back_name:?}"));
    }
    let Some((_, shape)) = variants.iter().find(|(name, _)| *name == sent_name) else {
        return Err(format!("variant {sent_name:?} is not in the schema"));
    };
    match shape {
        // `"Name"` and `{"Name": null}` both mean the unit variant.
        Shape::Unit => same_if(
            sent_content.as_ref().is_none_or(Value::is_null)
                && back_content.as_ref().is_none_or(Value::is_null),
            || Err(format!("unit variant {sent} read back as {back}")),
        ),
        _ => match (sent_content, back_content) {
            (Some(s), Some(b)) => same_shape(schema, shape, &s, &b, depth),
            _ => Err(format!("variant {sent} read back as {back}")),
        },
    }
}

/// An integer written as a JSON number or a decimal string, by value.
fn int_of(value: &Value) -> Option<Int> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(|n| Int::Signed(n.into()))
            .or_else(|| n.as_u64().map(|n| Int::Signed(n.into()))),
        Value::String(text) => text
            .parse::<i128>()
            .map(Int::Signed)
            .or_else(|_| text.parse::<u128>().map(Int::Unsigned))
            .ok(),
        _ => None,
    }
}

/// Any 128-bit integer: a `u128` only beyond `i128::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Int {
    Signed(i128),
    Unsigned(u128),
}

/// A float written as a JSON number or `"NaN"`, `"inf"`, `"-inf"`.
fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Equal floats: bit for bit, or both NaN.
fn same_float(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        _ => false,
    }
}

/// The schemas used when the schema bytes do not decode: the built-in services' and
/// [`Notes`]', traced once.
pub fn fixed_schemas() -> &'static [ServiceSchema] {
    static SCHEMAS: OnceLock<Vec<ServiceSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        vec![
            notes_schema(),
            kv::KvClient::schema().expect("kv traces"),
            echo::EchoClient::schema().expect("echo traces"),
            health::HealthClient::schema().expect("health traces"),
            introspect::IntrospectClient::schema().expect("introspect traces"),
        ]
    })
}

/// A note, as a notes service might keep it: most of the shapes serde has.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub struct Notes {
    id: NoteId,
    title: String,
    body: Option<String>,
    tags: Vec<Tag>,
    attachment: Option<ByteBuf>,
    scores: BTreeMap<u32, f32>,
    links: BTreeMap<NoteId, Link>,
    grid: BTreeMap<(u8, u8), bool>,
    created: (i64, u32),
    checksum: [u16; 3],
    big: i128,
    huge: u128,
    weight: f64,
    initial: char,
    reviewed: Option<Option<u8>>,
    outline: Outline,
    marker: Marker,
}

/// A newtype, usable as a map key.
#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct NoteId(u64);

/// A unit struct: takes no bytes.
#[derive(Debug, Deserialize)]
pub struct Marker;

/// An enum of every kind of variant.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub enum Tag {
    Pinned,
    Colour(u8, u8, u8),
    Named(String),
    Due { day: u16, reminder: Option<i32> },
}

/// A link to another note.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub enum Link {
    Parent,
    Related(Vec<NoteId>),
}

/// A recursive type: an outline of headings.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub struct Outline {
    heading: String,
    children: Vec<Outline>,
}

/// Why a notes call failed.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub enum NotesError {
    NotFound { id: NoteId },
    Full(u64),
}

fn notes_schema() -> ServiceSchema {
    let trace = || -> Result<ServiceSchema, rpc_core::schema::SchemaError> {
        let mut builder = SchemaBuilder::new("notes");
        builder.root::<Tag>().root::<Link>().root::<NotesError>();
        let note = builder.trace::<Notes>()?;
        let id = builder.trace::<NoteId>()?;
        let added = builder.trace::<Result<NoteId, NotesError>>()?;
        let found = builder.trace::<Option<Notes>>()?;
        let ids = builder.trace::<Vec<NoteId>>()?;
        let units = builder.trace::<Vec<()>>()?;
        let filter = builder.trace::<Option<BTreeMap<String, Vec<Tag>>>>()?;
        let unit = builder.trace::<()>()?;
        builder.method("add", "Adds a note.", vec![("note", note)], added);
        builder.method("get", "", vec![("id", id.clone())], found);
        builder.method(
            "find",
            "",
            vec![("filter", filter), ("limit", ids.clone())],
            ids,
        );
        builder.method("touch", "", vec![("ids", units), ("id", id)], unit);
        Ok(builder.finish())
    };
    trace().expect("the notes schema traces")
}
