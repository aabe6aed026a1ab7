//! The loop's streams over a real socket pair: credit bounds what is sent and what the producer
//! makes, a cancel drops the producer at once, limits and shutdown close streams with a reason,
//! and calls on the same connection are answered while a stream saturates it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpc_core::{FrameLimit, LocalStream, StreamEvent, Streaming, WireCodec, WireTransport};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::bytes::BytesMut;

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Ask {
    /// A stream of `count` items (`None`: endless) of `len` bytes each.
    Items { count: Option<u64>, len: usize },
    /// A stream whose producer panics at its first poll.
    Panics,
    /// Endless items of `len` bytes, from a handler that takes 100 ms to return the stream.
    SlowToOpen { len: usize },
    /// An ordinary call.
    Ping,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Items(StreamEvent<serde_bytes::ByteBuf>),
    Ping,
}

/// What the producers did.
#[derive(Default)]
struct Probe {
    /// Items produced, across streams.
    produced: AtomicUsize,
    /// Producers dropped.
    dropped: AtomicUsize,
}

/// Counts its producer as dropped.
struct Alive(Arc<Probe>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

type Client = WireTransport<LocalStream, Response<Reply>, ClientMessage<Ask>>;

struct Served {
    client: Client,
    probe: Arc<Probe>,
    dispatch: JoinHandle<Result<(), CodecError>>,
}

fn serve(max_streams: usize) -> Served {
    let limit = FrameLimit::new(1024 * 1024).expect("a limit in range");
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let client = LocalStream::unix(client).expect("registers with the runtime");
    let server = LocalStream::unix(server).expect("registers with the runtime");
    let client = WireTransport::new(client, BytesMut::new(), WireCodec::new(limit));
    let server: WireTransport<LocalStream, ClientMessage<Ask>, Response<Reply>> =
        WireTransport::new(server, BytesMut::new(), WireCodec::for_requests(limit));
    let probe = Arc::new(Probe::default());
    let status = Arc::new(ServerStatus::new());
    let handler = {
        let probe = probe.clone();
        move |_: context::Context, ask: Ask| {
            let probe = probe.clone();
            async move {
                match ask {
                    Ask::Ping => Answer::One(Ok(Reply::Ping)),
                    Ask::Panics => {
                        Streaming::<serde_bytes::ByteBuf>::new(futures::stream::poll_fn(
                            |_| -> std::task::Poll<Option<serde_bytes::ByteBuf>> {
                                panic!("the test producer panics, as asked")
                            },
                        ))
                        .into_answer(Reply::Items)
                    }
                    Ask::SlowToOpen { len } => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Streaming::new(futures::stream::repeat_with(move || {
                            serde_bytes::ByteBuf::from(vec![1; len])
                        }))
                        .into_answer(Reply::Items)
                    }
                    Ask::Items { count, len } => {
                        let alive = Alive(probe.clone());
                        let items =
                            futures::stream::iter(0..count.unwrap_or(u64::MAX)).map(move |_| {
                                let _alive = &alive;
                                let index = probe.produced.fetch_add(1, Ordering::SeqCst);
                                serde_bytes::ByteBuf::from(numbered(index, len))
                            });
                        Streaming::new(items).into_answer(Reply::Items)
                    }
                }
            }
        }
    };
    let dispatch = tokio::spawn(async move {
        let new_call = move |request, registration| {
            call(handler.clone(), status.clone(), request, registration)
        };
        Dispatch::new(server, 16, new_call)
            .max_streams(max_streams)
            .await
    });
    Served {
        client,
        probe,
        dispatch,
    }
}

/// An item of `len` bytes (at least 8) that starts with `index`, the producer's count of the
/// items it made before it: when it was made.
fn numbered(index: usize, len: usize) -> Vec<u8> {
    let mut item = vec![1; len.max(8)];
    item[..8].copy_from_slice(&(index as u64).to_le_bytes());
    item
}

/// When `item` was made (see [`numbered`]).
fn index_of(item: &[u8]) -> usize {
    let bytes = item[..8].try_into().expect("eight bytes");
    u64::from_le_bytes(bytes) as usize
}

/// A stream of items of `len` bytes that never ends.
fn endless(len: usize) -> Ask {
    Ask::Items { count: None, len }
}

fn open(id: u64, ask: Ask) -> ClientMessage<Ask> {
    let mut context = context::current();
    context.deadline = Instant::now() + Duration::from_secs(3600);
    ClientMessage::Request(Request {
        context,
        id,
        message: ask,
    })
}

fn grant(id: u64, bytes: u64) -> ClientMessage<Ask> {
    ClientMessage::Grant {
        request_id: id,
        bytes,
    }
}

