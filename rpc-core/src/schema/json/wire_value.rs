//! [`WireValue`]: a value already checked against its schema type, serialized with exactly the
//! serde calls that type's derived `Serialize` makes.
//!
//! serde wants `&'static str` names for structs, fields and variants; bincode ignores them and
//! writes only indices, lengths and contents, so every name here is the placeholder `""`. A
//! `WireValue` is therefore for the wire format only: through a self-describing format (JSON,
//! say) it would come out with empty names.

use serde::ser::{
    SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant,
};
use serde::{Serialize, Serializer};

/// The name serde is given wherever it asks for one: bincode never writes it.
const NO_NAME: &str = "";

/// A value checked against a [`super::super::Type`], one variant per serde call it becomes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WireValue {
    /// `()`: `serialize_unit`.
    Unit,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    /// `serialize_bytes`: a length, then the bytes in one block.
    Bytes(Vec<u8>),
    None,
    Some(Box<WireValue>),
    /// `serialize_seq(Some(len))`.
    Seq(Vec<WireValue>),
    /// `serialize_map(Some(len))`, entries in this order.
    Map(Vec<(WireValue, WireValue)>),
    /// `serialize_tuple(len)`: tuples and fixed-size arrays.
    Tuple(Vec<WireValue>),
    UnitStruct,
    NewtypeStruct(Box<WireValue>),
    TupleStruct(Vec<WireValue>),
    /// `serialize_struct`, the fields in declaration order.
    Struct(Vec<WireValue>),
    UnitVariant(u32),
    /// Also `Result`: `Ok` is variant 0, `Err` variant 1.
    NewtypeVariant(u32, Box<WireValue>),
    TupleVariant(u32, Vec<WireValue>),
    StructVariant(u32, Vec<WireValue>),
}

impl Serialize for WireValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WireValue::Unit => serializer.serialize_unit(),
            WireValue::Bool(v) => serializer.serialize_bool(*v),
            WireValue::I8(v) => serializer.serialize_i8(*v),
            WireValue::I16(v) => serializer.serialize_i16(*v),
            WireValue::I32(v) => serializer.serialize_i32(*v),
            WireValue::I64(v) => serializer.serialize_i64(*v),
            WireValue::I128(v) => serializer.serialize_i128(*v),
            WireValue::U8(v) => serializer.serialize_u8(*v),
            WireValue::U16(v) => serializer.serialize_u16(*v),
            WireValue::U32(v) => serializer.serialize_u32(*v),
            WireValue::U64(v) => serializer.serialize_u64(*v),
            WireValue::U128(v) => serializer.serialize_u128(*v),
            WireValue::F32(v) => serializer.serialize_f32(*v),
            WireValue::F64(v) => serializer.serialize_f64(*v),
            WireValue::Char(v) => serializer.serialize_char(*v),
            WireValue::Str(v) => serializer.serialize_str(v),
            WireValue::Bytes(v) => serializer.serialize_bytes(v),
            WireValue::None => serializer.serialize_none(),
            WireValue::Some(v) => serializer.serialize_some(&**v),
            WireValue::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            WireValue::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            WireValue::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            WireValue::UnitStruct => serializer.serialize_unit_struct(NO_NAME),
            WireValue::NewtypeStruct(v) => serializer.serialize_newtype_struct(NO_NAME, &**v),
            WireValue::TupleStruct(items) => {
                let mut tuple = serializer.serialize_tuple_struct(NO_NAME, items.len())?;
                for item in items {
                    tuple.serialize_field(item)?;
                }
                tuple.end()
            }
            WireValue::Struct(fields) => {
                let mut st = serializer.serialize_struct(NO_NAME, fields.len())?;
                for field in fields {
                    st.serialize_field(NO_NAME, field)?;
                }
                st.end()
            }
            WireValue::UnitVariant(index) => {
                serializer.serialize_unit_variant(NO_NAME, *index, NO_NAME)
            }
            WireValue::NewtypeVariant(index, v) => {
                serializer.serialize_newtype_variant(NO_NAME, *index, NO_NAME, &**v)
            }
            WireValue::TupleVariant(index, items) => {
                let mut tuple =
                    serializer.serialize_tuple_variant(NO_NAME, *index, NO_NAME, items.len())?;
                for item in items {
                    tuple.serialize_field(item)?;
                }
                tuple.end()
            }
            WireValue::StructVariant(index, fields) => struct_variant(serializer, *index, fields),
        }
    }
}

/// `serialize_struct_variant` with `fields` in order: also how a whole request goes out.
pub(super) fn struct_variant<S: Serializer>(
    serializer: S,
    index: u32,
    fields: &[WireValue],
) -> Result<S::Ok, S::Error> {
    let mut st = serializer.serialize_struct_variant(NO_NAME, index, NO_NAME, fields.len())?;
    for field in fields {
        st.serialize_field(NO_NAME, field)?;
    }
    st.end()
}
