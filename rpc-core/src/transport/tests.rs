//! The transport over real sockets: messages of every size, in any split, intact and in order;
//! hostile frames refused without a hang.

use super::*;
use crate::wire::{DEFAULT_MAX_FRAME, FrameLimit, LENGTH_PREFIX_LEN, MIN_MAX_FRAME, WireFormat};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// A message with small fields around large ones, as a service's request might be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    id: u64,
    name: String,
    first: ByteBuf,
    note: String,
    second: ByteBuf,
    tail: Vec<u32>,
}

fn message(id: u64, first: usize, second: usize, note: usize) -> Message {
    Message {
        id,
        name: format!("message {id}"),
        first: ByteBuf::from(
            (0..first)
                .map(|i| (i * 7 + id as usize) as u8)
                .collect::<Vec<_>>(),
        ),
        note: "n".repeat(note),
        second: ByteBuf::from(vec![id as u8; second]),
        tail: vec![1, 2, 3, id as u32],
    }
}

type Transport = WireTransport<LocalStream, Message, Message>;

fn local(stream: UnixStream) -> LocalStream {
    LocalStream::unix(stream).expect("registers")
}

fn pair(limit: usize) -> (Transport, Transport) {
    let (a, b) = UnixStream::pair().expect("socket pair");
    let codec = || WireCodec::new(FrameLimit::new(limit).expect("in range"));
    (
        WireTransport::new(local(a), BytesMut::new(), codec()),
        WireTransport::new(local(b), BytesMut::new(), codec()),
    )
}

/// Mixed sizes, sent back to back without waiting, so writes fill the socket and resume and
/// reads find several frames (and parts of frames) in one buffer.
fn mixed() -> Vec<Message> {
    let sizes = [
        (0, 0, 0),
        (BIG_FIELD, 0, 10),
        (1 << 20, 3, 0),
        (5, BIG_FIELD * 3, BIG_FIELD),
        (BIG_FIELD - 1, BIG_FIELD - 1, 0),
        (3 << 20, 1 << 20, 100),
        (10, 10, 10),
    ];
    (0..3)
        .flat_map(|round| {
            sizes
                .iter()
                .enumerate()
                .map(move |(i, &(a, b, n))| message((round * sizes.len() + i) as u64, a, b, n))
        })
        .collect()
}

#[tokio::test]
async fn mixed_messages_arrive_intact_and_in_order() {
    let (mut a, mut b) = pair(DEFAULT_MAX_FRAME);
    let sent = mixed();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for m in to_send {
            a.feed(m).await.expect("queues");
        }
        a.flush().await.expect("flushes");
        a
    });
    for expected in &sent {
        let got = b
            .next()
            .await
            .expect("a message")
            .unwrap_or_else(|e| panic!("message {}: {e:?}", expected.id));
        assert_eq!(&got, expected);
    }
    let a = writer.await.expect("writer");
    drop(a);
    assert!(b.next().await.is_none(), "clean end after the last frame");
}

/// Encodes `messages` the way a transport writes them, as raw bytes.
async fn wire_bytes(messages: Vec<Message>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (a, mut raw) = UnixStream::pair().expect("socket pair");
    let mut a: Transport = WireTransport::new(
        local(a),
        BytesMut::new(),
        WireCodec::new(FrameLimit::default()),
    );
    let writer = tokio::spawn(async move {
        for m in messages {
            a.feed(m).await.expect("queues");
        }
        a.close().await.expect("closes");
    });
    let mut wire = Vec::new();
    raw.read_to_end(&mut wire).await.expect("reads");
    writer.await.expect("writer");
    wire
}

#[tokio::test]
async fn messages_arriving_in_odd_pieces_decode_the_same() {
    let sent = mixed();
    let wire = wire_bytes(sent.clone()).await;
    let (b, mut raw) = UnixStream::pair().expect("socket pair");
    let mut b: Transport = WireTransport::new(
        local(b),
        BytesMut::new(),
        WireCodec::new(FrameLimit::default()),
    );
    let feeder = tokio::spawn(async move {
        // Odd piece sizes land frame and field boundaries everywhere; yielding after each
        // piece lets the reader see every partial state.
        let sizes = [1, 7, 4_093, 65_537, 13, 200_003];
        let mut rest = &wire[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).min(rest.len()));
            raw.write_all(piece).await.expect("writes");
            rest = tail;
            tokio::task::yield_now().await;
        }
    });
    for expected in &sent {
        let got = b.next().await.expect("a message").expect("decodes");
        assert_eq!(&got, expected);
    }
    feeder.await.expect("feeder");
    assert!(b.next().await.is_none());
}

