//! Tests of JSON to wire and back: byte identity with the derived enums, every error message,
//! and hostile bytes.

use std::sync::Arc;

use bincode::Options;
use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeSeed;

use crate::schema::{Field, MethodSchema, ServiceSchema, Type, TypeDef};
use crate::wire::{FrameLimit, WireFormat};

mod byte_identity;
mod errors;
mod hostile;
pub(in crate::schema) mod notes;
mod streams;

/// `value`'s body as [`WireFormat`] encodes it.
fn wire<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_body(value, &mut body)
        .expect("encodes");
    body.to_vec()
}

/// Reads `bytes` with `seed`, with the options [`WireFormat`] decodes with (bincode's defaults,
/// fixed-width integers; its size limit plays no part when reading from a slice).
fn read<'de, S: DeserializeSeed<'de>>(seed: S, bytes: &'de [u8]) -> bincode::Result<S::Value> {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .deserialize_seed(seed, bytes)
}

/// A one-method service `svc` whose method `m` takes `args` and returns `result`, with `types`.
fn service(
    args: Vec<(&str, Type)>,
    result: Type,
    types: Vec<(&str, TypeDef)>,
) -> Arc<ServiceSchema> {
    Arc::new(ServiceSchema {
        name: "svc".into(),
        methods: vec![MethodSchema {
            name: "m".into(),
            args: args
                .into_iter()
                .map(|(name, ty)| Field {
                    name: name.into(),
                    ty,
                })
                .collect(),
            result,
            streaming: false,
            doc: String::new(),
        }],
        types: types
            .into_iter()
            .map(|(name, def)| (name.to_owned(), def))
            .collect(),
    })
}
