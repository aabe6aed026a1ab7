//! A streaming method's answer: [`StreamEventSeed`] reads the [`StreamEvent`](crate::StreamEvent)
//! its response variant carries into the JSON serde_json gives the same event, so that what a
//! JSON client shows is what a Rust client would see, serialized.
//!
//! | variant | JSON |
//! |---|---|
//! | 0 `Item(T)` | `{"Item": <T as JSON>}` |
//! | 1 `Lagged { missed }` | `{"Lagged": {"missed": n}}` |
//! | 2 `End` | `"End"` |

use std::fmt;
use std::sync::LazyLock;

use serde::de::{DeserializeSeed, Deserializer, EnumAccess, Error as _, Visitor};
use serde_json::{Map, Value};

use super::Reader;
use super::visitors::{VariantIndex, content_of};
use crate::schema::json::{Content, MAX_JSON_DEPTH};
use crate::schema::{Field, Type};

/// `StreamEvent`'s variants, in wire order, as serde names them.
const VARIANTS: &[&str] = &["Item", "Lagged", "End"];

/// The fields of `Lagged`: one `u64`, `missed`.
static LAGGED_FIELDS: LazyLock<[Field; 1]> = LazyLock::new(|| {
    [Field {
        name: "missed".into(),
        ty: Type::U64,
    }]
});

/// Reads one `StreamEvent<item>`, `depth` levels in (the event is a level of its own, as the
/// enum it is).
pub(super) struct StreamEventSeed<'r, 's> {
    pub(super) reader: &'r Reader<'s>,
    pub(super) item: &'s Type,
    pub(super) depth: u32,
}

impl<'de> DeserializeSeed<'de> for StreamEventSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(D::Error::custom(format_args!(
                "a value nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        de.deserialize_enum("StreamEvent", VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for StreamEventSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a stream event of {}", self.item)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (index, variant) = data.variant_seed(VariantIndex)?;
        let content = match index {
            0 => Content::Newtype(self.item),
            1 => Content::Struct(&*LAGGED_FIELDS),
            2 => Content::Unit,
            _ => {
                return Err(A::Error::custom(format_args!(
                    "variant index {index} is out of range for a stream event of {} \
                     (Item 0, Lagged 1 or End 2)",
                    self.item
                )));
            }
        };
        let name = VARIANTS[index as usize];
        Ok(
            match content_of(variant, content, self.reader, self.depth + 1)? {
                None => Value::String(name.to_owned()),
                Some(value) => Value::Object(Map::from_iter([(name.to_owned(), value)])),
            },
        )
    }
}
