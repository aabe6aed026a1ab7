//! Streams on a [`Channel`] against a scripted server: the other end of a Unix socket pair, read
//! and written by the test (see `channel_tests.rs`). On a paused clock, so waiting for what the
//! channel must not send, and the watcher's ticks, take no wall time.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rpc_core::{LocalStream, StreamEvent, Subscription, WireTransport};
use serde::Deserialize;
use tarpc::client::stub::Stub;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::bytes::BytesMut;

use super::*;
use crate::channel::WATCH_INTERVAL;

#[path = "channel_stream_sharing_tests.rs"]
mod sharing;

/// A call (`Call`) or a stream of numbers (`Numbers`).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Ask {
    Call(u32),
    Numbers,
}

impl RequestName for Ask {
    fn name(&self) -> &str {
        match self {
            Ask::Call(_) => "call",
            Ask::Numbers => "numbers",
        }
    }
}

/// A call's answer, or one answer of the stream.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Reply {
    Answer(u32),
    Number(StreamEvent<u64>),
}

/// The scripted server's end.
type Server = WireTransport<LocalStream, ClientMessage<Ask>, Response<Reply>>;

/// A channel with these stream limits, and the server end of its connection (with the same
/// frame limit).
fn connect(limits: StreamLimits) -> (Channel<Ask, Reply>, Server) {
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let client = LocalStream::unix(client).expect("registers with the runtime");
    let server = LocalStream::unix(server).expect("registers with the runtime");
    let client = WireTransport::new(
        client,
        BytesMut::new(),
        rpc_core::WireCodec::new(limits.frame_limit),
    );
    let server = WireTransport::new(
        server,
        BytesMut::new(),
        rpc_core::WireCodec::new(limits.frame_limit),
    );
    (Channel::new(client, limits), server)
}

/// Limits with a small window, and the smallest frame limit, so a test sends little.
fn small(window: u64) -> StreamLimits {
    StreamLimits {
        window,
        frame_limit: FrameLimit::MIN,
    }
}

/// Whether `reply` is the numbers stream's last answer.
fn is_end(reply: &Reply) -> bool {
    matches!(reply, Reply::Number(StreamEvent::End))
}

/// Opens the numbers stream.
async fn open(channel: &Channel<Ask, Reply>) -> Answers<Reply> {
    channel
        .open(context::current(), Ask::Numbers, is_end)
        .await
        .expect("the stream opens")
}

/// The next message the channel sent, within a minute.
async fn next_message(server: &mut Server) -> ClientMessage<Ask> {
    tokio::time::timeout(Duration::from_secs(60), server.next())
        .await
        .expect("a message within a minute")
        .expect("a message, not the end of the connection")
        .expect("a well-formed message")
}

/// Asserts the channel sends nothing for `wait` (many watcher ticks, on the paused clock).
async fn nothing_sent(server: &mut Server, wait: Duration, why: &str) {
    if let Ok(message) = tokio::time::timeout(wait, server.next()).await {
        panic!("{why}, yet the channel sent {message:?}");
    }
}

/// Reads a stream's opening: its request, then at once the grant of `window`. Returns its id.
async fn opened(server: &mut Server, window: u64) -> u64 {
    let id = match next_message(server).await {
        ClientMessage::Request(request) => {
            assert!(matches!(request.message, Ask::Numbers), "{request:?}");
            request.id
        }
        other => panic!("expected the stream's request, got {other:?}"),
    };
    match next_message(server).await {
        ClientMessage::Grant { request_id, bytes } => {
            assert_eq!((request_id, bytes), (id, window), "the opening grant");
        }
        other => panic!("expected the opening grant, got {other:?}"),
    }
    id
}

/// Queues answer `event` to stream `id` (sent at the next flush); returns its frame's body
/// length, what the stream's credit counts.
fn queue_event(server: &mut Server, id: u64, event: StreamEvent<u64>) -> u64 {
    let response = Response {
        request_id: id,
        message: Ok(Reply::Number(event)),
    };
    server.queue(response).expect("an answer fits a frame") as u64
}

