//! JSON to wire and back, guided by a [`ServiceSchema`]: how `rpc-client call SERVICE.METHOD
//! JSON` sends exactly the bytes a compiled client would, and shows the answer, without the
//! service's Rust types.
//!
//! - [`ServiceSchema::request_from_json`] checks JSON arguments against a method's argument
//!   types, all of them before anything is sent, and builds a [`JsonRequest`]: a `Serialize`
//!   whose bincode encoding is byte for byte that of the request enum tarpc derives.
//!   [`ServiceSchema::call_request_from_json`] and [`ServiceSchema::stream_request_from_json`]
//!   also check that the method answers as the caller will read it: once, or as a stream.
//! - [`JsonResponseSeed`] reads a response enum's bytes back into JSON, [`JsonRequestSeed`] a
//!   request's, and [`TypeSeed`] a single value of a given [`Type`].
//!
//! The JSON conventions, and the limits on what is read, are documented once, on
//! [`JsonRequest`].

mod error;
mod from_wire;
mod to_wire;
mod wire_value;

use serde::{Serialize, Serializer};

use super::{Field, ServiceSchema, Shape, Type, TypeDef, Variant};

pub use error::JsonError;
pub use from_wire::{JsonCall, JsonRequestSeed, JsonResponse, JsonResponseSeed, TypeSeed};

use wire_value::WireValue;

/// How many levels a value may nest, in JSON arguments and in bytes read from the wire: 128,
/// serde_json's own limit when parsing text.
pub const MAX_JSON_DEPTH: u32 = 128;

/// How many values of types that take no bytes on the wire (`()`, unit structs, structs of
/// those) one message read from the wire may hold, all sequences and fields together: 65,536.
/// Any other value takes at least a byte, so the frame limit bounds how many there can be;
/// these the bytes do not bound.
pub const MAX_ZERO_SIZED_ITEMS: usize = 1 << 16;

/// A request built from JSON arguments, ready for the wire.
///
/// Its `Serialize` makes the same serde calls as the request enum tarpc derives for the service
/// (`serialize_struct_variant` with the method's index, then each argument), so through bincode
/// its bytes are exactly a compiled client's. Names are left empty, since bincode does not write
/// them: serialized to any self-describing format it would be wrong. Its [`tarpc::RequestName`]
/// is the method's name.
///
/// # JSON conventions
///
/// serde_json's, so that a user who knows serde can guess them:
///
/// | type | JSON |
/// |---|---|
/// | struct | an object of its fields; unknown keys are errors |
/// | newtype struct `struct A(T)` | the `T` |
/// | tuple, tuple struct, `[T; N]` | an array of exactly that many items |
/// | `()`, unit struct | `null` |
/// | enum unit variant | `"Name"` (or `{"Name": null}`) |
/// | other variants, `Result` | `{"Name": content}`, exactly one key; `{"Ok": v}` / `{"Err": e}` |
/// | `Option<T>` | `null` or the `T`; a missing field or argument of an `Option` type is `None` |
/// | bytes | an array of integers 0 to 255 |
/// | `char` | a string of one character |
/// | map, keys strings, integers, `char`s or `bool`s (or newtype structs of one) | an object, keys written as strings |
/// | map, other keys | an array of `[key, value]` pairs |
/// | `i128`, `u128` | a number, or a decimal string (needed beyond 64 bits) |
/// | `f32`, `f64` | a number, or `"NaN"`, `"inf"`, `"-inf"` |
///
/// Every other field and argument is required.
///
/// Where the JSON read from the wire differs from what `serde_json::to_value` makes of the same
/// Rust value: 128-bit integers that do not fit 64 bits are decimal strings (serde_json refuses
/// them); NaN and infinities are the strings above (serde_json writes `null`, which could not be
/// told from `None`); an `f32` is the shortest decimal that reads back as the same `f32` (`0.1`,
/// where serde_json widens it to `0.10000000149011612`); a map whose keys cannot be object keys
/// is an array of pairs (serde_json refuses it). And as in serde_json, `Some(None)` is `null`, so
/// it reads back as `None`: JSON has one `null`.
///
/// Maps written as objects are sent in key order, as a `BTreeMap` sends them (so the bytes match
/// a `BTreeMap`'s; a `HashMap` accepts any order); two keys that mean the same (`"1"`, `"01"`)
/// are an error. Pairs are sent in the order given.
///
/// # Limits
///
/// Both directions nest at most [`MAX_JSON_DEPTH`] levels, counting every type they pass
/// through (an `Option`, a struct, a newtype, a sequence, ...), so a recursive type with deep
/// data, or a newtype the peer's schema says wraps itself, fails instead of exhausting the
/// stack. Reading from the wire never reserves room for more than a few items whatever length
/// the bytes claim, and a message holds at most [`MAX_ZERO_SIZED_ITEMS`] values that take no
/// bytes on the wire (`()`, unit structs), since no frame size bounds those.
///
/// # Example
///
/// ```
/// use rpc_core::schema::SchemaBuilder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = SchemaBuilder::new("kv");
/// let key = builder.trace::<String>()?;
/// let value = builder.trace::<Option<String>>()?;
/// builder.method("get", "", vec![("key", key)], value);
/// let schema = builder.finish();
///
/// let request = schema.request_from_json("get", &serde_json::json!({ "key": "k" }))?;
///
/// #[derive(serde::Serialize)]
/// enum KvRequest {
///     Get { key: String },
/// }
/// let compiled = KvRequest::Get { key: "k".into() };
/// assert_eq!(bincode::serialize(&request)?, bincode::serialize(&compiled)?);
///
/// let err = schema.request_from_json("get", &serde_json::json!({ "key": 3 })).unwrap_err();
/// assert_eq!(err.to_string(), "argument `key`: expected a string, found the number 3");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRequest {
    method: String,
    index: u32,
    args: Vec<WireValue>,
}

