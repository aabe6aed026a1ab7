//! Seeds that read values from the wire into JSON, guided by a schema: [`JsonResponseSeed`],
//! [`JsonRequestSeed`] and [`TypeSeed`].
//!
//! bincode is not self-describing: the reader must ask for exactly what the writer wrote, so
//! each type asks for its own serde shape (`deserialize_option`, `deserialize_seq`, ...), and
//! the JSON follows the conventions documented on [`super::JsonRequest`]. These seeds are for
//! the wire format (bincode) only: a self-describing format would be read more loosely than the
//! schema says.
//!
//! The bytes come from the peer, so nothing here trusts them: depth is counted on every level
//! and limited to [`MAX_JSON_DEPTH`], no length read from the bytes reserves more than
//! [`PREALLOCATED_ITEMS`], an index beyond the methods or an enum's variants is an error, and
//! items that take no bytes are limited to [`MAX_ZERO_SIZED_ITEMS`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, Error as _};
use serde_json::Value;

use super::{MAX_JSON_DEPTH, MAX_ZERO_SIZED_ITEMS, Variants};
use crate::schema::{ServiceSchema, Shape, Type, TypeDef};

mod stream_event;
mod visitors;

use visitors::{
    EnumVisitor, Items, ItemsVisitor, MapVisitor, MethodVisitor, NewtypeVisitor, OptionVisitor,
    Scalar,
};

/// The most items reserved ahead for a sequence or map, whatever length the bytes claim.
const PREALLOCATED_ITEMS: usize = 256;

/// Reads a service's response enum (one newtype variant per method, holding its result) into
/// the method's index and its result as JSON.
///
/// A streaming method's variant holds one [`StreamEvent`](crate::StreamEvent) of its items
/// instead, read as serde_json writes one: `{"Item": item}`, `{"Lagged": {"missed": n}}` or
/// `"End"`; any other event variant is an error.
///
/// ```
/// use std::sync::Arc;
/// use bincode::Options;
/// use rpc_core::schema::{JsonResponseSeed, SchemaBuilder};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = SchemaBuilder::new("kv");
/// let key = builder.trace::<String>()?;
/// let value = builder.trace::<Option<String>>()?;
/// builder.method("get", "", vec![("key", key)], value);
/// let seed = JsonResponseSeed { schema: Arc::new(builder.finish()) };
///
/// #[derive(serde::Serialize)]
/// enum KvResponse {
///     Get(Option<String>),
/// }
/// let bytes = bincode::serialize(&KvResponse::Get(Some("v".into())))?;
/// let options = bincode::DefaultOptions::new().with_fixint_encoding();
/// let response = options.deserialize_seed(seed, &bytes)?;
/// assert_eq!(response.method, 0);
/// assert_eq!(response.value, serde_json::json!("v"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JsonResponseSeed {
    /// The service's schema.
    pub schema: Arc<ServiceSchema>,
}

/// A response read by a [`JsonResponseSeed`].
#[derive(Debug, Clone, PartialEq)]
pub struct JsonResponse {
    /// The method's index in the schema.
    pub method: u32,
    /// Its result; for a streaming method, the event (see [`JsonResponseSeed`]).
    pub value: Value,
}

/// Reads a service's request enum (one struct variant per method, holding its arguments) into
/// the method's index and its arguments as a JSON object: what a server logging calls, or a
/// test, reads a [`super::JsonRequest`]'s bytes with. Arguments of an `Option` type that are
/// `None` appear as `null`.
#[derive(Debug, Clone)]
pub struct JsonRequestSeed {
    /// The service's schema.
    pub schema: Arc<ServiceSchema>,
}

/// A request read by a [`JsonRequestSeed`].
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCall {
    /// The method's index in the schema.
    pub method: u32,
    /// The arguments, a JSON object by name.
    pub args: Value,
}

/// Reads one value of type `ty` into JSON.
#[derive(Debug, Clone, Copy)]
pub struct TypeSeed<'a> {
    /// The schema that defines the types `ty` names.
    pub schema: &'a ServiceSchema,
    /// The type to read.
    pub ty: &'a Type,
}

impl<'de> DeserializeSeed<'de> for JsonResponseSeed {
    type Value = JsonResponse;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonResponse, D::Error> {
        let reader = Reader::new(&self.schema);
        let visitor = MethodVisitor {
            reader: &reader,
            request: false,
        };
        let (method, value) = deserializer.deserialize_enum("", &[], visitor)?;
        Ok(JsonResponse { method, value })
    }
}