/// Sends the items `numbers` to stream `id`; returns each one's frame length.
async fn send_items(server: &mut Server, id: u64, numbers: std::ops::Range<u64>) -> Vec<u64> {
    let lengths = numbers
        .map(|n| queue_event(server, id, StreamEvent::Item(n)))
        .collect();
    server.flush().await.expect("the answers are sent");
    lengths
}

/// The stream's next answer, which must come within a minute.
async fn next_answer(answers: &mut Answers<Reply>) -> Option<Result<Reply, RpcError>> {
    tokio::time::timeout(Duration::from_secs(60), answers.next())
        .await
        .expect("an answer within a minute")
}

/// The stream's next answer, which must be item `n`.
async fn expect_item(answers: &mut Answers<Reply>, n: u64) {
    match next_answer(answers).await {
        Some(Ok(Reply::Number(StreamEvent::Item(got)))) => assert_eq!(got, n),
        other => panic!("expected item {n}, got {other:?}"),
    }
}

/// Calls `ask` in a task of its own.
fn spawn_call(channel: &Channel<Ask, Reply>, ask: u32) -> JoinHandle<Result<Reply, RpcError>> {
    let channel = channel.clone();
    tokio::spawn(async move { channel.call(context::current(), Ask::Call(ask)).await })
}

/// Reads a call's request: its id and what it asks.
async fn next_call(server: &mut Server) -> (u64, u32) {
    match next_message(server).await {
        ClientMessage::Request(request) => match request.message {
            Ask::Call(ask) => (request.id, ask),
            other => panic!("expected a call, got {other:?}"),
        },
        other => panic!("expected a call's request, got {other:?}"),
    }
}

/// Reads a call's request and answers it with `ask + 1`.
async fn answer_call(server: &mut Server) {
    let (id, ask) = next_call(server).await;
    let response = Response {
        request_id: id,
        message: Ok(Reply::Answer(ask + 1)),
    };
    server.send(response).await.expect("the answer is sent");
}

/// A spawned call's answer, which must come within a minute.
async fn answered(call: JoinHandle<Result<Reply, RpcError>>) -> Reply {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call ended within a minute")
        .expect("the call did not panic")
        .expect("the call was answered")
}

/// Makes a call on `channel` and checks it is answered: the connection still works.
async fn a_call_works(channel: &Channel<Ask, Reply>, server: &mut Server) {
    let call = spawn_call(channel, 41);
    answer_call(server).await;
    assert_eq!(answered(call).await, Reply::Answer(42));
}

#[tokio::test(start_paused = true)]
async fn a_streams_items_arrive_in_order_and_it_ends_at_the_servers_end() {
    let (channel, mut server) = connect(StreamLimits::default());
    let answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..5).await;
    queue_event(&mut server, id, StreamEvent::End);
    server.flush().await.expect("sent");
    let numbers = Subscription::new(
        answers,
        |reply| match reply {
            Reply::Number(event) => Some(event),
            Reply::Answer(_) => None,
        },
        "test.numbers",
    );
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(60), numbers.collect())
        .await
        .expect("the stream ended within a minute");
    let events: Vec<_> = events.into_iter().map(|e| e.expect("no error")).collect();
    assert_eq!(events, (0..5).map(StreamEvent::Item).collect::<Vec<_>>());
    // At the `End` the subscription drops the answers. The channel knows the `End` for the
    // stream's last answer, so it sends no cancel: the next message is the call below.
    a_call_works(&channel, &mut server).await;
}

#[tokio::test(start_paused = true)]
async fn a_servers_error_is_a_streams_last_answer_and_needs_no_cancel() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..1).await;
    let refusal = Response {
        request_id: id,
        message: Err(ServerError::new(
            std::io::ErrorKind::InvalidInput,
            "no such job".into(),
        )),
    };
    server.send(refusal).await.expect("sent");
    expect_item(&mut answers, 0).await;
    match next_answer(&mut answers).await {
        Some(Err(RpcError::Server(err))) => assert_eq!(err.detail, "no such job"),
        other => panic!("expected the server's error, got {other:?}"),
    }
    assert!(next_answer(&mut answers).await.is_none());
    assert!(next_answer(&mut answers).await.is_none(), "and stays ended");
    drop(answers);
    // The next message is the call's request: no cancel for a stream the server ended.
    a_call_works(&channel, &mut server).await;
}

