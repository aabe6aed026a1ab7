//! A [`Channel`] with the shared-memory lane against a scripted server (the other end of a Unix
//! socket pair, with the lane too). On a paused clock: a wait for room in a region that ran out
//! would show as [`LANE_WAIT`] gone by.

use std::future::poll_fn;
use std::task::Poll;

use futures::StreamExt;
use rpc_core::FrameLimit;
use rpc_core::lane::{LANE_WAIT, ShmSize};
use serde::Deserialize;
use serde_bytes::ByteBuf;
use tarpc::client::stub::Stub;
use tarpc::{RequestName, context};
use tokio::net::UnixStream;
use tokio_util::bytes::BytesMut;

use super::*;

const MIB: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask(u8);

impl RequestName for Ask {
    fn name(&self) -> &str {
        "ask"
    }
}

/// The scripted server's end: small requests in, answers of a mebibyte out.
type Server = WireTransport<LocalStream, ClientMessage<Ask>, Response<ByteBuf>>;

/// A channel and the server end of its connection, both with regions of 4 MiB.
fn connect() -> (Channel<Ask, ByteBuf>, Server) {
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let region = ShmSize::new(4 * MIB as u64).expect("in range");
    let stream = |stream| LocalStream::unix(stream).expect("registers with the runtime");
    let limit = FrameLimit::default();
    let codec = rpc_core::WireCodec::new(limit);
    let client = WireTransport::new(stream(client), BytesMut::new(), codec).with_lane(region);
    let codec = rpc_core::WireCodec::new(limit);
    let server = WireTransport::new(stream(server), BytesMut::new(), codec).with_lane(region);
    (Channel::new(client, StreamLimits::default()), server)
}

#[tokio::test(start_paused = true)]
async fn answers_read_for_calls_not_polled_yet_free_the_servers_region_at_once() {
    let (channel, mut server) = connect();
    // Five calls: one more than the server's region holds answers for, and four more than
    // `LANE_AHEAD` lets out at a time.
    let calls = 5u8;
    let mut pending: Vec<_> = (0..calls)
        .map(|ask| Box::pin(channel.call(context::current(), Ask(ask))))
        .collect();
    // The first four are polled once, by tasks that then go about other work (a waker that
    // wakes nothing); the last is awaited here.
    let elsewhere = &mut Context::from_waker(Waker::noop());
    for call in &mut pending[..4] {
        assert!(call.as_mut().poll(elsewhere).is_pending(), "request sent");
    }
    let serving = tokio::spawn(async move {
        let mut asked = Vec::new();
        for _ in 0..calls {
            match server.next().await {
                Some(Ok(ClientMessage::Request(request))) => {
                    asked.push((request.id, request.message.0));
                }
                other => panic!("expected a request, got {other:?}"),
            }
        }
        for (request_id, ask) in asked {
            let message = Ok(ByteBuf::from(vec![ask; MIB]));
            server
                .queue(Response {
                    request_id,
                    message,
                })
                .expect("queued");
        }
        // Written while reading, as the server's connection task does: the last answer waits
        // for the client to report the others' slots copied out.
        poll_fn(|cx| {
            if let Poll::Ready(Some(message)) = server.poll_receive(cx) {
                panic!("only reports of freed slots were expected, got {message:?}");
            }
            server.poll_send(cx)
        })
        .await
        .expect("every answer sent");
        server
    });

    // The first four answers are read by the last call and left for their calls, whose tasks
    // do not come for them yet. The report of their slots must go out anyway.
    let start = tokio::time::Instant::now();
    let last = pending.pop().expect("five calls");
    assert_eq!(last.await.expect("answered"), ByteBuf::from(vec![4; MIB]));
    assert!(
        start.elapsed() < LANE_WAIT,
        "the last answer waited {:?} for room in the server's region",
        start.elapsed()
    );
    for (ask, call) in pending.into_iter().enumerate() {
        assert_eq!(
            call.await.expect("answered"),
            ByteBuf::from(vec![ask as u8; MIB])
        );
    }
    drop(serving.await.expect("the server ends"));
}
