//! Schemas: what a service's methods take and return, down to every struct and enum, in a form
//! that travels on the wire.
//!
//! A [`ServiceSchema`] lists a service's methods in wire order (a method's position is its
//! variant index in the request and response enums), each with its argument names and types and
//! its result type, plus the definition of every named type they use. The server hosts a built-in
//! `introspect` service that answers with the schema of every service it hosts; `rpc-client
//! describe` prints one, and `rpc-client call` turns JSON into exactly the bytes a compiled
//! client sends, guided by it.
//!
//! Schemas are traced, not written by hand: `#[rpc_core::service]` generates a function that
//! feeds every argument and result type to a [`SchemaBuilder`], which traces them with
//! serde-reflection. What serde sees is what the schema says, so a `#[serde(rename)]` or a
//! `serde_bytes` field is described as it really travels.
//!
//! A schema read from the wire is untrusted: its [`Type`]s nest at most [`MAX_TYPE_DEPTH`] deep
//! (deeper ones are refused while decoding, before they can exhaust the stack), and every name in
//! it is shown through [`crate::Untrusted`].

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

mod compat;
mod idl;
mod json;
mod trace;

pub use compat::breaking_changes;
pub use json::{
    JsonCall, JsonError, JsonRequest, JsonRequestSeed, JsonResponse, JsonResponseSeed,
    MAX_JSON_DEPTH, MAX_ZERO_SIZED_ITEMS, TypeSeed,
};
pub use trace::{SchemaBuilder, SchemaError};

/// How deep a [`Type`] read from the wire may nest (`Option<Vec<Option<...>>>`): 64.
pub const MAX_TYPE_DEPTH: u32 = 64;

/// One service's contract: its name, its methods in wire order, and the named types they use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSchema {
    /// The name the service is hosted under.
    pub name: String,
    /// The methods, in wire order: a method's position is its variant index.
    pub methods: Vec<MethodSchema>,
    /// Every struct and enum the methods use, directly or nested, by name.
    pub types: BTreeMap<String, TypeDef>,
}

/// One method: its name as declared, its arguments in order, and what it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodSchema {
    /// The method's name as declared in the trait (`add`, `list_all`).
    pub name: String,
    /// The arguments, in the order they travel.
    pub args: Vec<Field>,
    /// What the method returns (`Unit` for nothing); for a streaming method, its items' type.
    pub result: Type,
    /// Whether the method streams its answers: each travels as a
    /// [`StreamEvent`](crate::StreamEvent) of `result` (see [`crate::streaming`]).
    pub streaming: bool,
    /// The method's doc comment, if any (not part of the [`ServiceSchema::hash`]).
    pub doc: String,
}

/// A named value: an argument or a struct field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: Type,
}

/// The type of a value, as serde moves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Type {
    /// `()`: nothing.
    Unit,
    /// `bool`.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `i128`.
    I128,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `u128`.
    U128,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// A UTF-8 string.
    Str,
    /// A byte string (`serde_bytes::ByteBuf`, `bytes::Bytes`), sent as one block.
    Bytes,
    /// `Option<T>`.
    Option(Box<Type>),
    /// A sequence of any length (`Vec<T>`, sets).
    Seq(Box<Type>),
    /// A map (`BTreeMap<K, V>`, `HashMap<K, V>`).
    Map {
        /// The key type.
        key: Box<Type>,
        /// The value type.
        value: Box<Type>,
    },
    /// A tuple `(A, B, ...)`.
    Tuple(Vec<Type>),
    /// A fixed-size array `[T; N]`.
    Array {
        /// The element type.
        item: Box<Type>,
        /// N.
        len: u64,
    },
    /// `Result<T, E>`: `Ok` (variant 0) or `Err` (variant 1).
    Result {
        /// The `Ok` type.
        ok: Box<Type>,
        /// The `Err` type.
        err: Box<Type>,
    },
    /// A struct or enum defined in [`ServiceSchema::types`].
    Named(String),
}

/// The definition of a named type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeDef {
    /// A struct.
    Struct(Shape),
    /// An enum: its variants in wire order.
    Enum(Vec<Variant>),
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Its index on the wire.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// What it carries.
    pub shape: Shape,
}

/// What a struct or an enum variant holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Nothing: `struct A;` or `A` in `enum E { A }`.
    Unit,
    /// One unnamed value: `struct A(T);`.
    Newtype(Type),
    /// Several unnamed values: `struct A(T, U);`.
    Tuple(Vec<Type>),
    /// Named fields: `struct A { a: T }`.
    Struct(Vec<Field>),
}

/// A schema's fingerprint: equal schemas have equal hashes, and any change a client could notice
/// on the wire (a method, argument, field or variant added, removed, renamed, reordered or
/// retyped) changes it. Not a cryptographic hash: it detects mistakes, not forgeries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaHash(pub u64);

impl fmt::Display for SchemaHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl ServiceSchema {
    /// The method called `name`, with its wire index.
    pub fn method(&self, name: &str) -> Option<(u32, &MethodSchema)> {
        self.methods
            .iter()
            .enumerate()
            .find(|(_, method)| method.name == name)
            .map(|(index, method)| (index as u32, method))
    }

    /// The names of the methods, in wire order.
    pub fn method_names(&self) -> Vec<&str> {
        self.methods.iter().map(|m| m.name.as_str()).collect()
    }