impl<'de> DeserializeSeed<'de> for JsonRequestSeed {
    type Value = JsonCall;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonCall, D::Error> {
        let reader = Reader::new(&self.schema);
        let visitor = MethodVisitor {
            reader: &reader,
            request: true,
        };
        let (method, args) = deserializer.deserialize_enum("", &[], visitor)?;
        Ok(JsonCall { method, args })
    }
}

impl<'de> DeserializeSeed<'de> for TypeSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let reader = Reader::new(self.schema);
        reader.seed(self.ty, 0).deserialize(deserializer)
    }
}

/// What one read shares: the schema, which named types take no bytes on the wire, and how many
/// values of those it has made.
struct Reader<'s> {
    schema: &'s ServiceSchema,
    /// Per named type: `Some(answer)`, or `None` while it is being worked out.
    zero_sized: RefCell<HashMap<&'s str, Option<bool>>>,
    /// Values made so far that took no bytes: at most [`MAX_ZERO_SIZED_ITEMS`] per message, for
    /// nothing else bounds them (a struct of two fields of a struct of two fields ... of `()`
    /// doubles at each level and reads nothing).
    free_values: std::cell::Cell<usize>,
}

impl<'s> Reader<'s> {
    fn new(schema: &'s ServiceSchema) -> Self {
        Reader {
            schema,
            zero_sized: RefCell::new(HashMap::new()),
            free_values: std::cell::Cell::new(0),
        }
    }

    /// Counts one value of `ty` if it takes no bytes; an error past [`MAX_ZERO_SIZED_ITEMS`].
    fn count_free_value<E: serde::de::Error>(&self, ty: &'s Type) -> Result<(), E> {
        if !self.takes_no_bytes(ty) {
            return Ok(());
        }
        let made = self.free_values.get() + 1;
        if made > MAX_ZERO_SIZED_ITEMS {
            return Err(E::custom(format_args!(
                "the message holds more than {MAX_ZERO_SIZED_ITEMS} values that take no bytes"
            )));
        }
        self.free_values.set(made);
        Ok(())
    }

    fn seed<'r>(&'r self, ty: &'s Type, depth: u32) -> ValueSeed<'r, 's> {
        ValueSeed {
            reader: self,
            ty,
            depth,
        }
    }

    /// Whether a value of `ty` may take no bytes on the wire, so that the bytes cannot bound how
    /// many of them a sequence claims. When the type is too deep to tell, it may: a value that
    /// deep could not be read anyway.
    fn takes_no_bytes(&self, ty: &'s Type) -> bool {
        self.zero_sized(ty, 0).unwrap_or(true)
    }

    /// `Some(whether ty takes no bytes)`, or `None` past [`MAX_JSON_DEPTH`] levels.
    fn zero_sized(&self, ty: &'s Type, depth: u32) -> Option<bool> {
        if depth >= MAX_JSON_DEPTH {
            return None;
        }
        let all = |types: &mut dyn Iterator<Item = &'s Type>| {
            let mut answer = Some(true);
            for ty in types {
                match self.zero_sized(ty, depth + 1) {
                    Some(true) => {}
                    Some(false) => return Some(false),
                    None => answer = None,
                }
            }
            answer
        };
        match ty {
            Type::Unit => Some(true),
            Type::Tuple(types) => all(&mut types.iter()),
            Type::Array { len: 0, .. } => Some(true),
            Type::Array { item, .. } => self.zero_sized(item, depth + 1),
            Type::Named(name) => {
                let known = self.zero_sized.borrow().get(name.as_str()).copied();
                match known {
                    Some(Some(answer)) => return Some(answer),
                    // A type that holds itself has no finite value: it is read until too deep.
                    Some(None) => return Some(false),
                    None => {}
                }
                self.zero_sized.borrow_mut().insert(name, None);
                let answer = match self.schema.type_def(name) {
                    Some(TypeDef::Struct(Shape::Unit)) => Some(true),
                    Some(TypeDef::Struct(Shape::Newtype(inner))) => {
                        self.zero_sized(inner, depth + 1)
                    }
                    Some(TypeDef::Struct(Shape::Tuple(types))) => all(&mut types.iter()),
                    Some(TypeDef::Struct(Shape::Struct(fields))) => {
                        all(&mut fields.iter().map(|f| &f.ty))
                    }
                    // An enum's variant index takes 4 bytes.
                    Some(TypeDef::Enum(_)) | None => Some(false),
                };
                let mut memo = self.zero_sized.borrow_mut();
                match answer {
                    Some(answer) => memo.insert(name, Some(answer)),
                    None => memo.remove(name.as_str()),
                };
                answer
            }
            _ => Some(false),
        }
    }
}

