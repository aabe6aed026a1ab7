//! [`ToWire`]: JSON arguments checked against their schema types and turned into
//! [`WireValue`]s, the first problem reported with its path.

use serde_json::{Map, Value};

use super::error::{JsonError, Path, Step, clipped, found, listed, quoted};
use super::{Content, MAX_JSON_DEPTH, Variants, WireValue, int_range};
use crate::schema::{Field, MethodSchema, ServiceSchema, Shape, Type, TypeDef};

mod describe;
mod scalars;

use scalars::{Int, Overflow, bytes, in_range, one_char, out_of_range, parse_int};

/// Converts JSON to [`WireValue`]s, reading type definitions from `schema`.
pub(super) struct ToWire<'s> {
    schema: &'s ServiceSchema,
}

/// The order a map key sorts in, as its Rust type orders it (so object-form maps go out in
/// `BTreeMap` order). All keys of one map are of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    Int(Int),
    Text(&'a str),
    Char(char),
    Bool(bool),
}

/// A struct's or a variant's content, converted: what it becomes depends on which of the two.
enum Parts {
    Unit,
    Newtype(WireValue),
    Tuple(Vec<WireValue>),
    Struct(Vec<WireValue>),
}

impl<'s> ToWire<'s> {
    pub(super) fn new(schema: &'s ServiceSchema) -> Self {
        ToWire { schema }
    }

    /// `method`'s arguments from `args`, a JSON object of them (or null), in wire order.
    pub(super) fn args(
        &self,
        method: &'s MethodSchema,
        args: &Value,
    ) -> Result<Vec<WireValue>, JsonError> {
        let none = Map::new();
        let given = match args {
            Value::Null => &none,
            Value::Object(given) => given,
            other => {
                return Err(JsonError::NotAnObject {
                    found: found(other),
                    signature: method.signature(),
                });
            }
        };
        if let Some(name) = given
            .keys()
            .find(|name| !method.args.iter().any(|arg| arg.name == **name))
        {
            return Err(JsonError::UnknownArgument {
                name: clipped(name),
                signature: method.signature(),
            });
        }
        method
            .args
            .iter()
            .map(|arg| match given.get(&arg.name) {
                Some(value) => self.value(&arg.ty, value, &Path::arg(&arg.name), 0),
                None if matches!(arg.ty, Type::Option(_)) => Ok(WireValue::None),
                None => Err(JsonError::MissingArgument {
                    name: arg.name.clone(),
                    signature: method.signature(),
                }),
            })
            .collect()
    }

    /// `value` as a `ty`, `depth` levels in.
    ///
    /// Only the types that nest are handled here, the others in [`Self::scalar`], and each kind
    /// of container in a function of its own: this function is on the stack once per level, and
    /// an unoptimized build gives it room for everything any of its branches holds.
    fn value(
        &self,
        ty: &'s Type,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<WireValue, JsonError> {
        if depth >= MAX_JSON_DEPTH {
            return Err(JsonError::TooDeep {
                path: path.to_string(),
            });
        }
        let depth = depth + 1;
        match (ty, value) {
            (Type::Option(_), Value::Null) => Ok(WireValue::None),
            (Type::Option(inner), _) => {
                let inner = self.value(inner, value, path, depth)?;
                Ok(WireValue::Some(Box::new(inner)))
            }
            (Type::Seq(item), Value::Array(items)) => {
                let items = self.each(std::iter::repeat(&**item), items, path, depth)?;
                Ok(WireValue::Seq(items))
            }
            (Type::Map { key, value: item }, _) => self.map(ty, key, item, value, path, depth),
            (Type::Tuple(types), Value::Array(items)) if types.len() == items.len() => Ok(
                WireValue::Tuple(self.each(types.iter(), items, path, depth)?),
            ),
            (Type::Array { item, len }, Value::Array(items)) if *len == items.len() as u64 => {
                let items = self.each(std::iter::repeat(&**item), items, path, depth)?;
                Ok(WireValue::Tuple(items))
            }
            (Type::Result { ok, err }, _) => {
                self.variant(ty, Variants::Result { ok, err }, value, path, depth)
            }
            (Type::Named(name), _) => self.named(ty, name, value, path, depth),
            _ => self.scalar(ty, value, path),
        }
    }

