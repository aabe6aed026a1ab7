//! The frame reader driven without a socket: any split, in-place fields, stalled peers.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::*;
use crate::transport::field_room;
use crate::wire::{DEFAULT_MAX_FRAME, MIN_MAX_FRAME};

#[path = "seed_tests.rs"]
mod seed;

/// Small fields around large ones, as a service's request might have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    id: u64,
    first: ByteBuf,
    note: String,
    second: ByteBuf,
}

fn message(id: u64, first: usize, note: usize, second: usize) -> Message {
    Message {
        id,
        first: ByteBuf::from(
            (0..first)
                .map(|i| (i * 7) as u8 ^ id as u8)
                .collect::<Vec<_>>(),
        ),
        note: "n".repeat(note),
        second: ByteBuf::from(vec![id as u8; second]),
    }
}

fn codec(limit: usize) -> WireCodec<Message, ()> {
    WireCodec::new(FrameLimit::new(limit).expect("in range"))
}

fn wire(messages: &[Message]) -> Vec<u8> {
    let format = WireFormat::new(FrameLimit::default());
    let mut wire = BytesMut::new();
    for m in messages {
        format.encode_frame(m, &mut wire).expect("encodes");
    }
    wire.to_vec()
}

/// Feeds `wire` in pieces of the sizes `sizes` cycles through, decoding all it can after each.
fn decode_in_pieces(wire: &[u8], sizes: &[usize]) -> Result<Vec<Message>, CodecError> {
    let reader = FrameReader::new(&codec(DEFAULT_MAX_FRAME), BytesMut::new());
    read_in_pieces(reader, wire, sizes)
}

/// Feeds `wire` to `reader` in pieces of the sizes `sizes` cycles through, decoding all it can
/// after each.
fn read_in_pieces<T, D: MessageSeed<T>>(
    mut reader: FrameReader<T, D>,
    wire: &[u8],
    sizes: &[usize],
) -> Result<Vec<T>, CodecError> {
    let mut got = Vec::new();
    let mut rest = wire;
    for size in sizes.iter().cycle() {
        while let Ok(m) = reader.decode(&mut || 0)? {
            got.push(m);
        }
        if rest.is_empty() {
            break;
        }
        let piece = &rest[..(*size).min(rest.len())];
        let taken = reader.feed(piece);
        rest = &rest[taken..];
    }
    assert!(!reader.is_mid_frame(), "bytes left in the reader");
    Ok(got)
}

fn mixed() -> Vec<Message> {
    vec![
        message(0, 0, 0, 0),
        message(1, BIG_FIELD, 10, 0),
        message(2, 300_000, 3, BIG_FIELD * 2),
        message(3, BIG_FIELD - 1, 0, BIG_FIELD - 1),
        message(4, 5, BIG_FIELD, 5),
        message(5, 10, 10, 10),
    ]
}

#[test]
fn a_small_message_survives_being_fed_byte_by_byte() {
    let sent = vec![message(9, 3, 4, 5)];
    let bytes = wire(&sent);
    let mut reader = FrameReader::new(&codec(MIN_MAX_FRAME), BytesMut::new());
    for (i, byte) in bytes.iter().enumerate() {
        assert!(
            matches!(reader.decode(&mut || 0), Ok(Err(Need::Buffer))),
            "decoded before byte {i} of {} arrived",
            bytes.len()
        );
        reader.feed(&[*byte]);
    }
    assert_eq!(
        reader.decode(&mut || 0).expect("valid").ok(),
        sent.first().cloned()
    );
    assert!(!reader.is_mid_frame());
}

#[test]
fn messages_decode_the_same_in_any_split() {
    let sent = mixed();
    let bytes = wire(&sent);
    for sizes in [
        &[bytes.len()][..],
        &[1],
        &[7, 4093, 1, 65_537, 13],
        &[BIG_FIELD - 3, 2, 100_003],
        &[3, 5, 8, 13, 21, 34, 55, 89, 144],
    ] {
        let got = decode_in_pieces(&bytes, sizes).expect("decodes");
        assert_eq!(got, sent, "pieces of {sizes:?}");
    }
}