/// A frame (after the prefix) whose body is `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    wire
}

async fn decode_raw(wire: Vec<u8>) -> Result<Message, CodecError> {
    let (b, mut raw) = UnixStream::pair().expect("socket pair");
    let mut b: Transport = WireTransport::new(
        local(b),
        BytesMut::new(),
        WireCodec::new(FrameLimit::default()),
    );
    tokio::spawn(async move {
        let _ = raw.write_all(&wire).await;
        let _ = raw.shutdown().await;
        // Keep the socket open until the reader is done.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    b.next().await.expect("an item")
}

fn body_of<T: Serialize>(m: &T) -> Vec<u8> {
    let mut body = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_body(m, &mut body)
        .expect("encodes");
    body.to_vec()
}

#[tokio::test]
async fn a_field_claiming_more_than_its_frame_holds_is_malformed() {
    let mut body = body_of(&message(1, BIG_FIELD, 0, 0));
    // Claim a 12 MiB field in a frame that holds 32 KiB.
    let name_end = 8 + 8 + "message 1".len();
    body[name_end..name_end + 8].copy_from_slice(&(12u64 << 20).to_le_bytes());
    let err = decode_raw(frame(&body)).await.expect_err("refused");
    assert!(err.to_string().contains("not a valid message"), "{err}");
    assert!(
        error_text(&err).contains("holds only"),
        "{}",
        error_text(&err)
    );
}

fn error_text(err: &CodecError) -> String {
    crate::error_chain(err)
}

#[tokio::test]
async fn trailing_bytes_after_a_large_message_are_malformed() {
    let mut body = body_of(&message(1, BIG_FIELD, 0, 0));
    body.extend_from_slice(b"junk");
    let err = decode_raw(frame(&body)).await.expect_err("refused");
    assert!(
        error_text(&err).contains("left over"),
        "{}",
        error_text(&err)
    );
}

#[tokio::test]
async fn a_large_frame_cut_short_is_an_error_not_a_hang() {
    let body = body_of(&message(1, 1 << 20, 0, 0));
    let mut wire = frame(&body);
    wire.truncate(wire.len() / 2);
    let err = decode_raw(wire).await.expect_err("refused");
    assert!(
        error_text(&err).contains("middle of a frame"),
        "{}",
        error_text(&err)
    );
}

#[tokio::test]
async fn a_large_frame_of_small_fields_falls_back_to_one_whole_decode() {
    // 20,000 short strings: no large field for the probe to find.
    let many: Vec<String> = (0..20_000).map(|i| format!("item {i}")).collect();
    let (a, b) = UnixStream::pair().expect("socket pair");
    let codec = || WireCodec::<Vec<String>, Vec<String>>::new(FrameLimit::default());
    let mut a = WireTransport::new(local(a), BytesMut::new(), codec());
    let mut b = WireTransport::new(local(b), BytesMut::new(), codec());
    let sent = many.clone();
    tokio::spawn(async move { a.send(sent).await.expect("sends") });
    assert_eq!(b.next().await.expect("an item").expect("decodes"), many);
}

#[tokio::test]
async fn a_buffer_partly_written_takes_no_more_frames_so_sent_bytes_are_freed() {
    let (mut a, mut b) = pair(DEFAULT_MAX_FRAME);
    // Small frames, several per buffer, until the socket is full partway through a buffer.
    let mut queued = 0;
    let noop = &mut Context::from_waker(std::task::Waker::noop());
    let partly_written = |a: &Transport| a.writer.front_is_partly_written();
    while !partly_written(&a) {
        assert!(
            queued < 10_000,
            "the socket never filled partway through a buffer"
        );
        for _ in 0..4 {
            a.queue(message(queued, 20_000, 0, 0)).expect("queues");
            queued += 1;
        }
        let _ = a.poll_send(noop);
    }
    a.queue(message(queued, 100, 0, 0)).expect("queues");
    queued += 1;
    assert_eq!(
        a.writer.queued_entries(),
        2,
        "a new buffer for the frame queued behind the partial one"
    );
    let reader = tokio::spawn(async move {
        for id in 0..queued {
            let got = b.next().await.expect("a message").expect("decodes");
            assert_eq!(got.id, id);
        }
    });
    a.flush().await.expect("flushes");
    reader.await.expect("reader");
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_anything_is_sent() {
    let (mut a, mut b) = pair(MIN_MAX_FRAME);
    let err = a
        .send(message(1, BIG_FIELD, 0, 0))
        .await
        .expect_err("too large");
    assert!(matches!(err, CodecError::OutgoingTooLarge { .. }), "{err}");
    a.send(message(2, 10, 10, 10))
        .await
        .expect("a small one still goes");
    assert_eq!(b.next().await.expect("item").expect("decodes").id, 2);
}

#[tokio::test]
async fn corrupted_leading_bytes_of_large_frames_end_in_a_message_or_an_error() {
    // Every byte of the small part of two large frames, set to values that make lengths
    // huge, zero or negative-looking and variants unknown: the reader must finish each one
    // with a message or an error (no panic, no hang), whatever the probe made of it.
    let sent = frame(&body_of(&message(1, BIG_FIELD, BIG_FIELD, 3)));
    let mut wire = sent.clone();
    wire.extend_from_slice(&frame(&body_of(&message(2, 1 << 20, 0, 0))));
    let first_field = LENGTH_PREFIX_LEN + 8 + 8 + "message 1".len() + 8;
    let second_frame = sent.len();
    let positions = (LENGTH_PREFIX_LEN..first_field + 16)
        .chain(first_field + BIG_FIELD..first_field + BIG_FIELD + 40)
        .chain(second_frame..second_frame + 60);
    for position in positions {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut wire = wire.clone();
            wire[position] = value;
            let (b, mut raw) = UnixStream::pair().expect("socket pair");
            let mut b: Transport = WireTransport::new(
                local(b),
                BytesMut::new(),
                WireCodec::new(FrameLimit::default()),
            );
            let writer = tokio::spawn(async move {
                let _ = raw.write_all(&wire).await;
                let _ = raw.shutdown().await;
                raw
            });
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while let Some(item) = b.next().await {
                    if item.is_err() {
                        break;
                    }
                }
            })
            .await;
            assert!(
                outcome.is_ok(),
                "byte {position} set to {value:#x}: the reader hung"
            );
            drop(b);
            let _ = writer.await;
        }
    }
}

