//! The transport with the shared-memory lane, over real socket pairs and real memfds: large
//! fields travel through the regions, slots come back, a message short of room waits for them
//! (and for a peer that never gives them back, goes through the socket), and a peer breaking the
//! lane's rules is refused.

use super::*;
use crate::lane::ShmSize;
use crate::wire::{BIG_FIELD, DEFAULT_MAX_FRAME, FrameLimit, WireFormat};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    id: u64,
    payload: ByteBuf,
    note: String,
}

fn message(id: u64, len: usize) -> Message {
    Message {
        id,
        payload: ByteBuf::from(
            (0..len)
                .map(|i| (i + id as usize) as u8)
                .collect::<Vec<_>>(),
        ),
        note: format!("message {id}"),
    }
}

type Transport = WireTransport<LocalStream, Message, Message>;

fn lane_pair(shm: u64) -> (Transport, Transport, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socket pair");
    let codec = || WireCodec::new(FrameLimit::default());
    let size = ShmSize::new(shm).expect("in range");
    let probe = b.into_std().expect("std");
    let b = UnixStream::from_std(probe.try_clone().expect("dup")).expect("registers");
    let transport = |s| {
        WireTransport::new(
            LocalStream::unix(s).expect("registers"),
            BytesMut::new(),
            codec(),
        )
        .with_lane(size)
    };
    let probe = UnixStream::from_std(probe).expect("registers");
    (transport(a), transport(b), probe)
}

/// Bytes waiting to be read on the socket `probe` shares with the receiving transport.
fn waiting(probe: &UnixStream) -> usize {
    rustix::io::ioctl_fionread(probe).expect("fionread") as usize
}

#[tokio::test]
async fn a_large_field_travels_through_the_region_and_only_a_doorbell_through_the_socket() {
    let (mut a, mut b, probe) = lane_pair(4 << 20);
    a.send(message(1, 1 << 20)).await.expect("sent");
    let on_socket = waiting(&probe);
    assert!(
        on_socket < 200,
        "{on_socket} bytes on the socket for a 1 MiB field"
    );
    assert!(a.lane_in_use() >= 1 << 20);
    assert_eq!(
        b.next().await.expect("a message").expect("valid"),
        message(1, 1 << 20)
    );
    assert_eq!(b.last_frame_len(), {
        let format = WireFormat::new(FrameLimit::default());
        format.body_len(&message(1, 1 << 20)).expect("sized")
    });
    // The receiver's next write carries the release; the sender frees the slot on its next read.
    b.send(message(2, 10)).await.expect("sent");
    assert_eq!(
        a.next().await.expect("a message").expect("valid"),
        message(2, 10)
    );
    assert_eq!(a.lane_in_use(), 0);
}

/// Sends `m` on `a`, reading (into `got`) what arrives meanwhile, as a client or server does
/// while its writes wait: the peer's reports of released slots arrive that way.
async fn send_reading(a: &mut Transport, m: Message, got: &mut Vec<Message>) {
    a.queue(m).expect("queued");
    std::future::poll_fn(|cx| {
        while let Poll::Ready(Some(read)) = a.poll_receive(cx) {
            got.push(read.expect("valid"));
        }
        a.poll_send(cx)
    })
    .await
    .expect("sent");
}

#[tokio::test(start_paused = true)]
async fn a_message_short_of_room_waits_for_slots_and_still_goes_through_the_lane() {
    let (mut a, b, _probe) = lane_pair(1 << 20);
    // The peer reads and reports each slot copied at once, as the client and server do.
    let sent: Vec<Message> = (0..6).map(|id| message(id, 400 * 1024)).collect();
    let reader = tokio::spawn(async move {
        let mut b = b;
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(b.next().await.expect("a message").expect("valid"));
            b.flush().await.expect("release written");
        }
        got
    });
    let start = tokio::time::Instant::now();
    let mut got_back = Vec::new();
    for m in sent.clone() {
        send_reading(&mut a, m, &mut got_back).await;
    }
    // Two fit the region at a time: each later one waited for a slot, and no wait ran out
    // (with time paused, one that did would have moved the clock on by LANE_WAIT).
    assert!(start.elapsed() < crate::lane::LANE_WAIT);
    assert!(
        a.writer.lane_handed_out() >= 6 * 400 * 1024,
        "every field through the region: {} bytes handed out",
        a.writer.lane_handed_out()
    );
    assert!(got_back.is_empty());
    assert_eq!(reader.await.expect("the reader ends"), sent);
}

