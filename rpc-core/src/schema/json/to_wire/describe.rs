//! What a type looks like in JSON, for "expected ..., found ..." errors.

use serde_json::Value;

use super::ToWire;
use crate::schema::json::error::{JsonError, Path, clipped, found, listed};
use crate::schema::json::{Content, Variants};
use crate::schema::{Type, TypeDef};

/// How many newtypes a description looks through (`an integer (NoteId)`) before it gives up.
const DESCRIBED_NEWTYPES: u32 = 8;

impl ToWire<'_> {
    /// "expected ..., found ..." at `path`.
    pub(super) fn wrong(&self, ty: &Type, value: &Value, path: &Path<'_>) -> JsonError {
        JsonError::Invalid {
            path: path.to_string(),
            problem: format!("expected {}, found {}", self.expected(ty), found(value)),
        }
    }

    /// "expected ..., found ..." at `path`, for a struct's or a variant's content.
    pub(super) fn wrong_content(
        &self,
        ty: &Type,
        content: Content<'_>,
        value: &Value,
        path: &Path<'_>,
    ) -> JsonError {
        JsonError::Invalid {
            path: path.to_string(),
            problem: format!(
                "expected {} ({ty}), found {}",
                self.content_kind(content, 0),
                found(value)
            ),
        }
    }

    /// A variant name `ty` does not have.
    pub(super) fn unknown_variant(
        &self,
        ty: &Type,
        variants: Variants<'_>,
        name: &str,
        path: &Path<'_>,
    ) -> JsonError {
        JsonError::UnknownVariant {
            path: path.to_string(),
            variant: clipped(name),
            ty: ty.to_string(),
            known: listed(variants.all().into_iter().map(|(name, _)| name), "none"),
        }
    }

    /// A variant that holds something, written as a bare name.
    pub(super) fn content_missing(
        &self,
        ty: &Type,
        name: &str,
        content: Content<'_>,
        path: &Path<'_>,
    ) -> JsonError {
        JsonError::Invalid {
            path: path.to_string(),
            problem: format!(
                "variant `{name}` of {ty} holds {}: write {{\"{name}\": ...}}",
                self.content_kind(content, 0)
            ),
        }
    }

    /// What a value of `ty` looks like in JSON, and the type: `an integer (u8)`.
    pub(super) fn expected(&self, ty: &Type) -> String {
        let kind = self.kind(ty, 0);
        match ty {
            Type::Unit | Type::Bool | Type::Char | Type::Str => kind,
            _ => format!("{kind} ({ty})"),
        }
    }

    /// What a value of `ty` looks like in JSON: `an integer`, `an object`, ...
    fn kind(&self, ty: &Type, newtypes: u32) -> String {
        match ty {
            Type::Unit => "null".into(),
            Type::Bool => "true or false".into(),
            Type::I8 | Type::I16 | Type::I32 | Type::I64 => "an integer".into(),
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => "an integer".into(),
            Type::I128 | Type::U128 => "an integer or a decimal string".into(),
            Type::F32 | Type::F64 => "a number".into(),
            Type::Char => "a one-character string".into(),
            Type::Str => "a string".into(),
            Type::Bytes => "an array of integers 0 to 255".into(),
            Type::Option(inner) => match self.kind(inner, newtypes) {
                kind if kind.starts_with("null") => kind,
                kind => format!("null or {kind}"),
            },
            Type::Seq(_) => "an array".into(),
            Type::Map { key, .. } if self.schema.keys_as_strings(key) => "an object".into(),
            Type::Map { .. } => "an array of [key, value] pairs".into(),
            Type::Tuple(items) => items_kind(items.len() as u64),
            Type::Array { len, .. } => items_kind(*len),
            Type::Result { ok, err } => variants_kind(Variants::Result { ok, err }),
            Type::Named(name) => match self.schema.type_def(name) {
                Some(TypeDef::Struct(shape)) => self.content_kind(shape.into(), newtypes),
                Some(TypeDef::Enum(variants)) => variants_kind(Variants::Enum(variants)),
                None => "a value".into(),
            },
        }
    }

    fn content_kind(&self, content: Content<'_>, newtypes: u32) -> String {
        match content {
            Content::Unit => "null".into(),
            Content::Newtype(inner) if newtypes < DESCRIBED_NEWTYPES => {
                self.kind(inner, newtypes + 1)
            }
            Content::Newtype(_) => "a value".into(),
            Content::Tuple(items) => items_kind(items.len() as u64),
            Content::Struct(_) => "an object".into(),
        }
    }
}

fn items_kind(len: u64) -> String {
    match len {
        1 => "an array of 1 item".into(),
        n => format!("an array of {n} items"),
    }
}

/// `"All", {"Tag": ...} or {"Since": ...}`.
fn variants_kind(variants: Variants<'_>) -> String {
    let shown: Vec<String> = variants
        .all()
        .into_iter()
        .map(|(name, content)| match content {
            Content::Unit => format!("\"{name}\""),
            _ => format!("{{\"{name}\": ...}}"),
        })
        .collect();
    let list = listed(shown.iter().map(String::as_str), "");
    match list.rsplit_once(", ") {
        Some((head, last)) if shown.len() > 1 => format!("{head} or {last}"),
        _ if list.is_empty() => "a variant (the enum has none)".into(),
        _ => list,
    }
}