impl JsonRequest {
    /// The method's name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The method's index: its variant in the request enum.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Serialize for JsonRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        wire_value::struct_variant(serializer, self.index, &self.args)
    }
}

impl tarpc::RequestName for JsonRequest {
    fn name(&self) -> &str {
        &self.method
    }
}

impl ServiceSchema {
    /// The request calling `method` with `args`, a JSON object of named arguments (`null` or
    /// `{}` for none), checked whole against the method's argument types first: the error names
    /// the first problem, its path and the type expected. See [`JsonRequest`] for how each type is
    /// written in JSON, and an example.
    pub fn request_from_json(
        &self,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<JsonRequest, JsonError> {
        let Some((index, schema)) = self.method(method) else {
            return Err(JsonError::UnknownMethod {
                service: self.name.clone(),
                method: error::clipped(method),
                known: error::listed(self.methods.iter().map(|m| m.name.as_str()), "no methods"),
            });
        };
        let args = to_wire::ToWire::new(self).args(schema, args)?;
        Ok(JsonRequest {
            method: schema.name.clone(),
            index,
            args,
        })
    }

    /// [`ServiceSchema::request_from_json`] for a caller that reads one answer: a streaming
    /// method is refused ([`JsonError::StreamingMethod`]) before its arguments are looked at,
    /// since reading one of its answers would leave the stream running on the server.
    pub fn call_request_from_json(
        &self,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<JsonRequest, JsonError> {
        self.request_of_kind(method, args, false)
    }

    /// [`ServiceSchema::request_from_json`] for a caller that reads a stream of answers: a
    /// method that answers once is refused ([`JsonError::NotStreaming`]) before its arguments
    /// are looked at, since its one answer is no stream event.
    pub fn stream_request_from_json(
        &self,
        method: &str,
        args: &serde_json::Value,
    ) -> Result<JsonRequest, JsonError> {
        self.request_of_kind(method, args, true)
    }

    fn request_of_kind(
        &self,
        method: &str,
        args: &serde_json::Value,
        streaming: bool,
    ) -> Result<JsonRequest, JsonError> {
        if let Some((_, found)) = self.method(method) {
            let service = self.name.clone();
            let method = found.name.clone();
            let signature = found.signature();
            match (found.streaming, streaming) {
                (true, false) => {
                    return Err(JsonError::StreamingMethod {
                        service,
                        method,
                        signature,
                    });
                }
                (false, true) => {
                    return Err(JsonError::NotStreaming {
                        service,
                        method,
                        signature,
                    });
                }
                _ => {}
            }
        }
        self.request_from_json(method, args)
    }

    /// The definition of the named type `name`, if the schema has it.
    fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Whether a map with keys of type `key` is written as a JSON object (keys as strings) rather
    /// than an array of pairs: keys that are strings, integers, `char`s or `bool`s, or newtype
    /// structs of those, as serde_json writes them.
    fn keys_as_strings(&self, key: &Type) -> bool {
        let mut key = key;
        // A bounded walk: a newtype the schema says wraps itself must not loop.
        for _ in 0..8 {
            match key {
                Type::Named(name) => match self.type_def(name) {
                    Some(TypeDef::Struct(Shape::Newtype(inner))) => key = inner,
                    _ => return false,
                },
                other => return int_range(other).is_some() || key_is_text(other),
            }
        }
        false
    }
}

fn key_is_text(ty: &Type) -> bool {
    matches!(ty, Type::Str | Type::Char | Type::Bool)
}

/// What a struct or an enum variant holds, borrowed: a [`Shape`], or a `Result` variant.
#[derive(Debug, Clone, Copy)]
enum Content<'s> {
    Unit,
    Newtype(&'s Type),
    Tuple(&'s [Type]),
    Struct(&'s [Field]),
}

impl<'s> From<&'s Shape> for Content<'s> {
    fn from(shape: &'s Shape) -> Self {
        match shape {
            Shape::Unit => Content::Unit,
            Shape::Newtype(ty) => Content::Newtype(ty),
            Shape::Tuple(types) => Content::Tuple(types),
            Shape::Struct(fields) => Content::Struct(fields),
        }
    }
}

/// The variants of an enum, or of a `Result`.
#[derive(Debug, Clone, Copy)]
enum Variants<'s> {
    Enum(&'s [Variant]),
    Result { ok: &'s Type, err: &'s Type },
}

impl<'s> Variants<'s> {
    /// The variant with this wire index: its name and content.
    fn by_index(self, index: u32) -> Option<(&'s str, Content<'s>)> {
        match self {
            Variants::Enum(variants) => variants
                .iter()
                .find(|v| v.index == index)
                .map(|v| (v.name.as_str(), Content::from(&v.shape))),
            Variants::Result { ok, .. } if index == 0 => Some(("Ok", Content::Newtype(ok))),
            Variants::Result { err, .. } if index == 1 => Some(("Err", Content::Newtype(err))),
            Variants::Result { .. } => None,
        }
    }

    /// The variant with this name: its wire index, name and content.
    fn by_name(self, name: &str) -> Option<(u32, &'s str, Content<'s>)> {
        match self {
            Variants::Enum(variants) => variants
                .iter()
                .find(|v| v.name == name)
                .map(|v| (v.index, v.name.as_str(), Content::from(&v.shape))),
            Variants::Result { ok, err } => match name {
                "Ok" => Some((0, "Ok", Content::Newtype(ok))),
                "Err" => Some((1, "Err", Content::Newtype(err))),
                _ => None,
            },
        }
    }

    /// Each variant's name and content, in wire order.
    fn all(self) -> Vec<(&'s str, Content<'s>)> {
        match self {
            Variants::Enum(variants) => variants
                .iter()
                .map(|v| (v.name.as_str(), Content::from(&v.shape)))
                .collect(),
            Variants::Result { ok, err } => {
                vec![("Ok", Content::Newtype(ok)), ("Err", Content::Newtype(err))]
            }
        }
    }
}

/// An integer type's range, and how a value in it becomes a [`WireValue`].
struct IntRange {
    min: i128,
    max: u128,
    /// Builds the value, once it is known to be in range (and at most `i128::MAX`).
    wire: fn(i128) -> WireValue,
}

/// The range of an integer type; `None` for any other type.
fn int_range(ty: &Type) -> Option<IntRange> {
    let (min, max, wire): (i128, u128, fn(i128) -> WireValue) = match ty {
        Type::I8 => (i8::MIN.into(), i8::MAX as u128, |v| WireValue::I8(v as i8)),
        Type::I16 => (i16::MIN.into(), i16::MAX as u128, |v| {
            WireValue::I16(v as i16)
        }),
        Type::I32 => (i32::MIN.into(), i32::MAX as u128, |v| {
            WireValue::I32(v as i32)
        }),
        Type::I64 => (i64::MIN.into(), i64::MAX as u128, |v| {
            WireValue::I64(v as i64)
        }),
        Type::I128 => (i128::MIN, i128::MAX as u128, WireValue::I128),
        Type::U8 => (0, u8::MAX.into(), |v| WireValue::U8(v as u8)),
        Type::U16 => (0, u16::MAX.into(), |v| WireValue::U16(v as u16)),
        Type::U32 => (0, u32::MAX.into(), |v| WireValue::U32(v as u32)),
        Type::U64 => (0, u64::MAX.into(), |v| WireValue::U64(v as u64)),
        Type::U128 => (0, u128::MAX, |v| WireValue::U128(v as u128)),
        _ => return None,
    };
    Some(IntRange { min, max, wire })
}

#[cfg(test)]
pub(super) mod tests;