    /// A value of a type that does not nest (or of one that does, but not given as JSON that
    /// could hold it: the error).
    fn scalar(&self, ty: &Type, value: &Value, path: &Path<'_>) -> Result<WireValue, JsonError> {
        if let Some(range) = int_range(ty) {
            return self.integer(ty, &range, value, path);
        }
        Ok(match (ty, value) {
            (Type::Unit, Value::Null) => WireValue::Unit,
            (Type::Bool, Value::Bool(b)) => WireValue::Bool(*b),
            (Type::F32 | Type::F64, _) => self.float(ty, value, path)?,
            (Type::Char, Value::String(text)) => {
                WireValue::Char(one_char(text).ok_or_else(|| self.wrong(ty, value, path))?)
            }
            (Type::Str, Value::String(text)) => WireValue::Str(text.clone()),
            (Type::Bytes, Value::Array(items)) => WireValue::Bytes(bytes(items, path)?),
            _ => return Err(self.wrong(ty, value, path)),
        })
    }

    /// A value of the struct or enum `name`.
    fn named(
        &self,
        ty: &Type,
        name: &str,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<WireValue, JsonError> {
        Ok(match self.schema.type_def(name) {
            None => {
                return Err(JsonError::UndefinedType {
                    path: path.to_string(),
                    name: name.to_owned(),
                });
            }
            Some(TypeDef::Enum(variants)) => {
                return self.variant(ty, Variants::Enum(variants), value, path, depth);
            }
            Some(TypeDef::Struct(shape)) => {
                match self.parts(ty, shape.into(), value, path, depth)? {
                    Parts::Unit => WireValue::UnitStruct,
                    Parts::Newtype(inner) => WireValue::NewtypeStruct(Box::new(inner)),
                    Parts::Tuple(items) => WireValue::TupleStruct(items),
                    Parts::Struct(fields) => WireValue::Struct(fields),
                }
            }
        })
    }

    /// Items of an array, each of its own type.
    ///
    /// Here and in [`Self::fields`], plain loops rather than iterator chains: an unoptimized
    /// build gives each adapter a stack frame, on every level of a deep value.
    fn each(
        &self,
        types: impl Iterator<Item = &'s Type>,
        items: &[Value],
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Vec<WireValue>, JsonError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, (ty, item)) in types.zip(items).enumerate() {
            out.push(self.value(ty, item, &path.then(Step::Index(i)), depth)?);
        }
        Ok(out)
    }

    /// A struct's or a variant's content; `ty` names it in errors.
    fn parts(
        &self,
        ty: &Type,
        content: Content<'s>,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Parts, JsonError> {
        Ok(match (content, value) {
            (Content::Unit, Value::Null) => Parts::Unit,
            (Content::Newtype(inner), _) => Parts::Newtype(self.value(inner, value, path, depth)?),
            (Content::Tuple(types), Value::Array(items)) if types.len() == items.len() => {
                Parts::Tuple(self.each(types.iter(), items, path, depth)?)
            }
            (Content::Struct(fields), Value::Object(given)) => {
                Parts::Struct(self.fields(fields, given, path, depth)?)
            }
            _ => return Err(self.wrong_content(ty, content, value, path)),
        })
    }

