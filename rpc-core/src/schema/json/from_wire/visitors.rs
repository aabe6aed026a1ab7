//! The visitors that turn each serde shape bincode hands over into JSON: items (tuples,
//! structs, sequences, arrays), maps, enums, a request or response enum, and scalars.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde_json::{Map, Value};

use super::stream_event::StreamEventSeed;
use super::{PREALLOCATED_ITEMS, Reader, ValueSeed};
use crate::schema::json::{Content, MAX_ZERO_SIZED_ITEMS, Variants};
use crate::schema::{Field, Type};

/// Which items a sequence-shaped value holds.
#[derive(Clone, Copy)]
pub(super) enum Items<'s> {
    /// A tuple's: one of each type, read into an array.
    Listed(&'s [Type]),
    /// A struct's: one per field, read into an object.
    Fields(&'s [Field]),
    /// A sequence's or an array's: any number (or exactly this many) of one type.
    Repeat(&'s Type, Option<usize>),
}

pub(super) struct ItemsVisitor<'r, 's> {
    pub(super) reader: &'r Reader<'s>,
    pub(super) depth: u32,
    pub(super) items: Items<'s>,
}

impl<'de> Visitor<'de> for ItemsVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.items {
            Items::Listed(types) => write!(f, "{} items", types.len()),
            Items::Fields(fields) => write!(f, "{} fields", fields.len()),
            Items::Repeat(_, Some(len)) => write!(f, "{len} items"),
            Items::Repeat(_, None) => f.write_str("a sequence"),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let reader = self.reader;
        match self.items {
            Items::Listed(types) => {
                let mut out = Vec::with_capacity(types.len().min(PREALLOCATED_ITEMS));
                for (i, ty) in types.iter().enumerate() {
                    let item = seq.next_element_seed(reader.seed(ty, self.depth))?;
                    out.push(item.ok_or_else(|| A::Error::invalid_length(i, &self))?);
                }
                Ok(Value::Array(out))
            }
            Items::Fields(fields) => {
                let mut out = Map::new();
                for (i, field) in fields.iter().enumerate() {
                    let item = seq.next_element_seed(reader.seed(&field.ty, self.depth))?;
                    let item = item.ok_or_else(|| A::Error::invalid_length(i, &self))?;
                    out.insert(field.name.clone(), item);
                }
                Ok(Value::Object(out))
            }
            Items::Repeat(ty, len) => {
                let claimed = seq.size_hint();
                let limit = reader.takes_no_bytes(ty).then_some(MAX_ZERO_SIZED_ITEMS);
                too_many::<A::Error>(claimed, limit)?;
                let mut out = Vec::with_capacity(claimed.unwrap_or(0).min(PREALLOCATED_ITEMS));
                while let Some(item) = seq.next_element_seed(reader.seed(ty, self.depth))? {
                    too_many::<A::Error>(Some(out.len() + 1), limit)?;
                    out.push(item);
                }
                match len {
                    Some(len) if out.len() != len => {
                        Err(A::Error::invalid_length(out.len(), &self))
                    }
                    _ => Ok(Value::Array(out)),
                }
            }
        }
    }
}

/// An error if `count` items are more than `limit` (of items that take no bytes).
fn too_many<E: serde::de::Error>(count: Option<usize>, limit: Option<usize>) -> Result<(), E> {
    match (count, limit) {
        (Some(count), Some(limit)) if count > limit => Err(E::custom(format_args!(
            "{count} items that take no bytes are more than {limit}"
        ))),
        _ => Ok(()),
    }
}

pub(super) struct MapVisitor<'r, 's> {
    pub(super) reader: &'r Reader<'s>,
    pub(super) depth: u32,
    pub(super) key: &'s Type,
    pub(super) value: &'s Type,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let reader = self.reader;
        let claimed = map.size_hint();
        let limit = (reader.takes_no_bytes(self.key) && reader.takes_no_bytes(self.value))
            .then_some(MAX_ZERO_SIZED_ITEMS);
        too_many::<A::Error>(claimed, limit)?;
        let as_object = reader.schema.keys_as_strings(self.key);
        let mut object = Map::new();
        let mut pairs = Vec::with_capacity(claimed.unwrap_or(0).min(PREALLOCATED_ITEMS));
        let mut count = 0;
        while let Some(key) = map.next_key_seed(reader.seed(self.key, self.depth))? {
            let value = map.next_value_seed(reader.seed(self.value, self.depth))?;
            count += 1;
            too_many::<A::Error>(Some(count), limit)?;
            if !as_object {
                pairs.push(Value::Array(vec![key, value]));
                continue;
            }
            let key = match key {
                Value::String(text) => text,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(A::Error::custom(format_args!(
                        "a map key of type {} read as {other}",
                        self.key
                    )));
                }
            };
            object.insert(key, value);
        }
        Ok(if as_object {
            Value::Object(object)
        } else {
            Value::Array(pairs)
        })
    }
}

