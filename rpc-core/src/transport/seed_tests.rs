//! The reader decoding with a seed that is not `PhantomData`: messages whose shape is known only
//! at run time, as a client guided by a fetched schema reads them. They must decode to the same
//! values as the typed path, in any split, with their large fields still read in place.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::*;

/// A field's type, as a schema read at run time gives it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    U64,
    Bytes,
    Str,
}

/// A field's value, decoded by its kind.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    U64(u64),
    Bytes(Vec<u8>),
    Str(String),
}

/// Decodes a struct whose fields have these kinds, in order: a schema, not a Rust type.
#[derive(Debug, Clone)]
struct RowSeed(Arc<[Kind]>);

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = Vec<Value>;

    fn deserialize<De: Deserializer<'de>>(self, deserializer: De) -> Result<Vec<Value>, De::Error> {
        deserializer.deserialize_tuple(self.0.len(), self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a struct of {} fields", self.0.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut row = Vec::with_capacity(self.0.len());
        for (i, kind) in self.0.iter().enumerate() {
            let value = seq.next_element_seed(*kind)?;
            row.push(value.ok_or_else(|| de::Error::invalid_length(i, &self))?);
        }
        Ok(row)
    }
}

impl<'de> DeserializeSeed<'de> for Kind {
    type Value = Value;

    fn deserialize<De: Deserializer<'de>>(self, deserializer: De) -> Result<Value, De::Error> {
        match self {
            Kind::U64 => u64::deserialize(deserializer).map(Value::U64),
            // `deserialize_byte_buf`: an owned buffer, so a large field is handed over whole.
            Kind::Bytes => deserializer.deserialize_byte_buf(BytesVisitor),
            Kind::Str => String::deserialize(deserializer).map(Value::Str),
        }
    }
}

struct BytesVisitor;

impl Visitor<'_> for BytesVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(bytes))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(bytes.to_vec()))
    }
}

/// The seed for [`Message`]'s shape.
fn message_seed() -> RowSeed {
    RowSeed(Arc::from([Kind::U64, Kind::Bytes, Kind::Str, Kind::Bytes]))
}

/// What the typed path decodes, as the seed's values.
fn as_row(m: &Message) -> Vec<Value> {
    vec![
        Value::U64(m.id),
        Value::Bytes(m.first.to_vec()),
        Value::Str(m.note.clone()),
        Value::Bytes(m.second.to_vec()),
    ]
}

fn seeded_reader(seed: RowSeed) -> FrameReader<Vec<Value>, RowSeed> {
    let codec = WireCodec::<Vec<Value>, ()>::new(FrameLimit::default());
    FrameReader::with_seed(&codec, BytesMut::new(), seed)
}

#[test]
fn a_runtime_seed_decodes_what_the_typed_path_does_in_any_split() {
    let sent = mixed();
    let bytes = wire(&sent);
    let typed: Vec<Vec<Value>> = decode_in_pieces(&bytes, &[bytes.len()])
        .expect("the typed path decodes")
        .iter()
        .map(as_row)
        .collect();
    assert_eq!(typed, sent.iter().map(as_row).collect::<Vec<_>>());
    for sizes in [
        &[bytes.len()][..],
        &[1],
        &[7, 4093, 1, 65_537, 13],
        &[BIG_FIELD - 3, 2, 100_003],
    ] {
        let got = read_in_pieces(seeded_reader(message_seed()), &bytes, sizes).expect("decodes");
        assert_eq!(got, typed, "pieces of {sizes:?}");
    }
}

#[test]
fn a_runtime_seed_gets_a_large_field_in_the_buffer_it_was_read_into() {
    // A (u64, bytes) message whose bytes take the large-field path.
    let seed = RowSeed(Arc::from([Kind::U64, Kind::Bytes]));
    let payload: Vec<u8> = (0..BIG_FIELD + 1).map(|i| (i % 251) as u8).collect();
    let sent = (9u64, ByteBuf::from(payload.clone()));
    let mut bytes = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_frame(&sent, &mut bytes)
        .expect("encodes");
    let mut reader = seeded_reader(seed);
    let header = 4 + 8 + 8;
    let mut fed = reader.feed(&bytes[..header]);
    let mut filled_at = None;
    loop {
        match reader.decode(&mut || 0).expect("valid") {
            Ok(row) => {
                assert_eq!(row, vec![Value::U64(9), Value::Bytes(payload)]);
                let Value::Bytes(field) = &row[1] else {
                    unreachable!("checked above")
                };
                assert_eq!(Some(field.as_ptr()), filled_at, "the field was not copied");
                break;
            }
            Err(Need::Field) => {
                fed += reader.feed(&bytes[fed..]);
                if let Some((field, 0)) = reader.field_mut() {
                    filled_at = Some(field.as_ptr());
                }
            }
            Err(Need::Buffer) => panic!("the field's bytes go into the field"),
        }
    }
    assert_eq!(fed, bytes.len());
}

#[test]
fn a_runtime_seed_refuses_what_does_not_fit_its_shape() {
    // A message of four fields read with a seed for three: bytes are left over.
    let seed = RowSeed(Arc::from([Kind::U64, Kind::Bytes, Kind::Str]));
    for sent in [message(1, 3, 4, 5), message(2, BIG_FIELD, 4, 5)] {
        let bytes = wire(std::slice::from_ref(&sent));
        let got = read_in_pieces(seeded_reader(seed.clone()), &bytes, &[bytes.len()]);
        assert!(matches!(got, Err(CodecError::Malformed(_))), "{got:?}");
    }
}