    /// A struct's fields from an object, in declaration order.
    fn fields(
        &self,
        fields: &'s [Field],
        given: &Map<String, Value>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Vec<WireValue>, JsonError> {
        if let Some(name) = given
            .keys()
            .find(|name| !fields.iter().any(|f| f.name == **name))
        {
            return Err(JsonError::UnknownField {
                path: path.to_string(),
                field: clipped(name),
                known: listed(fields.iter().map(|f| f.name.as_str()), "none"),
            });
        }
        let mut out = Vec::with_capacity(fields.len());
        for field in fields {
            out.push(match given.get(&field.name) {
                Some(value) => {
                    let at = path.then(Step::Field(&field.name));
                    self.value(&field.ty, value, &at, depth)?
                }
                None if matches!(field.ty, Type::Option(_)) => WireValue::None,
                None => {
                    return Err(JsonError::MissingField {
                        path: path.to_string(),
                        field: field.name.clone(),
                        ty: field.ty.to_string(),
                    });
                }
            });
        }
        Ok(out)
    }

    /// An enum value (or a `Result`): `"Name"` for a unit variant, `{"Name": content}`.
    fn variant(
        &self,
        ty: &Type,
        variants: Variants<'s>,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<WireValue, JsonError> {
        let (name, content_value) = match value {
            Value::String(name) => (name, None),
            Value::Object(given) if given.len() == 1 => match given.iter().next() {
                Some((name, content)) => (name, Some(content)),
                None => return Err(self.wrong(ty, value, path)),
            },
            _ => return Err(self.wrong(ty, value, path)),
        };
        let Some((index, name, content)) = variants.by_name(name) else {
            return Err(self.unknown_variant(ty, variants, name, path));
        };
        let inner = path.then(Step::Variant(name));
        Ok(match (content, content_value) {
            (Content::Unit, None | Some(Value::Null)) => WireValue::UnitVariant(index),
            (_, None) => return Err(self.content_missing(ty, name, content, path)),
            (content, Some(v)) => match self.parts(ty, content, v, &inner, depth)? {
                Parts::Unit => WireValue::UnitVariant(index),
                Parts::Newtype(inner) => WireValue::NewtypeVariant(index, Box::new(inner)),
                Parts::Tuple(items) => WireValue::TupleVariant(index, items),
                Parts::Struct(fields) => WireValue::StructVariant(index, fields),
            },
        })
    }

    /// A map: an object when its keys can be strings, otherwise an array of `[key, value]`.
    fn map(
        &self,
        ty: &Type,
        key: &'s Type,
        item: &'s Type,
        value: &Value,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<WireValue, JsonError> {
        let as_object = self.schema.keys_as_strings(key);
        let mut entries = Vec::new();
        match value {
            Value::Object(given) if as_object => {
                let mut keyed = Vec::with_capacity(given.len());
                for (text, v) in given {
                    let at = path.then(Step::Key(text));
                    let (order, k) = self.key(key, text, &at, depth)?;
                    keyed.push((order, text, k, self.value(item, v, &at, depth)?));
                }
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                if let Some(pair) = keyed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
                    return Err(JsonError::Invalid {
                        path: path.to_string(),
                        problem: format!(
                            "the keys {} and {} are the same {key}",
                            quoted(pair[0].1),
                            quoted(pair[1].1)
                        ),
                    });
                }
                entries.extend(keyed.into_iter().map(|(_, _, k, v)| (k, v)));
            }
            Value::Array(pairs) if !as_object => {
                for (i, pair) in pairs.iter().enumerate() {
                    let at = path.then(Step::Index(i));
                    let (k, v) = match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => (k, v),
                        _ => {
                            return Err(JsonError::Invalid {
                                path: at.to_string(),
                                problem: format!(
                                    "expected a [key, value] pair, found {}",
                                    found(pair)
                                ),
                            });
                        }
                    };
                    let k = self.value(key, k, &at.then(Step::Index(0)), depth)?;
                    let v = self.value(item, v, &at.then(Step::Index(1)), depth)?;
                    entries.push((k, v));
                }
            }
            _ => return Err(self.wrong(ty, value, path)),
        }
        Ok(WireValue::Map(entries))
    }

    /// A map key written as an object key: `text` as a `ty`, with the order it sorts in.
    fn key<'a>(
        &self,
        ty: &'s Type,
        text: &'a str,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(SortKey<'a>, WireValue), JsonError> {
        if depth >= MAX_JSON_DEPTH {
            return Err(JsonError::TooDeep {
                path: path.to_string(),
            });
        }
        let invalid = |what: &str| JsonError::Invalid {
            path: path.to_string(),
            problem: format!("expected {what} key ({ty}), found the key {}", quoted(text)),
        };
        if let Some(range) = int_range(ty) {
            let n = parse_int(text).map_err(|overflow| match overflow {
                Overflow::Yes => out_of_range(&clipped(text), ty, &range, path),
                Overflow::No => invalid("an integer"),
            })?;
            return Ok((
                SortKey::Int(n),
                in_range(n, ty, &range, &clipped(text), path)?,
            ));
        }
        Ok(match ty {
            Type::Str => (SortKey::Text(text), WireValue::Str(text.to_owned())),
            Type::Char => {
                let c = one_char(text).ok_or_else(|| invalid("a one-character"))?;
                (SortKey::Char(c), WireValue::Char(c))
            }
            Type::Bool => match text {
                "true" => (SortKey::Bool(true), WireValue::Bool(true)),
                "false" => (SortKey::Bool(false), WireValue::Bool(false)),
                _ => return Err(invalid("a true or false")),
            },
            Type::Named(name) => match self.schema.type_def(name) {
                Some(TypeDef::Struct(Shape::Newtype(inner))) => {
                    let (order, inner) = self.key(inner, text, path, depth + 1)?;
                    (order, WireValue::NewtypeStruct(Box::new(inner)))
                }
                _ => return Err(invalid("a string")),
            },
            _ => return Err(invalid("a string")),
        })
    }
}