#[tokio::test(start_paused = true)]
async fn the_client_grants_its_window_then_half_a_window_back_as_answers_are_taken() {
    let window = 1000;
    let (channel, mut server) = connect(small(window));
    let mut answers = open(&channel).await;
    let id = opened(&mut server, window).await;

    // The server sends while its credit lasts: the last answer overshoots it.
    let mut credit = window as i64;
    let mut lengths = Vec::new();
    while credit > 0 {
        let sent = send_items(
            &mut server,
            id,
            lengths.len() as u64..lengths.len() as u64 + 1,
        );
        let len = sent.await[0];
        credit -= len as i64;
        lengths.push(len);
    }
    let received: u64 = lengths.iter().sum();
    assert!(received >= window && received < window + lengths[0]);
    nothing_sent(
        &mut server,
        20 * WATCH_INTERVAL,
        "the consumer took nothing",
    )
    .await;

    // Half the window taken (500 bytes, in whole answers) is granted back at once, in one
    // grant; then nothing until the next half.
    let mut taken = 0;
    let mut grants = Vec::new();
    for (n, len) in lengths.iter().enumerate() {
        expect_item(&mut answers, n as u64).await;
        taken += len;
        if taken >= window / 2 {
            match next_message(&mut server).await {
                ClientMessage::Grant { request_id, bytes } => {
                    assert_eq!(
                        (request_id, bytes),
                        (id, taken),
                        "what was taken, granted back"
                    );
                    grants.push(bytes);
                }
                other => panic!("expected a grant after {taken} bytes taken, got {other:?}"),
            }
            taken = 0;
        } else {
            nothing_sent(
                &mut server,
                WATCH_INTERVAL * 4,
                "half a window is not taken",
            )
            .await;
        }
    }
    // Every answer is the same length here, so each grant is the first multiple of it to reach
    // half the window.
    assert!(lengths.iter().all(|&len| len == lengths[0]), "{lengths:?}");
    let per_grant = (window / 2).div_ceil(lengths[0]) * lengths[0];
    assert!(
        !grants.is_empty(),
        "{received} bytes taken, nothing granted back"
    );
    assert!(grants.iter().all(|&grant| grant == per_grant), "{grants:?}");
    assert_eq!(grants.iter().sum::<u64>() + taken, received);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_sends_a_cancel_with_its_id_and_its_late_answers_are_dropped() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..1).await;
    expect_item(&mut answers, 0).await;
    drop(answers);
    match next_message(&mut server).await {
        ClientMessage::Cancel { request_id, .. } => assert_eq!(request_id, id),
        other => panic!("expected a cancel for stream {id}, got {other:?}"),
    }
    send_items(&mut server, id, 1..3).await;
    a_call_works(&channel, &mut server).await;
    assert!(channel.is_usable());
}

#[tokio::test(start_paused = true)]
async fn the_connection_closing_mid_stream_yields_the_items_then_shutdown_then_the_end() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..2).await;
    drop(server);
    expect_item(&mut answers, 0).await;
    expect_item(&mut answers, 1).await;
    let end = next_answer(&mut answers).await;
    assert!(matches!(end, Some(Err(RpcError::Shutdown))), "{end:?}");
    assert!(next_answer(&mut answers).await.is_none());
    assert!(next_answer(&mut answers).await.is_none(), "and stays ended");
    assert!(!channel.is_usable());
}

