//! How a large frame's body is decoded around its large fields, in bincode's terms.
//!
//! [`probe`] decodes a frame's leading bytes as far as its first large field not read yet, and
//! says where that field starts and how long it is, so the transport can read the field from the
//! socket straight into its own buffer. [`decode_with_fields`] decodes the frame once every
//! large field is in, handing those buffers to the message as they are. Both see the body's
//! small bytes through [`FieldReader`], which can never hand out more than it holds.

use std::io::{self, Read};

use bincode::de::read::BincodeRead;

use crate::wire::{BIG_FIELD, CodecError, MessageSeed, WireFormat};

/// Where a probe of a large frame's leading bytes stopped.
pub(crate) enum Probe {
    /// At a large field not read yet: `consumed` small bytes lead up to it, and it holds `len`
    /// bytes.
    Field {
        /// Small bytes before the field.
        consumed: usize,
        /// The field's length.
        len: usize,
    },
    /// The bytes given ran out before the message or a large field.
    OutOfData,
    /// The whole message decoded from `consumed` small bytes (with empty stand-ins for the
    /// large fields already read, so it must be decoded again with the real ones).
    Complete {
        /// Small bytes the message took.
        consumed: usize,
    },
    /// The bytes are not a valid message (as far as a probe with stand-ins can tell).
    Invalid(CodecError),
}

/// Decodes `head` then `tail` (the small bytes of a large frame taken so far, then those
/// buffered after them) as far as the first large field after the `known` ones already read,
/// reading the message as `seed` does (the value it makes, if any, is dropped).
pub(crate) fn probe<T, D: MessageSeed<T>>(
    format: WireFormat,
    seed: D,
    head: &[u8],
    tail: &[u8],
    known: usize,
) -> Probe {
    let mut state = ReadState::probe(known);
    let mut no_fields = Vec::new();
    let reader = FieldReader {
        head,
        tail,
        fields: &mut no_fields,
        state: &mut state,
    };
    let outcome = format.decode_from(reader, seed);
    match (outcome, state.stop) {
        (_, Some(Stop::Field(len))) => Probe::Field {
            consumed: state.pos.saturating_sub(head.len()),
            len,
        },
        (_, Some(Stop::OutOfData)) => Probe::OutOfData,
        (Ok(_), None) => Probe::Complete {
            consumed: state.pos.saturating_sub(head.len()),
        },
        (Err(err), None) => Probe::Invalid(CodecError::Malformed(err)),
    }
}

/// Decodes a large frame from its small bytes, `smalls`, with its large `fields` slotted in
/// where they were read from, as `seed` reads it.
pub(crate) fn decode_with_fields<T, D: MessageSeed<T>>(
    format: WireFormat,
    seed: D,
    smalls: &[u8],
    mut fields: Vec<Vec<u8>>,
) -> Result<T, CodecError> {
    let known = fields.len();
    let mut state = ReadState::decode(known);
    let reader = FieldReader {
        head: smalls,
        tail: &[],
        fields: &mut fields,
        state: &mut state,
    };
    let value = format
        .decode_from(reader, seed)
        .map_err(CodecError::Malformed)?;
    if state.pos != smalls.len() || state.fields_seen < known {
        return Err(CodecError::malformed("bytes left over after the message"));
    }
    Ok(value)
}

/// Where a [`FieldReader`] stopped, when it stopped early.
enum Stop {
    /// At a large field not read yet, of this many bytes.
    Field(usize),
    /// At the end of the bytes available.
    OutOfData,
}

/// A [`FieldReader`]'s progress, kept outside it so it can be read after bincode is done.
struct ReadState {
    /// True while probing: large fields already read are stood in for by empty ones, and the
    /// first one not read yet stops the decode.
    probing: bool,
    /// Large fields read so far.
    known: usize,
    /// Large fields met so far.
    fields_seen: usize,
    /// Bytes taken from `head` then `tail`.
    pos: usize,
    stop: Option<Stop>,
}

impl ReadState {
    fn probe(known: usize) -> Self {
        ReadState {
            probing: true,
            known,
            fields_seen: 0,
            pos: 0,
            stop: None,
        }
    }

