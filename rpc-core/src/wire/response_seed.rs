//! [`ResponseSeed`]: tarpc's `Response<T>` decoded with a seed for its `T`.
//!
//! A client guided by a schema fetched at run time has no Rust type for the answers it reads,
//! only a [`DeserializeSeed`] that knows their shape. tarpc's `Response<T>` is decoded by its
//! derived `Deserialize`, which needs `T: Deserialize`; this seed reads exactly what that derive
//! reads (a struct of `request_id: u64` and `message: Result<T, ServerError>`, the `Result` an
//! enum whose `Ok` is decoded by the given seed) and nothing else. tarpc's own `ServerError` impl
//! still decodes the `Err` side, so its `io::ErrorKind` stays tarpc's `u32` mapping.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use tarpc::{Response, ServerError};

/// Decodes a `tarpc::Response<T>` given a seed `D` for its `T`: what a client reads from a
/// server when `T` is known only at run time. `ResponseSeed<PhantomData<T>>` decodes the same
/// bytes to the same value as `Response<T>`'s derived `Deserialize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseSeed<D> {
    seed: D,
}

impl<D> ResponseSeed<D> {
    /// A seed for responses whose successful value `seed` decodes.
    pub const fn new(seed: D) -> Self {
        ResponseSeed { seed }
    }
}

/// `Response`'s fields, in declaration order (what the derive passes to `deserialize_struct`).
const RESPONSE_FIELDS: &[&str] = &["request_id", "message"];

/// `Result`'s variants, in declaration order (what serde passes to `deserialize_enum`).
const RESULT_VARIANTS: &[&str] = &["Ok", "Err"];

impl<'de, D: DeserializeSeed<'de>> DeserializeSeed<'de> for ResponseSeed<D> {
    type Value = Response<D::Value>;

    fn deserialize<De: Deserializer<'de>>(
        self,
        deserializer: De,
    ) -> Result<Self::Value, De::Error> {
        deserializer.deserialize_struct("Response", RESPONSE_FIELDS, ResponseVisitor(self.seed))
    }
}

/// The derive's visitor for `Response`, with a seed in place of `T: Deserialize`.
struct ResponseVisitor<D>(D);

impl<'de, D: DeserializeSeed<'de>> Visitor<'de> for ResponseVisitor<D> {
    type Value = Response<D::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Response")
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        const EXPECTED: &str = "struct Response with 2 elements";
        let request_id = seq
            .next_element::<u64>()?
            .ok_or_else(|| de::Error::invalid_length(0, &EXPECTED))?;
        let message = seq
            .next_element_seed(ResultSeed(self.0))?
            .ok_or_else(|| de::Error::invalid_length(1, &EXPECTED))?;
        Ok(Response {
            request_id,
            message,
        })
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request_id = None;
        let mut message = None;
        // The seed is used once: a second `message` is a duplicate, as the derive finds it.
        let mut seed = Some(self.0);
        while let Some(key) = map.next_key::<ResponseField>()? {
            match key {
                ResponseField::RequestId => {
                    if request_id.is_some() {
                        return Err(de::Error::duplicate_field("request_id"));
                    }
                    request_id = Some(map.next_value::<u64>()?);
                }
                ResponseField::Message => {
                    let Some(seed) = seed.take() else {
                        return Err(de::Error::duplicate_field("message"));
                    };
                    message = Some(map.next_value_seed(ResultSeed(seed))?);
                }
                ResponseField::Ignored => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Response {
            request_id: request_id.ok_or_else(|| de::Error::missing_field("request_id"))?,
            message: message.ok_or_else(|| de::Error::missing_field("message"))?,
        })
    }
}

/// A field name or index of `Response`, as the derive reads it: unknown ones are skipped.
enum ResponseField {
    RequestId,
    Message,
    Ignored,
}

impl<'de> de::Deserialize<'de> for ResponseField {
    #[inline]
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        deserializer.deserialize_identifier(ResponseFieldVisitor)
    }
}

struct ResponseFieldVisitor;

impl Visitor<'_> for ResponseFieldVisitor {
    type Value = ResponseField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ResponseField, E> {
        Ok(match value {
            0 => ResponseField::RequestId,
            1 => ResponseField::Message,
            _ => ResponseField::Ignored,
        })
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ResponseField, E> {
        self.visit_bytes(value.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<ResponseField, E> {
        Ok(match value {
            b"request_id" => ResponseField::RequestId,
            b"message" => ResponseField::Message,
            _ => ResponseField::Ignored,
        })
    }
}

/// `Result<T, ServerError>` with a seed for `T`: serde's own `Result` impl, seeded.
struct ResultSeed<D>(D);

impl<'de, D: DeserializeSeed<'de>> DeserializeSeed<'de> for ResultSeed<D> {
    type Value = Result<D::Value, ServerError>;

    fn deserialize<De: Deserializer<'de>>(
        self,
        deserializer: De,
    ) -> Result<Self::Value, De::Error> {
        deserializer.deserialize_enum("Result", RESULT_VARIANTS, self)
    }
}

impl<'de, D: DeserializeSeed<'de>> Visitor<'de> for ResultSeed<D> {
    type Value = Result<D::Value, ServerError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("enum Result")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        match data.variant::<ResultVariant>()? {
            (ResultVariant::Ok, variant) => variant.newtype_variant_seed(self.0).map(Ok),
            (ResultVariant::Err, variant) => variant.newtype_variant::<ServerError>().map(Err),
        }
    }
}

/// A variant name or index of `Result`, as serde reads it: an unknown one is an error.
enum ResultVariant {
    Ok,
    Err,
}

impl<'de> de::Deserialize<'de> for ResultVariant {
    #[inline]
    fn deserialize<De: Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        deserializer.deserialize_identifier(ResultVariantVisitor)
    }
}

struct ResultVariantVisitor;

impl Visitor<'_> for ResultVariantVisitor {
    type Value = ResultVariant;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`Ok` or `Err`")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ResultVariant, E> {
        match value {
            0 => Ok(ResultVariant::Ok),
            1 => Ok(ResultVariant::Err),
            _ => Err(de::Error::invalid_value(
                de::Unexpected::Unsigned(value),
                &self,
            )),
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ResultVariant, E> {
        match value {
            "Ok" => Ok(ResultVariant::Ok),
            "Err" => Ok(ResultVariant::Err),
            _ => Err(de::Error::unknown_variant(value, RESULT_VARIANTS)),
        }
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<ResultVariant, E> {
        match value {
            b"Ok" => Ok(ResultVariant::Ok),
            b"Err" => Ok(ResultVariant::Err),
            _ => match std::str::from_utf8(value) {
                Ok(value) => Err(de::Error::unknown_variant(value, RESULT_VARIANTS)),
                Err(_) => Err(de::Error::invalid_value(
                    de::Unexpected::Bytes(value),
                    &self,
                )),
            },
        }
    }
}

#[cfg(test)]
#[path = "response_seed_tests.rs"]
mod tests;