#[test]
fn a_large_field_is_read_in_place_not_through_the_buffer() {
    let sent = message(1, 1 << 20, 0, 0);
    let bytes = wire(std::slice::from_ref(&sent));
    let mut reader = FrameReader::new(&codec(DEFAULT_MAX_FRAME), BytesMut::new());
    let header = 4 + 8 + 8;
    reader.feed(&bytes[..header]);
    assert_eq!(
        reader.decode(&mut || 0).expect("valid").err(),
        Some(Need::Field)
    );
    let (_, missing) = reader.field_mut().expect("a field being filled");
    assert_eq!(missing, 1 << 20);
    // Fed as a socket reads: each piece into the field's room, the reader growing it between.
    let mut taken = 0;
    while let Some((_, missing)) = reader.field_mut().filter(|(_, missing)| *missing > 0) {
        let n = reader.feed(&bytes[header + taken..]);
        assert!(n > 0 && n <= missing, "took {n} of {missing} missing");
        taken += n;
        if taken < 1 << 20 {
            assert_eq!(
                reader.decode(&mut || 0).expect("valid").err(),
                Some(Need::Field)
            );
        }
    }
    assert_eq!(taken, 1 << 20, "the field takes exactly its own bytes");
    reader.feed(&bytes[header + taken..]);
    assert_eq!(reader.decode(&mut || 0).expect("valid").ok(), Some(sent));
}

#[test]
fn a_stalled_large_field_holds_what_arrived_plus_one_step() {
    // A frame announcing nearly 16 MiB, its first field claiming nearly all of it.
    let claimed = DEFAULT_MAX_FRAME - 1024;
    let mut bytes = wire(&[message(1, BIG_FIELD, 0, 0)]);
    bytes[..4].copy_from_slice(&((claimed + 16 + 8 + 8) as u32).to_be_bytes());
    bytes[12..20].copy_from_slice(&(claimed as u64).to_le_bytes());
    let mut reader = FrameReader::new(&codec(DEFAULT_MAX_FRAME), BytesMut::new());
    reader.feed(&bytes[..100]);
    assert_eq!(
        reader.decode(&mut || 0).expect("valid so far").err(),
        Some(Need::Field)
    );
    let stalled = reader.held_bytes();
    assert!(
        stalled <= 100 + field_room() + MIN_READ_SPACE + 64,
        "100 bytes of a stalled field hold {stalled} bytes"
    );

    // A megabyte more, then a stall: room for what arrived, not for the claim.
    let megabyte = vec![7u8; 1 << 20];
    let mut rest = &megabyte[..];
    while !rest.is_empty() {
        rest = &rest[reader.feed(rest)..];
        assert_eq!(
            reader.decode(&mut || 0).expect("valid so far").err(),
            Some(Need::Field)
        );
    }
    let held = reader.held_bytes();
    assert!(
        held <= 2 * (1 << 20) + field_room() + MIN_READ_SPACE,
        "a stalled field of 1 MiB holds {held} bytes"
    );

    // Once the field's room is used up, bytes the socket says are ready get room at once.
    let (field, _) = reader.field_mut().expect("a field being filled");
    let spare = field.capacity() - field.len();
    assert_eq!(reader.feed(&vec![7u8; spare]), spare);
    let need = reader.decode(&mut || 8 << 20).expect("valid so far").err();
    assert_eq!(need, Some(Need::Field));
    assert!(reader.held_bytes() >= 8 << 20);
}

#[test]
fn a_field_claiming_more_than_its_frame_holds_is_malformed_at_once() {
    let mut bytes = wire(&[message(1, BIG_FIELD, 0, 0)]);
    bytes[12..20].copy_from_slice(&(12u64 << 20).to_le_bytes());
    let mut reader = FrameReader::new(&codec(DEFAULT_MAX_FRAME), BytesMut::new());
    reader.feed(&bytes[..64]);
    let err = reader.decode(&mut || 0).expect_err("refused");
    assert!(crate::error_chain(&err).contains("holds only"), "{err}");
}

#[test]
fn a_frame_over_the_limit_is_refused_when_its_length_arrives() {
    let limit = MIN_MAX_FRAME;
    let mut reader = FrameReader::new(&codec(limit), BytesMut::new());
    reader.feed(&((limit + 1) as u32).to_be_bytes());
    assert!(matches!(
        reader.decode(&mut || 0),
        Err(CodecError::IncomingTooLarge { len, .. }) if len == limit + 1
    ));
    let mut at_limit = FrameReader::new(&codec(limit), BytesMut::new());
    at_limit.feed(&(limit as u32).to_be_bytes());
    assert!(matches!(at_limit.decode(&mut || 0), Ok(Err(Need::Buffer))));
}