    fn decode(known: usize) -> Self {
        ReadState {
            probing: false,
            ..ReadState::probe(known)
        }
    }
}

/// A large field as a [`FieldReader`] hands it out.
enum Field {
    /// Read earlier into its own buffer (empty while probing).
    Ready(Vec<u8>),
    /// Not a large field, or a large one decoded from the frame's bytes: read it inline.
    Inline,
}

/// bincode's view of a frame body: its small bytes (`head`, then `tail`) with the large fields
/// already read slotted in wherever bincode asks for a byte buffer of [`BIG_FIELD`] or more.
struct FieldReader<'a> {
    head: &'a [u8],
    tail: &'a [u8],
    fields: &'a mut Vec<Vec<u8>>,
    state: &'a mut ReadState,
}

impl FieldReader<'_> {
    fn stop(&mut self, stop: Stop) -> bincode::Error {
        self.state.stop = Some(stop);
        Box::new(bincode::ErrorKind::Custom("stopped early".to_owned()))
    }

    /// Decides where the next byte buffer of `len` bytes comes from.
    fn field(&mut self, len: usize) -> bincode::Result<Field> {
        if len < BIG_FIELD {
            return Ok(Field::Inline);
        }
        let index = self.state.fields_seen;
        self.state.fields_seen += 1;
        if index >= self.state.known {
            return if self.state.probing {
                Err(self.stop(Stop::Field(len)))
            } else {
                Ok(Field::Inline)
            };
        }
        if self.state.probing {
            return Ok(Field::Ready(Vec::new()));
        }
        let field = std::mem::take(&mut self.fields[index]);
        if field.len() != len {
            return Err(Box::new(bincode::ErrorKind::Custom(format!(
                "field {index} was read as {} bytes but is decoded as {len}",
                field.len()
            ))));
        }
        Ok(Field::Ready(field))
    }

    /// The next `len` small bytes, borrowed when they lie in one slice.
    fn take(&mut self, len: usize) -> bincode::Result<std::borrow::Cow<'_, [u8]>> {
        let pos = self.state.pos;
        let total = self.head.len() + self.tail.len();
        if total - pos < len {
            return Err(self.stop(Stop::OutOfData));
        }
        self.state.pos += len;
        let end = pos + len;
        let head_len = self.head.len();
        Ok(if end <= head_len {
            self.head[pos..end].into()
        } else if pos >= head_len {
            self.tail[pos - head_len..end - head_len].into()
        } else {
            let mut joined = self.head[pos..].to_vec();
            joined.extend_from_slice(&self.tail[..end - head_len]);
            joined.into()
        })
    }
}

impl Read for FieldReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.take(out.len()) {
            Ok(bytes) => {
                out.copy_from_slice(&bytes);
                Ok(out.len())
            }
            Err(_) => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

impl<'de> BincodeRead<'de> for FieldReader<'_> {
    fn forward_read_str<V>(&mut self, length: usize, visitor: V) -> bincode::Result<V::Value>
    where
        V: serde::de::Visitor<'de>,
    {
        let invalid = |err| Box::new(bincode::ErrorKind::InvalidUtf8Encoding(err));
        match self.field(length)? {
            Field::Ready(field) => visitor.visit_str(std::str::from_utf8(&field).map_err(invalid)?),
            Field::Inline => {
                let bytes = self.take(length)?;
                visitor.visit_str(std::str::from_utf8(&bytes).map_err(invalid)?)
            }
        }
    }

    fn get_byte_buffer(&mut self, length: usize) -> bincode::Result<Vec<u8>> {
        match self.field(length)? {
            Field::Ready(field) => Ok(field),
            Field::Inline => Ok(self.take(length)?.into_owned()),
        }
    }

    fn forward_read_bytes<V>(&mut self, length: usize, visitor: V) -> bincode::Result<V::Value>
    where
        V: serde::de::Visitor<'de>,
    {
        match self.field(length)? {
            Field::Ready(field) => visitor.visit_byte_buf(field),
            Field::Inline => visitor.visit_bytes(&self.take(length)?),
        }
    }
}