/// Sends `out` on `t` while reading, then reads until `count` messages have come, reporting
/// each slot copied at once; returns what came.
async fn exchange(t: &mut Transport, out: Vec<Message>, count: usize) -> Vec<Message> {
    let mut got = Vec::new();
    for m in out {
        send_reading(t, m, &mut got).await;
    }
    while got.len() < count {
        got.push(t.next().await.expect("a message").expect("valid"));
        t.flush().await.expect("release written");
    }
    got
}

#[tokio::test(start_paused = true)]
async fn both_sides_waiting_for_room_report_freed_slots_ahead_of_their_waiting_messages() {
    let (mut a, mut b, _probe) = lane_pair(1 << 20);
    let from_a: Vec<Message> = (0..6).map(|id| message(id, 400 * 1024)).collect();
    let from_b: Vec<Message> = (10..16).map(|id| message(id, 400 * 1024)).collect();
    let start = tokio::time::Instant::now();
    let (got_a, got_b) = tokio::join!(
        exchange(&mut a, from_a.clone(), 6),
        exchange(&mut b, from_b.clone(), 6)
    );
    assert_eq!((got_a, got_b), (from_b, from_a));
    // Each side's third message waited for room while the other's waited too: the reports of
    // freed slots went ahead of them, or both would have waited until LANE_WAIT ran out.
    assert!(start.elapsed() < crate::lane::LANE_WAIT);
    assert!(a.writer.lane_handed_out() >= 6 * 400 * 1024);
    assert!(b.writer.lane_handed_out() >= 6 * 400 * 1024);
}

