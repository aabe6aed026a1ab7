//! A schema as text: [`ServiceSchema::to_idl`] for `rpc-client describe`,
//! [`MethodSchema::signature`] for `rpc-client list`, and [`Type`]'s `Display`.
//!
//! The notation is Rust's, with the wire's names for what Rust spells several ways: `string`,
//! `bytes`, `Vec<T>`, `Map<K, V>`, `Option<T>`, `Result<T, E>`, `(A, B)`, `[T; N]`, `()`.
//!
//! Every name printed (service, methods, arguments, fields, types, variants, doc comments) comes
//! from the peer's schema and is printed as it is: whoever shows this text escapes it (as
//! `rpc-client` escapes everything it prints, through [`crate::Untrusted`]).

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use super::{Field, MethodSchema, ServiceSchema, Shape, Type, TypeDef, Variant};

/// How long a type definition may be on one line before it is written one field (or variant)
/// per line.
const MAX_LINE: usize = 100;

impl fmt::Display for Type {
    /// The type in the schema notation: `Vec<Note>`, `Map<string, u32>`, `[u8; 3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Unit => f.write_str("()"),
            Type::Bool => f.write_str("bool"),
            Type::I8 => f.write_str("i8"),
            Type::I16 => f.write_str("i16"),
            Type::I32 => f.write_str("i32"),
            Type::I64 => f.write_str("i64"),
            Type::I128 => f.write_str("i128"),
            Type::U8 => f.write_str("u8"),
            Type::U16 => f.write_str("u16"),
            Type::U32 => f.write_str("u32"),
            Type::U64 => f.write_str("u64"),
            Type::U128 => f.write_str("u128"),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::Str => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Option(inner) => write!(f, "Option<{inner}>"),
            Type::Seq(item) => write!(f, "Vec<{item}>"),
            Type::Map { key, value } => write!(f, "Map<{key}, {value}>"),
            Type::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Type::Tuple(items) => write!(f, "({})", Joined(items)),
            Type::Array { item, len } => write!(f, "[{item}; {len}]"),
            Type::Result { ok, err } => write!(f, "Result<{ok}, {err}>"),
            Type::Named(name) => f.write_str(name),
        }
    }
}

/// Items separated by `, `.
struct Joined<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for Field {
    /// `name: type`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.ty)
    }
}

impl MethodSchema {
    /// The method on one line: `add(title: string, body: string) -> Note`, without `-> ()`
    /// for a method that returns nothing; a streaming method's reads `-> stream T`, `T` its
    /// items' type (`watch(prefix: string) -> stream KvEvent`), so it cannot pass for one that
    /// answers once.
    ///
    /// ```
    /// use rpc_core::schema::SchemaBuilder;
    ///
    /// # fn main() -> Result<(), rpc_core::schema::SchemaError> {
    /// let mut builder = SchemaBuilder::new("kv");
    /// let key = builder.trace::<String>()?;
    /// let value = builder.trace::<Option<Vec<u8>>>()?;
    /// builder.method("get", "", vec![("key", key)], value);
    /// let schema = builder.finish();
    /// assert_eq!(schema.methods[0].signature(), "get(key: string) -> Option<Vec<u8>>");
    /// # Ok(()) }
    /// ```
    pub fn signature(&self) -> String {
        let mut line = format!("{}({})", self.name, Joined(&self.args));
        if self.streaming {
            let _ = write!(line, " -> stream {}", self.result);
        } else if self.result != Type::Unit {
            let _ = write!(line, " -> {}", self.result);
        }
        line
    }
}

