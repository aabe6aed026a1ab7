//! The transport with the shared-memory lane, over real socket pairs and real memfds: large
//! fields travel through the regions, slots come back, a full region falls back to the socket,
//! and a peer breaking the lane's rules is refused.

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

#[tokio::test]
async fn a_full_region_falls_back_to_the_socket_and_everything_arrives_in_order() {
    let (mut a, mut b, probe) = lane_pair(1 << 20);
    let sent: Vec<Message> = (0..6).map(|id| message(id, 400 * 1024)).collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for m in to_send {
            a.send(m).await.expect("sent");
        }
        a
    });
    // Nobody reads for a while: the first two fit the region, the rest go through the socket.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        waiting(&probe) > 100 * 1024,
        "later fields went through the socket"
    );
    for expected in &sent {
        assert_eq!(
            &b.next().await.expect("a message").expect("valid"),
            expected
        );
    }
    let mut a = writer.await.expect("the writer ends");
    b.send(message(9, 1)).await.expect("sent");
    a.next().await.expect("a message").expect("valid");
    assert_eq!(a.lane_in_use(), 0, "every slot came back");
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