/// With a message waiting for room and nobody reading: only doorbells are on the socket (probed
/// through `probe`) for half of [`crate::lane::LANE_WAIT`], then, once the wait has run out, the
/// socket carries the rest; `b` then reads every one of `sent`, in order.
async fn the_socket_carries_them_once_a_wait_runs_out(
    probe: &UnixStream,
    b: &mut Transport,
    sent: &[Message],
) {
    let wait = crate::lane::LANE_WAIT;
    tokio::time::sleep(wait / 2).await;
    let on_socket = waiting(probe);
    assert!(on_socket < 1024, "{on_socket} bytes on the socket");
    tokio::time::sleep(wait).await;
    assert!(
        waiting(probe) > 100 * 1024,
        "later fields went through the socket"
    );
    for expected in sent {
        assert_eq!(
            &b.next().await.expect("a message").expect("valid"),
            expected
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_gives_slots_back_costs_one_wait_then_the_socket_carries_in_order() {
    let (mut a, mut b, probe) = lane_pair(1 << 20);
    let sent: Vec<Message> = (0..6).map(|id| message(id, 400 * 1024)).collect();
    let to_send = sent.clone();
    let start = tokio::time::Instant::now();
    let writer = tokio::spawn(async move {
        for m in to_send {
            a.send(m).await.expect("sent");
        }
        (a, start.elapsed())
    });
    // Nobody reads for a while: the first two fit the region and the third waits for room.
    let wait = crate::lane::LANE_WAIT;
    the_socket_carries_them_once_a_wait_runs_out(&probe, &mut b, &sent).await;
    let (mut a, took) = writer.await.expect("the writer ends");
    assert!(took < wait * 2, "one wait, not one per message: {took:?}");
    assert!(
        a.writer.lane_handed_out() < 3 * 400 * 1024,
        "two went by the lane"
    );
    b.send(message(9, 1)).await.expect("sent");
    a.next().await.expect("a message").expect("valid");
    assert_eq!(a.lane_in_use(), 0, "every slot came back");
}

#[tokio::test(start_paused = true)]
async fn a_sender_keeps_at_most_lane_ahead_out_though_the_region_has_room() {
    let ahead = crate::lane::LANE_AHEAD as usize;
    let (mut a, mut b, probe) = lane_pair(4 * ahead as u64);
    // Alone, a message may take more than LANE_AHEAD of the region.
    a.send(message(0, 3 * ahead)).await.expect("sent");
    assert!(waiting(&probe) < 200, "only a doorbell on the socket");
    assert_eq!(
        b.next().await.expect("a message").expect("valid"),
        message(0, 3 * ahead)
    );
    b.flush().await.expect("release written");
    let report = std::future::poll_fn(|cx| match a.poll_receive(cx) {
        Poll::Pending => Poll::Ready(None),
        other => Poll::Ready(Some(other)),
    });
    tokio::task::yield_now().await;
    assert!(
        report.await.is_none(),
        "the report is taken in, nothing else"
    );
    assert_eq!(a.lane_in_use(), 0);
    // Then, with nobody reading, two fields of 40 % of it each go out, and the third waits,
    // though the region has room for it...
    let field = ahead * 2 / 5;
    let sent: Vec<Message> = (1..4).map(|id| message(id, field)).collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for m in to_send {
            a.send(m).await.expect("sent");
        }
        a
    });
    the_socket_carries_them_once_a_wait_runs_out(&probe, &mut b, &sent).await;
    // The second lap of the region (everything was back when it began) took two fields.
    let a = writer.await.expect("the writer ends");
    let lap = a.writer.lane_handed_out() - 4 * ahead as u64;
    assert!(lap < (5 * field / 2) as u64, "{lap} bytes through the lane");
}

#[tokio::test(start_paused = true)]
async fn a_report_that_frees_nothing_does_not_make_messages_wait_again() {
    let (a, peer) = UnixStream::pair().expect("socket pair");
    let size = ShmSize::new(1 << 20).expect("in range");
    let codec = WireCodec::new(FrameLimit::default());
    let a = LocalStream::unix(a).expect("registers");
    let mut a: Transport = WireTransport::new(a, BytesMut::new(), codec).with_lane(size);
    // A raw peer that reads everything and gives nothing back.
    let (mut from_a, mut to_a) = peer.into_split();
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 1 << 16];
        while tokio::io::AsyncReadExt::read(&mut from_a, &mut sink)
            .await
            .is_ok_and(|n| n > 0)
        {}
    });
    let wait = crate::lane::LANE_WAIT;
    let start = tokio::time::Instant::now();
    for id in 0..3 {
        a.send(message(id, 400 * 1024)).await.expect("sent");
    }
    // Two went by the lane; the third waited out LANE_WAIT, then took the socket.
    assert!(start.elapsed() >= wait);
    // The peer reports the position it was already at: nothing freed.
    to_a.write_all(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0])
        .await
        .expect("written");
    let read = std::future::poll_fn(|cx| match a.poll_receive(cx) {
        Poll::Pending => Poll::Ready(None),
        other => Poll::Ready(Some(other)),
    });
    tokio::task::yield_now().await;
    assert!(read.await.is_none(), "the report is taken in, nothing else");
    assert_eq!(a.lane_in_use(), 2 * 400 * 1024, "nothing was freed");
    let before = tokio::time::Instant::now();
    a.send(message(3, 400 * 1024)).await.expect("sent");
    assert!(
        before.elapsed() < wait,
        "it went through the socket without waiting again"
    );
    drop(a);
    drain.await.expect("the drain ends");
}

#[tokio::test(start_paused = true)]
async fn a_message_larger_than_the_region_goes_through_the_socket_without_waiting() {
    let (mut a, mut b, probe) = lane_pair(1 << 20);
    // A slot is out and stays out (nobody reads), then a field larger than the whole region:
    // no release could ever make room for it.
    a.send(message(0, 400 * 1024)).await.expect("sent");
    let larger = message(1, 2 << 20);
    let writer = tokio::spawn(async move {
        a.send(larger).await.expect("sent");
        a
    });
    tokio::task::yield_now().await;
    assert!(
        waiting(&probe) > 100 * 1024,
        "the large one went through the socket at once"
    );
    assert_eq!(
        b.next().await.expect("a message").expect("valid"),
        message(0, 400 * 1024)
    );
    assert_eq!(
        b.next().await.expect("a message").expect("valid"),
        message(1, 2 << 20)
    );
    writer.await.expect("the writer ends");
}