fn cancel(id: u64) -> ClientMessage<Ask> {
    ClientMessage::Cancel {
        trace_context: Default::default(),
        request_id: id,
    }
}

async fn send(client: &mut Client, messages: impl IntoIterator<Item = ClientMessage<Ask>>) {
    for message in messages {
        client.send(message).await.expect("sent");
    }
}

/// What arrives within `quiet` of the last answer: the answers and their frame bodies' bytes.
async fn drain(client: &mut Client, quiet: Duration) -> (Vec<Response<Reply>>, usize) {
    let mut answers = Vec::new();
    let mut bytes = 0;
    while let Ok(Some(answer)) = tokio::time::timeout(quiet, client.next()).await {
        answers.push(answer.expect("a well-formed answer"));
        bytes += client.last_frame_len();
    }
    (answers, bytes)
}

const QUIET: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_stream_without_credit_sends_nothing_and_its_producer_makes_nothing() {
    let mut served = serve(4);
    send(&mut served.client, [open(1, endless(100))]).await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    assert!(
        answers.is_empty(),
        "{} answers without credit",
        answers.len()
    );
    assert_eq!(served.probe.produced.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn credit_bounds_what_is_sent_and_produced_and_more_credit_sends_more() {
    let mut served = serve(4);
    let window = 10_000;
    send(
        &mut served.client,
        [open(1, endless(1000)), grant(1, window)],
    )
    .await;
    let (answers, bytes) = drain(&mut served.client, QUIET).await;
    let item = bytes / answers.len();
    assert!(item > 1000, "an item's frame is {item} bytes");
    // Sent while credit was positive: the window, overshot by at most one item.
    assert!(
        bytes as u64 >= window,
        "{bytes} bytes sent of a {window}-byte window"
    );
    assert!(
        bytes < window as usize + item,
        "{bytes} bytes sent of a {window}-byte window"
    );
    // The producer made what was sent, and at most one more.
    let produced = served.probe.produced.load(Ordering::SeqCst);
    assert!(
        produced <= answers.len() + 1,
        "{produced} produced, {} sent",
        answers.len()
    );

    send(&mut served.client, [grant(1, window)]).await;
    let (more, more_bytes) = drain(&mut served.client, QUIET).await;
    assert!(!more.is_empty(), "a grant sends more");
    assert!(bytes + more_bytes < 2 * window as usize + item);
}

#[tokio::test]
async fn a_stream_ends_with_its_end_and_grants_after_it_are_ignored() {
    let mut served = serve(4);
    send(
        &mut served.client,
        [
            open(
                1,
                Ask::Items {
                    count: Some(3),
                    len: 10,
                },
            ),
            grant(1, 1 << 20),
        ],
    )
    .await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    let events: Vec<_> = answers
        .into_iter()
        .map(|answer| match answer.message.expect("no error") {
            Reply::Items(event) => event.into_item().map(|item| item.len()),
            Reply::Ping => panic!("a ping's answer"),
        })
        .collect();
    assert_eq!(events, [Some(10), Some(10), Some(10), None]);
    // A grant crossing the end on the wire, and a call after it: the connection goes on.
    send(&mut served.client, [grant(1, 100), open(2, Ask::Ping)]).await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    assert!(matches!(
        answers[..],
        [Response {
            request_id: 2,
            message: Ok(Reply::Ping)
        }]
    ));
    assert_eq!(served.probe.dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cancel_drops_the_producer_at_once_waiting_for_credit_or_not() {
    let mut served = serve(4);
    // Stream 1 is parked (credit spent); stream 2 is between items with credit left.
    send(
        &mut served.client,
        [open(1, endless(100)), grant(1, 500), open(2, endless(100))],
    )
    .await;
    drain(&mut served.client, QUIET).await;
    for (id, dropped) in [(1, 1), (2, 2)] {
        let cancelled = Instant::now();
        send(&mut served.client, [cancel(id)]).await;
        while served.probe.dropped.load(Ordering::SeqCst) < dropped {
            assert!(
                cancelled.elapsed() < Duration::from_millis(50),
                "stream {id}'s producer still lives 50 ms after its cancel"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test]
async fn absurd_grants_are_capped_and_do_not_break_the_connection() {
    let mut served = serve(4);
    send(
        &mut served.client,
        [
            open(1, endless(100)),
            grant(1, u64::MAX),
            grant(1, u64::MAX),
            grant(99, u64::MAX),
        ],
    )
    .await;
    // Items flow; the server is alive and answers a call among them.
    send(&mut served.client, [open(2, Ask::Ping)]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = served
            .client
            .next()
            .await
            .expect("open")
            .expect("well formed");
        if answer.request_id == 2 {
            assert!(matches!(answer.message, Ok(Reply::Ping)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ping was not answered among the items"
        );
    }
    assert!(!served.dispatch.is_finished());
}

#[tokio::test]
async fn a_stream_past_the_limit_is_refused_and_one_more_fits_after_a_cancel() {
    let mut served = serve(2);
    send(
        &mut served.client,
        [
            open(1, endless(10)),
            open(2, endless(10)),
            open(3, endless(10)),
        ],
    )
    .await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    let [
        Response {
            request_id: 3,
            message: Err(err),
        },
    ] = &answers[..]
    else {
        panic!("one refusal, for stream 3: {answers:?}");
    };
    assert_eq!(err.kind, std::io::ErrorKind::WouldBlock);
    assert!(err.detail.contains("--max-streams"), "{}", err.detail);
    send(
        &mut served.client,
        [cancel(1), open(4, endless(10)), grant(4, 100)],
    )
    .await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    assert!(!answers.is_empty());
    assert!(
        answers
            .iter()
            .all(|answer| answer.request_id == 4 && answer.message.is_ok())
    );
}

#[tokio::test]
async fn open_streams_are_closed_with_a_reason_when_requests_end() {
    let mut served = serve(4);
    send(
        &mut served.client,
        [open(1, endless(10)), open(2, endless(10))],
    )
    .await;
    drain(&mut served.client, QUIET).await;
    served.client.close().await.expect("closes its side");
    let (answers, _) = drain(&mut served.client, QUIET).await;
    let mut ids: Vec<_> = answers
        .iter()
        .map(|answer| {
            let err = answer.message.as_ref().expect_err("closed with an error");
            assert!(err.detail.contains("shutting down"), "{}", err.detail);
            answer.request_id
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let ended = tokio::time::timeout(Duration::from_secs(5), served.dispatch)
        .await
        .expect("the loop ends")
        .expect("no panic");
    assert!(ended.is_ok(), "{ended:?}");
    assert_eq!(served.probe.dropped.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_producer_that_panics_fails_its_own_stream_only() {
    let mut served = serve(4);
    send(
        &mut served.client,
        [open(1, Ask::Panics), grant(1, 1000), open(2, Ask::Ping)],
    )
    .await;
    let (answers, _) = drain(&mut served.client, QUIET).await;
    let failed = answers
        .iter()
        .find(|answer| answer.request_id == 1)
        .expect("stream 1 ended");
    let err = failed.message.as_ref().expect_err("with an error");
    assert!(err.detail.contains("panicked"), "{}", err.detail);
    assert!(
        answers
            .iter()
            .any(|answer| answer.request_id == 2 && answer.message.is_ok())
    );
    assert!(!served.dispatch.is_finished());
}

#[tokio::test]
async fn calls_are_answered_within_a_burst_while_a_stream_saturates_the_connection() {
    let mut served = serve(4);
    send(
        &mut served.client,
        [open(1, endless(64)), grant(1, 1 << 30)],
    )
    .await;
    // Take items as fast as they come for a while, so that the loop is busy making them, then
    // call while still taking them.
    for _ in 0..5000 {
        served
            .client
            .next()
            .await
            .expect("open")
            .expect("well formed");
    }
    send(&mut served.client, [open(2, Ask::Ping)]).await;
    let made_before = served.probe.produced.load(Ordering::SeqCst);
    let mut last_before = 0;
    loop {
        let answer = served
            .client
            .next()
            .await
            .expect("open")
            .expect("well formed");
        match answer.message {
            _ if answer.request_id == 2 => break,
            Ok(Reply::Items(StreamEvent::Item(item))) => last_before = index_of(&item),
            other => panic!("the stream sent {other:?}"),
        }
    }
    // The items made before the call came may all go first (the socket held some, the
    // writer's queue more); of those made after, a burst or so. The loop's task never stops
    // while the stream has credit, so the runtime sees the request arrive only every few dozen
    // polls of it (61 on tokio's default), which would be a thousand items here: the loop
    // looks for requests itself after each burst.
    let made_after = (last_before + 1).saturating_sub(made_before);
    assert!(
        made_after <= 2 * STREAM_BURST,
        "{made_after} items made after the call was sent came before its answer"
    );
}

#[tokio::test]
async fn credit_granted_while_the_call_runs_is_the_streams_once_it_opens() {
    let mut served = serve(4);
    // The grant arrives while the handler is still making the stream.
    send(
        &mut served.client,
        [open(1, Ask::SlowToOpen { len: 1000 }), grant(1, 10_000)],
    )
    .await;
    let (answers, bytes) = drain(&mut served.client, Duration::from_millis(500)).await;
    assert!(!answers.is_empty(), "the early grant was lost");
    assert!(
        bytes >= 10_000,
        "{bytes} bytes sent of a 10000-byte early grant"
    );
    assert!(answers.iter().all(|answer| answer.request_id == 1));
}