    /// Checks that every name in the schema (service, methods, arguments, types, fields,
    /// variants) is printable on one line: no control, bidi or line-separator characters (see
    /// [`crate::untrusted::needs_escape`]). A schema read from a server is untrusted; a client
    /// checks it before printing it as text, so that no name can forge a line of `rpc-client
    /// list` or `describe`. Doc comments may hold newlines; they are escaped where printed.
    pub fn check_names(&self) -> Result<(), UnprintableName> {
        let check = |name: &str| {
            if name.is_empty() || crate::untrusted::has_unsafe_chars(name) {
                Err(UnprintableName(
                    crate::untrusted::Untrusted(name).to_string(),
                ))
            } else {
                Ok(())
            }
        };
        let check_type = |ty: &Type| ty.named_types().try_for_each(&check);
        let check_fields = |fields: &[Field]| {
            fields
                .iter()
                .try_for_each(|f| check(&f.name).and_then(|()| check_type(&f.ty)))
        };
        let check_shape = |shape: &Shape| match shape {
            Shape::Unit => Ok(()),
            Shape::Newtype(ty) => check_type(ty),
            Shape::Tuple(types) => types.iter().try_for_each(check_type),
            Shape::Struct(fields) => check_fields(fields),
        };
        check(&self.name)?;
        for method in &self.methods {
            check(&method.name)?;
            check_fields(&method.args)?;
            check_type(&method.result)?;
        }
        for (name, def) in &self.types {
            check(name)?;
            match def {
                TypeDef::Struct(shape) => check_shape(shape)?,
                TypeDef::Enum(variants) => variants
                    .iter()
                    .try_for_each(|v| check(&v.name).and_then(|()| check_shape(&v.shape)))?,
            }
        }
        Ok(())
    }

    /// The schema's [`SchemaHash`]: FNV-1a over its bincode encoding, doc comments left out.
    pub fn hash(&self) -> SchemaHash {
        let mut bare = self.clone();
        for method in &mut bare.methods {
            method.doc.clear();
        }
        // Encoding a schema cannot fail: it holds only strings, integers, vectors and maps.
        let bytes = crate::wire::canonical_bytes(&bare);
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        SchemaHash(hash)
    }
}

/// A name in a schema that cannot be printed on one line as it is (shown escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema holds a name that is empty or not printable on one line: `{0}`")]
pub struct UnprintableName(pub String);

impl Type {
    /// The names of the types this type refers to, at any depth.
    pub fn named_types(&self) -> impl Iterator<Item = &str> {
        let mut names = Vec::new();
        let mut todo = vec![self];
        while let Some(ty) = todo.pop() {
            match ty {
                Type::Named(name) => names.push(name.as_str()),
                Type::Option(inner) | Type::Seq(inner) => todo.push(inner),
                Type::Array { item, .. } => todo.push(item),
                Type::Map { key, value } => todo.extend([&**key, &**value]),
                Type::Result { ok, err } => todo.extend([&**ok, &**err]),
                Type::Tuple(items) => todo.extend(items),
                _ => {}
            }
        }
        names.into_iter()
    }
}

/// The same type, derived: what [`Type`]'s depth-checked `Deserialize` reads a level with.
#[derive(Deserialize)]
#[serde(rename = "Type")]
enum TypeRepr {
    Unit,
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    Option(Box<Type>),
    Seq(Box<Type>),
    Map { key: Box<Type>, value: Box<Type> },
    Tuple(Vec<Type>),
    Array { item: Box<Type>, len: u64 },
    Result { ok: Box<Type>, err: Box<Type> },
    Named(String),
}

thread_local! {
    /// How many [`Type`]s are being decoded, one inside the other, on this thread.
    static TYPE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// One level of [`Type`] nesting, counted while it is decoded.
struct DepthGuard;

impl DepthGuard {
    fn enter() -> Option<DepthGuard> {
        TYPE_DEPTH.with(|depth| {
            let now = depth.get() + 1;
            (now <= MAX_TYPE_DEPTH).then(|| {
                depth.set(now);
                DepthGuard
            })
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        TYPE_DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

impl<'de> Deserialize<'de> for Type {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _level = DepthGuard::enter().ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "a type nests deeper than {MAX_TYPE_DEPTH} levels"
            ))
        })?;
        Ok(match TypeRepr::deserialize(deserializer)? {
            TypeRepr::Unit => Type::Unit,
            TypeRepr::Bool => Type::Bool,
            TypeRepr::I8 => Type::I8,
            TypeRepr::I16 => Type::I16,
            TypeRepr::I32 => Type::I32,
            TypeRepr::I64 => Type::I64,
            TypeRepr::I128 => Type::I128,
            TypeRepr::U8 => Type::U8,
            TypeRepr::U16 => Type::U16,
            TypeRepr::U32 => Type::U32,
            TypeRepr::U64 => Type::U64,
            TypeRepr::U128 => Type::U128,
            TypeRepr::F32 => Type::F32,
            TypeRepr::F64 => Type::F64,
            TypeRepr::Char => Type::Char,
            TypeRepr::Str => Type::Str,
            TypeRepr::Bytes => Type::Bytes,
            TypeRepr::Option(inner) => Type::Option(inner),
            TypeRepr::Seq(inner) => Type::Seq(inner),
            TypeRepr::Map { key, value } => Type::Map { key, value },
            TypeRepr::Tuple(items) => Type::Tuple(items),
            TypeRepr::Array { item, len } => Type::Array { item, len },
            TypeRepr::Result { ok, err } => Type::Result { ok, err },
            TypeRepr::Named(name) => Type::Named(name),
        })
    }
}

#[cfg(test)]
mod tests;