#[tokio::test(start_paused = true)]
async fn reports_of_freed_slots_stay_in_order_when_one_goes_ahead_of_a_waiting_message() {
    let (mut a, mut b, _probe) = lane_pair(1 << 20);
    // b's three fit its region together (no report reaches b before the end).
    let from_b: Vec<Message> = (10..13).map(|id| message(id, 300 * 1024)).collect();
    // While `a` writes nothing, it reads b's first field (a report queued), queues a lane message
    // of its own (its region's first frame), reads b's second (a report after that frame), and
    // queues two more, the second of which waits for room; then it reads b's third, whose
    // report must go ahead of the waiting message and still after the first two.
    b.send(from_b[0].clone()).await.expect("sent");
    assert_eq!(
        a.next().await.expect("a message").expect("valid"),
        from_b[0]
    );
    a.queue(message(0, 400 * 1024)).expect("queued");
    b.send(from_b[1].clone()).await.expect("sent");
    assert_eq!(
        a.next().await.expect("a message").expect("valid"),
        from_b[1]
    );
    a.queue(message(1, 400 * 1024)).expect("queued");
    a.queue(message(2, 400 * 1024)).expect("waits for room");
    b.send(from_b[2].clone()).await.expect("sent");
    assert_eq!(
        a.next().await.expect("a message").expect("valid"),
        from_b[2]
    );

    let from_a: Vec<Message> = (0..3).map(|id| message(id, 400 * 1024)).collect();
    let start = tokio::time::Instant::now();
    let mut got_back = Vec::new();
    let (_, got) = tokio::join!(
        std::future::poll_fn(|cx| {
            while let std::task::Poll::Ready(Some(read)) = a.poll_receive(cx) {
                got_back.push(read.expect("valid"));
            }
            a.poll_send(cx)
        }),
        exchange(&mut b, Vec::new(), 3)
    );
    assert_eq!(
        got, from_a,
        "every report was in order: the peer refused none"
    );
    assert!(start.elapsed() < crate::lane::LANE_WAIT);
    assert!(got_back.is_empty());
}

#[tokio::test]
async fn many_messages_both_ways_go_round_the_ring_intact() {
    let (a, b, _probe) = lane_pair(256 * 1024);
    let echo = tokio::spawn(async move {
        let mut b = b;
        while let Some(m) = b.next().await {
            b.send(m.expect("valid")).await.expect("echoed");
        }
    });
    let mut a = a;
    for id in 0..200u64 {
        let len = [BIG_FIELD, 100_000, 10, 200_000][id as usize % 4];
        a.send(message(id, len)).await.expect("sent");
        assert_eq!(
            a.next().await.expect("an echo").expect("valid"),
            message(id, len)
        );
    }
    drop(a);
    echo.await.expect("the echo ends");
}

/// The raw bytes of a lane frame naming `slots`, with `smalls` as its small bytes.
fn lane_frame(slots: &[(u64, u64)], smalls: &[u8]) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 0, 1, slots.len() as u8];
    frame.extend_from_slice(&(smalls.len() as u32).to_be_bytes());
    for (pos, len) in slots {
        frame.extend_from_slice(&pos.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
    }
    frame.extend_from_slice(smalls);
    frame
}

async fn refusal_of(bytes: Vec<u8>) -> String {
    let (a, b) = UnixStream::pair().expect("socket pair");
    let size = ShmSize::new(1 << 20).expect("in range");
    let mut b: Transport = WireTransport::new(
        LocalStream::unix(b).expect("registers"),
        BytesMut::new(),
        WireCodec::new(FrameLimit::new(DEFAULT_MAX_FRAME).expect("in range")),
    )
    .with_lane(size);
    let mut a = a;
    a.write_all(&bytes).await.expect("written");
    match b.next().await {
        Some(Err(err)) => crate::error_chain(&err),
        other => panic!("accepted: {other:?}"),
    }
}

#[tokio::test]
async fn lane_frames_that_break_the_rules_are_refused_with_a_reason() {
    // No region was ever sent.
    let reason = refusal_of(lane_frame(&[(0, BIG_FIELD as u64)], &[0; 8])).await;
    assert!(
        reason.contains("before the region's descriptor"),
        "{reason}"
    );
    // A release of slots never handed out.
    let reason = refusal_of(vec![0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0]).await;
    assert!(reason.contains("never sent"), "{reason}");
}