#[tokio::test]
async fn a_large_request_with_a_huge_deadline_is_refused_before_it_is_decoded() {
    use crate::services::echo::{EchoRequest, EchoResponse};
    use crate::wire::ClientMessage;
    use tarpc::{Request, Response, context};
    let request = ClientMessage::Request(Request {
        context: context::current(),
        id: 1,
        message: EchoRequest::Echo {
            bytes: ByteBuf::from(vec![1u8; 2 * BIG_FIELD]),
        },
    });
    let mut body = body_of(&request);
    // The deadline's seconds, right after the variant: far beyond what `Instant` can hold.
    body[4..12].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let (b, raw) = UnixStream::pair().expect("socket pair");
    let mut server = WireTransport::<_, ClientMessage<EchoRequest>, Response<EchoResponse>>::new(
        local(b),
        BytesMut::new(),
        WireCodec::for_requests(FrameLimit::default()),
    );
    let mut raw = raw;
    tokio::spawn(async move {
        let _ = raw.write_all(&frame(&body)).await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    let err = server
        .next()
        .await
        .expect("an item")
        .expect_err("refused, not decoded (decoding would panic)");
    assert!(
        error_text(&err).contains("beyond the maximum"),
        "{}",
        error_text(&err)
    );
}

/// A message whose `Deserialize` rejects an empty byte field: the probe's stand-in.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Strict {
    #[serde(deserialize_with = "non_empty")]
    first: ByteBuf,
    tail: u32,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
    let bytes = ByteBuf::deserialize(d)?;
    if bytes.is_empty() {
        return Err(serde::de::Error::custom("empty"));
    }
    Ok(bytes)
}

#[tokio::test]
async fn a_message_that_rejects_the_probes_stand_ins_decodes_without_more_bytes_arriving() {
    let sent = Strict {
        first: ByteBuf::from(vec![9u8; 2 * BIG_FIELD]),
        tail: 7,
    };
    let body = body_of(&sent);
    let (b, raw) = UnixStream::pair().expect("socket pair");
    // The whole frame is already buffered (as bytes read past a handshake can be), and the
    // socket stays silent.
    let mut b = WireTransport::<_, Strict, ()>::new(
        local(b),
        BytesMut::from(&frame(&body)[..]),
        WireCodec::new(FrameLimit::default()),
    );
    let started = std::time::Instant::now();
    // (A timeout's own wake-up would poll the reader again and hide the bug: time it.)
    let got = tokio::time::timeout(std::time::Duration::from_secs(2), b.next())
        .await
        .expect("decoded")
        .expect("an item")
        .expect("decodes");
    assert_eq!(got, sent);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "decoding waited {:?} for bytes that were already buffered",
        started.elapsed()
    );
    drop(raw);
}