/// An enum's (or a `Result`'s) value: `"Name"` for a unit variant, else `{"Name": content}`.
pub(super) struct EnumVisitor<'r, 's> {
    pub(super) reader: &'r Reader<'s>,
    pub(super) depth: u32,
    pub(super) ty: &'s Type,
    pub(super) variants: Variants<'s>,
}

impl<'de> Visitor<'de> for EnumVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a variant of {}", self.ty)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (index, variant) = data.variant_seed(VariantIndex)?;
        let Some((name, content)) = self.variants.by_index(index) else {
            return Err(A::Error::custom(format_args!(
                "variant index {index} is out of range for {} ({} variants)",
                self.ty,
                self.variants.all().len()
            )));
        };
        let value = content_of(variant, content, self.reader, self.depth)?;
        Ok(match value {
            None => Value::String(name.to_owned()),
            Some(value) => Value::Object(Map::from_iter([(name.to_owned(), value)])),
        })
    }
}

/// A variant's content: `None` for a unit variant.
pub(super) fn content_of<'de, 's, A: VariantAccess<'de>>(
    variant: A,
    content: Content<'s>,
    reader: &Reader<'s>,
    depth: u32,
) -> Result<Option<Value>, A::Error> {
    let items = |items| ItemsVisitor {
        reader,
        depth,
        items,
    };
    Ok(Some(match content {
        Content::Unit => {
            variant.unit_variant()?;
            return Ok(None);
        }
        Content::Newtype(ty) => variant.newtype_variant_seed(reader.seed(ty, depth))?,
        Content::Tuple(types) => variant.tuple_variant(types.len(), items(Items::Listed(types)))?,
        // bincode's `struct_variant` is `tuple_variant(fields.len())`, as for structs above.
        Content::Struct(fields) => {
            variant.tuple_variant(fields.len(), items(Items::Fields(fields)))?
        }
    }))
}

/// A request or response enum: the method's index, then its arguments or its result.
pub(super) struct MethodVisitor<'r, 's> {
    pub(super) reader: &'r Reader<'s>,
    pub(super) request: bool,
}

impl<'de> Visitor<'de> for MethodVisitor<'_, '_> {
    type Value = (u32, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a method of {}", self.reader.schema.name)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(u32, Value), A::Error> {
        let (index, variant) = data.variant_seed(VariantIndex)?;
        let schema = self.reader.schema;
        let Some(method) = schema.methods.get(index as usize) else {
            return Err(A::Error::custom(format_args!(
                "method index {index} is out of range: {} has {} methods",
                schema.name,
                schema.methods.len()
            )));
        };
        if !self.request && method.streaming {
            // The response variant carries a `StreamEvent` of the method's items.
            let event = StreamEventSeed {
                reader: self.reader,
                item: &method.result,
                depth: 0,
            };
            return Ok((index, variant.newtype_variant_seed(event)?));
        }
        let content = if self.request {
            Content::Struct(&method.args)
        } else {
            Content::Newtype(&method.result)
        };
        let value = content_of(variant, content, self.reader, 0)?;
        Ok((index, value.unwrap_or(Value::Null)))
    }
}

/// A variant's index, as bincode gives it: a `u32`.
pub(super) struct VariantIndex;

impl<'de> DeserializeSeed<'de> for VariantIndex {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for VariantIndex {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant index")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::custom(format_args!("variant index {v} is too large")))
    }
}

pub(super) struct OptionVisitor<'r, 's>(pub(super) ValueSeed<'r, 's>);

impl<'de> Visitor<'de> for OptionVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an {}", self.0.ty)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.0.deserialize(deserializer)
    }
}

pub(super) struct NewtypeVisitor<'r, 's>(pub(super) ValueSeed<'r, 's>);

impl<'de> Visitor<'de> for NewtypeVisitor<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a newtype struct of {}", self.0.ty)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.0.deserialize(de)
    }
}

/// Any scalar, as bincode hands it over (it calls the visit method for the type asked for).
pub(super) struct Scalar;

impl Visitor<'_> for Scalar {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    /// A number if it fits 64 bits, else a decimal string (JSON numbers beyond 64 bits lose
    /// precision in most readers).
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => v.into(),
            (_, Ok(v)) => v.into(),
            _ => v.to_string().into(),
        })
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => v.into(),
            Err(_) => v.to_string().into(),
        })
    }

    /// The shortest decimal that reads back as the same `f32` (`0.1`, not the `f64` nearest
    /// to it, `0.10000000149011612`).
    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(match v.to_string().parse::<f64>() {
            Ok(wide) if v.is_finite() => float(wide),
            _ => float(v.into()),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Array(v.iter().map(|b| Value::from(*b)).collect()))
    }
}

/// A float as JSON: a number, or `"NaN"`, `"inf"`, `"-inf"`, which JSON numbers cannot be.
fn float(v: f64) -> Value {
    match serde_json::Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => "NaN".into(),
        None if v > 0.0 => "inf".into(),
        None => "-inf".into(),
    }
}