/// Reads one value of `ty`, `depth` levels in.
#[derive(Clone, Copy)]
struct ValueSeed<'r, 's> {
    reader: &'r Reader<'s>,
    ty: &'s Type,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(D::Error::custom(format_args!(
                "a value nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        let reader = self.reader;
        reader.count_free_value::<D::Error>(self.ty)?;
        let depth = self.depth + 1;
        let items = |items| ItemsVisitor {
            reader,
            depth,
            items,
        };
        match self.ty {
            Type::Unit => de.deserialize_unit(Scalar),
            Type::Bool => de.deserialize_bool(Scalar),
            Type::I8 => de.deserialize_i8(Scalar),
            Type::I16 => de.deserialize_i16(Scalar),
            Type::I32 => de.deserialize_i32(Scalar),
            Type::I64 => de.deserialize_i64(Scalar),
            Type::I128 => de.deserialize_i128(Scalar),
            Type::U8 => de.deserialize_u8(Scalar),
            Type::U16 => de.deserialize_u16(Scalar),
            Type::U32 => de.deserialize_u32(Scalar),
            Type::U64 => de.deserialize_u64(Scalar),
            Type::U128 => de.deserialize_u128(Scalar),
            Type::F32 => de.deserialize_f32(Scalar),
            Type::F64 => de.deserialize_f64(Scalar),
            Type::Char => de.deserialize_char(Scalar),
            Type::Str => de.deserialize_str(Scalar),
            Type::Bytes => de.deserialize_bytes(Scalar),
            Type::Option(inner) => de.deserialize_option(OptionVisitor(reader.seed(inner, depth))),
            Type::Seq(item) => de.deserialize_seq(items(Items::Repeat(item, None))),
            Type::Map { key, value } => de.deserialize_map(MapVisitor {
                reader,
                depth,
                key,
                value,
            }),
            Type::Tuple(types) => de.deserialize_tuple(types.len(), items(Items::Listed(types))),
            Type::Array { item, len } => {
                let len = usize::try_from(*len)
                    .ok()
                    .filter(|len| *len <= MAX_ZERO_SIZED_ITEMS || !reader.takes_no_bytes(item))
                    .ok_or_else(|| {
                        D::Error::custom(format_args!(
                            "an array of {len} items that take no bytes is longer than {MAX_ZERO_SIZED_ITEMS}"
                        ))
                    })?;
                de.deserialize_tuple(len, items(Items::Repeat(item, Some(len))))
            }
            Type::Result { ok, err } => de.deserialize_enum(
                "Result",
                &["Ok", "Err"],
                EnumVisitor {
                    reader,
                    depth,
                    ty: self.ty,
                    variants: Variants::Result { ok, err },
                },
            ),
            Type::Named(name) => match reader.schema.type_def(name) {
                None => Err(D::Error::custom(format_args!(
                    "the schema uses type `{name}` but does not define it"
                ))),
                Some(TypeDef::Enum(variants)) => de.deserialize_enum(
                    "",
                    &[],
                    EnumVisitor {
                        reader,
                        depth,
                        ty: self.ty,
                        variants: Variants::Enum(variants),
                    },
                ),
                Some(TypeDef::Struct(Shape::Unit)) => de.deserialize_unit_struct("", Scalar),
                Some(TypeDef::Struct(Shape::Newtype(inner))) => {
                    de.deserialize_newtype_struct("", NewtypeVisitor(reader.seed(inner, depth)))
                }
                Some(TypeDef::Struct(Shape::Tuple(types))) => {
                    de.deserialize_tuple_struct("", types.len(), items(Items::Listed(types)))
                }
                // bincode reads a struct as a tuple of its fields (its `deserialize_struct` is
                // `deserialize_tuple(fields.len())`), so ask for the tuple: serde's
                // `deserialize_struct` wants `&'static` field names, which a schema's are not.
                Some(TypeDef::Struct(Shape::Struct(fields))) => {
                    de.deserialize_tuple(fields.len(), items(Items::Fields(fields)))
                }
            },
        }
    }
}
