//! Scalars from JSON: integers in their ranges (128-bit ones also from decimal strings),
//! floats (with `"NaN"`, `"inf"`, `"-inf"`), bytes and chars.

use std::num::{IntErrorKind, ParseIntError};

use serde_json::Value;

use super::ToWire;
use crate::schema::Type;
use crate::schema::json::error::{JsonError, Path, Step, clipped, found};
use crate::schema::json::{IntRange, WireValue};

/// An integer read from JSON, before its type's range is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Int {
    /// Any value that fits an `i128`.
    Small(i128),
    /// A `u128` beyond `i128::MAX`.
    Huge(u128),
}

impl ToWire<'_> {
    /// An integer: a JSON number, or for 128-bit types also a decimal string.
    pub(super) fn integer(
        &self,
        ty: &Type,
        range: &IntRange,
        value: &Value,
        path: &Path<'_>,
    ) -> Result<WireValue, JsonError> {
        let wide = matches!(ty, Type::I128 | Type::U128);
        let (n, shown) = match value {
            Value::Number(number) => {
                let n = match (number.as_i64(), number.as_u64()) {
                    (Some(n), _) => Int::Small(n.into()),
                    (None, Some(n)) => Int::Small(n.into()),
                    (None, None) => {
                        let hint = if wide {
                            " (write integers beyond 64 bits as decimal strings: \"12345678901234567890123\")"
                        } else {
                            ""
                        };
                        return Err(JsonError::Invalid {
                            path: path.to_string(),
                            problem: format!(
                                "expected {}, found {}{hint}",
                                self.expected(ty),
                                found(value)
                            ),
                        });
                    }
                };
                (n, number.to_string())
            }
            Value::String(text) if wide => match parse_int(text) {
                Ok(n) => (n, clipped(text)),
                Err(Overflow::Yes) => return Err(out_of_range(&clipped(text), ty, range, path)),
                Err(Overflow::No) => return Err(self.wrong(ty, value, path)),
            },
            _ => return Err(self.wrong(ty, value, path)),
        };
        in_range(n, ty, range, &shown, path)
    }

    /// A float: a number (range-checked for `f32`), or `"NaN"`, `"inf"`, `"-inf"`.
    pub(super) fn float(
        &self,
        ty: &Type,
        value: &Value,
        path: &Path<'_>,
    ) -> Result<WireValue, JsonError> {
        let v = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => match text.as_str() {
                "NaN" => Some(f64::NAN),
                "inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| self.wrong(ty, value, path))?;
        if *ty == Type::F64 {
            return Ok(WireValue::F64(v));
        }
        let narrow = v as f32;
        if narrow.is_infinite() && v.is_finite() {
            return Err(JsonError::Invalid {
                path: path.to_string(),
                problem: format!("{v} is out of range for f32 ({} to {})", f32::MIN, f32::MAX),
            });
        }
        Ok(WireValue::F32(narrow))
    }
}

/// Bytes: an array of integers 0 to 255.
pub(super) fn bytes(items: &[Value], path: &Path<'_>) -> Result<Vec<u8>, JsonError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let problem = match item.as_u64().map(u8::try_from) {
                Some(Ok(byte)) => return Ok(byte),
                Some(Err(_)) => format!("{item} is out of range for a byte (0 to 255)"),
                None => format!(
                    "expected an integer 0 to 255 (a byte), found {}",
                    found(item)
                ),
            };
            Err(JsonError::Invalid {
                path: path.then(Step::Index(i)).to_string(),
                problem,
            })
        })
        .collect()
}

pub(super) fn one_char(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// Why a string is not an integer: too large (or too small) for any, or not one at all.
pub(super) enum Overflow {
    Yes,
    No,
}

/// A decimal integer of any size up to `u128::MAX`, down to `i128::MIN`.
pub(super) fn parse_int(text: &str) -> Result<Int, Overflow> {
    let why = |err: ParseIntError| match err.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => Overflow::Yes,
        _ => Overflow::No,
    };
    match text.parse::<i128>() {
        Ok(n) => Ok(Int::Small(n)),
        Err(err) if *err.kind() == IntErrorKind::PosOverflow => {
            text.parse::<u128>().map(Int::Huge).map_err(why)
        }
        Err(err) => Err(why(err)),
    }
}

/// `n` as a `ty`, if it is in `range`.
pub(super) fn in_range(
    n: Int,
    ty: &Type,
    range: &IntRange,
    shown: &str,
    path: &Path<'_>,
) -> Result<WireValue, JsonError> {
    match n {
        Int::Small(v) if v >= range.min && (v < 0 || v as u128 <= range.max) => Ok((range.wire)(v)),
        Int::Huge(v) if v <= range.max => Ok(WireValue::U128(v)),
        _ => Err(out_of_range(shown, ty, range, path)),
    }
}

pub(super) fn out_of_range(shown: &str, ty: &Type, range: &IntRange, path: &Path<'_>) -> JsonError {
    JsonError::Invalid {
        path: path.to_string(),
        problem: format!(
            "{shown} is out of range for {ty} ({} to {})",
            range.min, range.max
        ),
    }
}