impl ServiceSchema {
    /// The schema as text: the service and its methods (each with its doc comment), then
    /// every struct and enum they use, in the order they are first used.
    ///
    /// ```
    /// use rpc_core::schema::SchemaBuilder;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Note {
    ///     id: u64,
    ///     title: String,
    /// }
    ///
    /// # fn main() -> Result<(), rpc_core::schema::SchemaError> {
    /// let mut builder = SchemaBuilder::new("notes");
    /// let title = builder.trace::<String>()?;
    /// let note = builder.trace::<Note>()?;
    /// builder.method("add", "Adds a note.", vec![("title", title)], note);
    /// assert_eq!(
    ///     builder.finish().to_idl(),
    ///     "service notes {\n  /// Adds a note.\n  add(title: string) -> Note\n}\n\n\
    ///      struct Note { id: u64, title: string }\n"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn to_idl(&self) -> String {
        let mut text = format!("service {} {{\n", self.name);
        for method in &self.methods {
            for line in method.doc.lines() {
                let _ = writeln!(
                    text,
                    "  ///{}{line}",
                    if line.is_empty() { "" } else { " " }
                );
            }
            let _ = writeln!(text, "  {}", method.signature());
        }
        text.push_str("}\n");
        let names = self.reachable_types();
        if !names.is_empty() {
            text.push('\n');
        }
        for name in names {
            match self.types.get(name) {
                Some(def) => text.push_str(&definition(name, def)),
                None => {
                    let _ = writeln!(text, "// {name}: used but not defined by the schema");
                }
            }
        }
        text
    }

    /// The named types the methods use, directly or through other types, each once, in the
    /// order they are first reached (methods in order, arguments before results).
    fn reachable_types(&self) -> Vec<&str> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for method in &self.methods {
            for arg in &method.args {
                named_in(&arg.ty, &mut order, &mut seen);
            }
            named_in(&method.result, &mut order, &mut seen);
        }
        let mut next = 0;
        while let Some(&name) = order.get(next) {
            next += 1;
            match self.types.get(name) {
                Some(TypeDef::Struct(shape)) => named_in_shape(shape, &mut order, &mut seen),
                Some(TypeDef::Enum(variants)) => {
                    for variant in variants {
                        named_in_shape(&variant.shape, &mut order, &mut seen);
                    }
                }
                None => {}
            }
        }
        order
    }
}

/// Adds the names `ty` uses, not seen yet, to `order`.
fn named_in<'a>(ty: &'a Type, order: &mut Vec<&'a str>, seen: &mut HashSet<&'a str>) {
    match ty {
        Type::Named(name) if seen.insert(name) => order.push(name),
        Type::Option(inner) | Type::Seq(inner) | Type::Array { item: inner, .. } => {
            named_in(inner, order, seen);
        }
        Type::Map { key: a, value: b } | Type::Result { ok: a, err: b } => {
            named_in(a, order, seen);
            named_in(b, order, seen);
        }
        Type::Tuple(items) => items.iter().for_each(|item| named_in(item, order, seen)),
        _ => {}
    }
}

fn named_in_shape<'a>(shape: &'a Shape, order: &mut Vec<&'a str>, seen: &mut HashSet<&'a str>) {
    match shape {
        Shape::Unit => {}
        Shape::Newtype(ty) => named_in(ty, order, seen),
        Shape::Tuple(items) => items.iter().for_each(|item| named_in(item, order, seen)),
        Shape::Struct(fields) => fields.iter().for_each(|f| named_in(&f.ty, order, seen)),
    }
}

/// A struct's or an enum's definition, on one line if it fits in [`MAX_LINE`], else one field
/// or variant per line; ends with a newline.
fn definition(name: &str, def: &TypeDef) -> String {
    let (keyword, parts): (&str, Vec<String>) = match def {
        TypeDef::Struct(Shape::Unit) => return format!("struct {name}\n"),
        TypeDef::Struct(Shape::Newtype(ty)) => return format!("struct {name}({ty})\n"),
        TypeDef::Struct(Shape::Tuple(items)) => {
            return format!("struct {name}({})\n", Joined(items));
        }
        TypeDef::Struct(Shape::Struct(fields)) => {
            ("struct", fields.iter().map(Field::to_string).collect())
        }
        TypeDef::Enum(variants) => ("enum", variants.iter().map(variant).collect()),
    };
    if parts.is_empty() {
        return format!("{keyword} {name} {{}}\n");
    }
    let line = format!("{keyword} {name} {{ {} }}\n", parts.join(", "));
    if line.trim_end().chars().count() <= MAX_LINE {
        return line;
    }
    let mut text = format!("{keyword} {name} {{\n");
    for part in parts {
        let _ = writeln!(text, "  {part},");
    }
    text.push_str("}\n");
    text
}

/// One variant: `All`, `Tag(string)`, `Since { id: u64 }`.
fn variant(variant: &Variant) -> String {
    let name = &variant.name;
    match &variant.shape {
        Shape::Unit => name.clone(),
        Shape::Newtype(ty) => format!("{name}({ty})"),
        Shape::Tuple(items) => format!("{name}({})", Joined(items)),
        Shape::Struct(fields) if fields.is_empty() => format!("{name} {{}}"),
        Shape::Struct(fields) => format!("{name} {{ {} }}", Joined(fields)),
    }
}

#[cfg(test)]
#[path = "idl_tests.rs"]
mod tests;