#[tokio::test]
async fn receive_now_reads_what_arrived_before_the_runtime_reports_it() {
    let (mut a, mut b) = pair(DEFAULT_MAX_FRAME);
    let noop = &mut Context::from_waker(std::task::Waker::noop());
    assert!(b.receive_now().is_pending(), "nothing was sent");
    assert!(b.poll_receive(noop).is_pending(), "nothing was sent");
    let sent = message(1, 10, 0, 3);
    a.send(sent.clone()).await.expect("sent");
    // This task has not yielded since the bytes arrived, so the runtime has not seen them.
    assert!(b.poll_receive(noop).is_pending(), "the runtime saw them");
    match b.receive_now() {
        Poll::Ready(Some(Ok(got))) => assert_eq!(got, sent),
        other => panic!("expected the message, got {other:?}"),
    }
    assert!(b.receive_now().is_pending(), "one message was sent");
    drop(a);
    assert!(
        matches!(b.receive_now(), Poll::Ready(None)),
        "the peer left"
    );
}

#[tokio::test]
async fn receive_now_alone_reads_large_fields_intact_and_in_order() {
    let (mut a, mut b) = pair(DEFAULT_MAX_FRAME);
    let sent = mixed();
    let writer = tokio::spawn({
        let sent = sent.clone();
        async move {
            for m in sent {
                a.feed(m).await.expect("queues");
            }
            a.flush().await.expect("flushed");
        }
    });
    let mut got = Vec::new();
    while got.len() < sent.len() {
        match b.receive_now() {
            Poll::Ready(Some(m)) => got.push(m.expect("decodes")),
            Poll::Ready(None) => panic!("ended after {} messages", got.len()),
            // Nothing more yet: let the writer go on.
            Poll::Pending => tokio::task::yield_now().await,
        }
    }
    assert_eq!(got, sent);
    writer.await.expect("the writer finished");
}

#[tokio::test]
async fn receive_now_reads_tcp_too_and_fails_a_frame_cut_short() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("an address");
    let (raw, accepted) = tokio::join!(tokio::net::TcpStream::connect(address), listener.accept());
    let mut raw = raw.expect("connects");
    let (b, _) = accepted.expect("accepts");
    let codec = WireCodec::new(FrameLimit::new(DEFAULT_MAX_FRAME).expect("in range"));
    let mut b: Transport =
        WireTransport::new(LocalStream::tcp(b).expect("wraps"), BytesMut::new(), codec);
    let sent = message(2, 5, 0, 1);
    let mut body = BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_body(&sent, &mut body)
        .expect("encodes");
    raw.write_all(&frame(&body)).await.expect("writes");
    // Loopback TCP delivers before the write returns; the runtime has not been asked.
    let got = loop {
        match b.receive_now() {
            Poll::Ready(Some(m)) => break m.expect("decodes"),
            Poll::Ready(None) => panic!("ended"),
            Poll::Pending => tokio::task::yield_now().await,
        }
    };
    assert_eq!(got, sent);
    // Half a frame, then the peer leaves.
    raw.write_all(&frame(&body)[..body.len() / 2])
        .await
        .expect("writes");
    drop(raw);
    let cut = loop {
        match b.receive_now() {
            Poll::Ready(got) => break got,
            Poll::Pending => tokio::task::yield_now().await,
        }
    };
    match cut {
        Some(Err(CodecError::Io(err))) => {
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}")
        }
        other => panic!("expected the cut frame to fail, got {other:?}"),
    }
}