#[tokio::test(start_paused = true)]
async fn a_server_sending_past_its_credit_fails_the_stream_which_is_cancelled() {
    let window = 4096;
    let (channel, mut server) = connect(small(window));
    let mut answers = open(&channel).await;
    let id = opened(&mut server, window).await;
    // Credit ignored: twice what a server may send before the consumer grants more.
    let allowed = window + FrameLimit::MIN.bytes() as u64;
    let mut lengths = Vec::new();
    while lengths.iter().sum::<u64>() < 2 * allowed {
        let n = lengths.len() as u64;
        lengths.push(queue_event(&mut server, id, StreamEvent::Item(n)));
    }
    server.flush().await.expect("sent");
    let fit = lengths
        .iter()
        .scan(0, |sum, len| {
            *sum += len;
            Some(*sum)
        })
        .take_while(|&sum| sum <= allowed)
        .count();

    for n in 0..fit {
        expect_item(&mut answers, n as u64).await;
    }
    match next_answer(&mut answers).await {
        Some(Err(RpcError::Channel(ChannelError::Read(err)))) => {
            let overrun = err
                .downcast_ref::<StreamOverrun>()
                .unwrap_or_else(|| panic!("expected an overrun, got {err:?}"));
            assert_eq!(overrun.request_id, id);
            assert_eq!(overrun.window, window);
            assert!(overrun.excess > 0 && overrun.excess <= lengths[fit]);
            assert!(err.to_string().contains("flow control"), "{err}");
        }
        other => panic!("expected the stream to fail, got {other:?}"),
    }
    assert!(next_answer(&mut answers).await.is_none());
    // No grant for a stream that failed: the server's next message is its cancel.
    match next_message(&mut server).await {
        ClientMessage::Cancel { request_id, .. } => assert_eq!(request_id, id),
        other => panic!("expected a cancel for stream {id}, got {other:?}"),
    }
    a_call_works(&channel, &mut server).await;
}

#[tokio::test(start_paused = true)]
async fn opening_on_a_closed_connection_or_past_the_deadline_fails_at_once() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut ctx = context::current();
    ctx.deadline = rpc_core::timers::now();
    let late = channel.open(ctx, Ask::Numbers, is_end).await;
    assert!(matches!(late, Err(RpcError::DeadlineExceeded)));
    nothing_sent(&mut server, Duration::from_secs(1), "the open was too late").await;

    drop(server);
    assert!(!channel.is_usable());
    let closed = channel.open(context::current(), Ask::Numbers, is_end).await;
    assert!(matches!(closed, Err(RpcError::Shutdown)));
}

// The credit's arithmetic, on its own.

fn credit(window: u64, frame_limit: usize) -> Credit {
    let frame_limit = FrameLimit::new(frame_limit).expect("a valid frame limit");
    Credit::new(StreamLimits {
        window,
        frame_limit,
    })
}

#[test]
fn a_server_may_overshoot_its_credit_by_at_most_one_frame_limit() {
    let limit = FrameLimit::MIN.bytes() as u64;
    for (sent, overran) in [
        (1000 + limit - 1, false),
        (1000 + limit, false),
        (1000 + limit + 1, true),
    ] {
        let mut credit = credit(1000, FrameLimit::MIN.bytes());
        let got = credit.receive(sent);
        assert_eq!(
            got.is_err(),
            overran,
            "{sent} bytes on 1000 of credit: {got:?}"
        );
        if overran {
            assert_eq!(got, Err(1));
        }
    }
}

#[test]
fn credit_granted_back_moves_the_allowance() {
    let limit = FrameLimit::MIN.bytes() as u64;
    let mut credit = credit(1000, FrameLimit::MIN.bytes());
    assert_eq!(credit.receive(1000), Ok(()));
    assert_eq!(credit.take(499), None);
    assert_eq!(credit.take(1), Some(500));
    assert_eq!(credit.receive(500 + limit), Ok(()));
    assert_eq!(credit.receive(1), Err(1));
}

#[test]
fn credit_is_granted_back_once_per_half_window_taken() {
    let mut credit = credit(1000, FrameLimit::MIN.bytes());
    let grants: Vec<_> = (0..12).filter_map(|_| credit.take(100)).collect();
    assert_eq!(grants, [500, 500]);
    assert_eq!(credit.taken, 200);
    // An answer larger than half the window is granted back whole, at once.
    assert_eq!(credit.take(700), Some(900));
}

#[test]
fn a_window_of_one_byte_grants_back_every_answer() {
    let mut credit = credit(1, FrameLimit::MIN.bytes());
    assert_eq!(credit.take(40), Some(40));
    assert_eq!(credit.take(7), Some(7));
}
