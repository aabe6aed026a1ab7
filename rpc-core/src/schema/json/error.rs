//! [`JsonError`]: why JSON arguments do not fit a method, naming where and what was expected.
//!
//! Paths and messages are built only when something is wrong: while converting, a path is a
//! chain of borrowed [`Path`] steps on the stack. Text taken from the user's JSON (a key, a
//! string value, an unknown field's name) is clipped to [`SHOWN_CHARS`] characters and escaped,
//! so an error never repeats a megabyte of input or a terminal escape. Names taken from the
//! schema are the peer's; they are kept as they are, and whoever prints the error escapes it
//! (as `rpc-client` escapes everything it prints).

use std::fmt::{self, Write as _};

use serde_json::Value;

use super::MAX_JSON_DEPTH;
use crate::untrusted::{Untrusted, escape_json};

/// How many characters of a value from the user's JSON an error shows before `…`.
const SHOWN_CHARS: usize = 40;

/// How many names (methods, fields, variants) an error lists before `…`.
const LISTED_NAMES: usize = 12;

/// Why JSON arguments could not be turned into a request: the first problem found, with the
/// argument path (`filter.Since.id`, `tags[2]`, `by_name["k"]`) and what the schema expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// No method of that name.
    #[error("unknown method `{method}`: {service} has {known}")]
    UnknownMethod {
        /// The service.
        service: String,
        /// The name asked for, clipped and escaped.
        method: String,
        /// The methods it has, comma-separated (or "no methods").
        known: String,
    },
    /// The method streams its answers, and was called for one: a caller that reads one answer
    /// would leave the stream open on the server. Nothing was sent.
    #[error("`{service}.{method}` streams its answers ({signature}): open it with watch, not call")]
    StreamingMethod {
        /// The service.
        service: String,
        /// The method.
        method: String,
        /// Its signature (`watch(prefix: string) -> stream KvEvent`).
        signature: String,
    },
    /// The method answers once, and was opened as a stream. Nothing was sent.
    #[error("`{service}.{method}` answers once ({signature}): call it with call, not watch")]
    NotStreaming {
        /// The service.
        service: String,
        /// The method.
        method: String,
        /// Its signature.
        signature: String,
    },
    /// The arguments were not a JSON object (nor null, for a method without arguments).
    #[error("the arguments must be a JSON object of named arguments, found {found} ({signature})")]
    NotAnObject {
        /// What was given instead.
        found: String,
        /// The method's signature.
        signature: String,
    },
    /// An argument the method does not take.
    #[error("unknown argument `{name}` ({signature})")]
    UnknownArgument {
        /// The name given, clipped and escaped.
        name: String,
        /// The method's signature.
        signature: String,
    },
    /// A required argument (one not of an `Option` type) was left out.
    #[error("missing argument `{name}` ({signature})")]
    MissingArgument {
        /// The argument.
        name: String,
        /// The method's signature.
        signature: String,
    },
    /// A key in an object standing for a struct (or struct variant) that it has no field for.
    #[error("unknown field `{field}` in argument `{path}` (fields: {known})")]
    UnknownField {
        /// Where the object is.
        path: String,
        /// The key given, clipped and escaped.
        field: String,
        /// The fields it has.
        known: String,
    },
    /// A required field (one not of an `Option` type) was left out.
    #[error("missing field `{field}` in argument `{path}` ({field}: {ty})")]
    MissingField {
        /// Where the object is.
        path: String,
        /// The field.
        field: String,
        /// Its type.
        ty: String,
    },
    /// A variant name the enum does not have.
    #[error("unknown variant `{variant}` in argument `{path}` ({ty} has {known})")]
    UnknownVariant {
        /// Where the value is.
        path: String,
        /// The name given, clipped and escaped.
        variant: String,
        /// The enum.
        ty: String,
        /// Its variants.
        known: String,
    },
    /// A value of the wrong kind, or out of range.
    #[error("argument `{path}`: {problem}")]
    Invalid {
        /// Where the value is.
        path: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The schema names a type it does not define: the peer's schema is inconsistent.
    #[error(
        "argument `{path}`: the schema uses type `{name}` but does not define it (a bug in the server's schema)"
    )]
    UndefinedType {
        /// Where the value is.
        path: String,
        /// The missing type.
        name: String,
    },
    /// The value (or the type, for a newtype that wraps itself) nests too deep.
    #[error("argument `{path}` nests deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep {
        /// Where the limit was reached.
        path: String,
    },
}

/// One step from an argument into its value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step<'a> {
    /// The argument itself (its name comes from the schema).
    Arg(&'a str),
    /// A struct field.
    Field(&'a str),
    /// The content of an enum variant (or `Ok`/`Err`).
    Variant(&'a str),
    /// An array item.
    Index(usize),
    /// A map entry, by its key as the user wrote it.
    Key(&'a str),
}

/// Where a value is, as a chain of steps back to its argument.
#[derive(Debug, Clone, Copy)]
pub(super) struct Path<'a> {
    step: Step<'a>,
    parent: Option<&'a Path<'a>>,
}

impl<'a> Path<'a> {
    /// The path of an argument.
    pub(super) fn arg(name: &'a str) -> Self {
        Path {
            step: Step::Arg(name),
            parent: None,
        }
    }

    /// The path one `step` further in.
    pub(super) fn then(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            step,
            parent: Some(self),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.step {
            Step::Arg(name) => f.write_str(name),
            Step::Field(name) | Step::Variant(name) => write!(f, ".{name}"),
            Step::Index(index) => write!(f, "[{index}]"),
            Step::Key(key) => write!(f, "[{}]", quoted(key)),
        }
    }
}

/// `text` from the user, clipped and escaped, for use between backticks.
pub(super) fn clipped(text: &str) -> String {
    let (head, more) = clip(text);
    format!("{}{more}", Untrusted(head))
}

/// `text` from the user as a JSON string literal, clipped and escaped.
pub(super) fn quoted(text: &str) -> String {
    let (head, more) = clip(text);
    let literal = serde_json::to_string(head).unwrap_or_default();
    format!("{}{more}", escape_json(&literal))
}

fn clip(text: &str) -> (&str, &'static str) {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => (&text[..at], "…"),
        None => (text, ""),
    }
}

/// What a JSON value is, for "found ...": its kind, and a short excerpt of scalars.
pub(super) fn found(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", quoted(s)),
        Value::Array(items) => match items.len() {
            0 => "an empty array".to_owned(),
            1 => "an array of 1 item".to_owned(),
            n => format!("an array of {n} items"),
        },
        Value::Object(fields) => match fields.len() {
            0 => "an empty object".to_owned(),
            1 => "an object with 1 field".to_owned(),
            n => format!("an object with {n} fields"),
        },
    }
}

/// Names, comma-separated, at most [`LISTED_NAMES`] of them; `none` when there are none.
pub(super) fn listed<'a>(names: impl IntoIterator<Item = &'a str>, none: &str) -> String {
    let mut list = String::new();
    for (i, name) in names.into_iter().enumerate() {
        if i == LISTED_NAMES {
            list.push_str(", …");
            break;
        }
        if i > 0 {
            list.push_str(", ");
        }
        let _ = write!(list, "{name}");
    }
    if list.is_empty() {
        none.to_owned()
    } else {
        list
    }
}
