//! A [`Channel`] against a scripted server: the other end of a Unix socket pair, read and
//! written by the test with tarpc's messages. On a paused clock, so deadlines and the
//! watcher's ticks take no wall time. A paused clock runs ahead of `Instant::now()` as it
//! is moved, so deadlines are set from tokio's clock (`rpc_core::timers::now`), which the
//! channel reads.

use futures::{SinkExt, StreamExt};
use rpc_core::FrameLimit;
use serde::Deserialize;
use tarpc::client::stub::Stub;
use tarpc::{RequestName, ServerError, context};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::bytes::BytesMut;

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask(u32);

impl RequestName for Ask {
    fn name(&self) -> &str {
        "ask"
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Answer(u32);

/// The scripted server's end: tarpc's requests and cancels in, responses out.
type Server = WireTransport<LocalStream, ClientMessage<Ask>, Response<Answer>>;

/// A channel and the server end of its connection, as [`crate::Connector`] builds the
/// channel once the handshake is done.
fn connect() -> (Channel<Ask, Answer>, Server) {
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let client = LocalStream::unix(client).expect("registers with the runtime");
    let server = LocalStream::unix(server).expect("registers with the runtime");
    let limit = FrameLimit::default();
    let client = WireTransport::new(client, BytesMut::new(), rpc_core::WireCodec::new(limit));
    let server = WireTransport::new(server, BytesMut::new(), rpc_core::WireCodec::new(limit));
    (Channel::new(client, StreamLimits::default()), server)
}

/// Calls `ask` in a task of its own, with the default deadline (10 s).
fn spawn_call(channel: &Channel<Ask, Answer>, ask: u32) -> JoinHandle<Result<Answer, RpcError>> {
    let channel = channel.clone();
    tokio::spawn(async move { channel.call(context::current(), Ask(ask)).await })
}

/// The next message the channel sent, within a minute.
async fn next_message(server: &mut Server) -> ClientMessage<Ask> {
    tokio::time::timeout(Duration::from_secs(60), server.next())
        .await
        .expect("a message within a minute")
        .expect("a message, not the end of the connection")
        .expect("a well-formed message")
}

/// The next request the channel sent: its id and what it asks.
async fn next_request(server: &mut Server) -> (u64, u32) {
    match next_message(server).await {
        ClientMessage::Request(request) => (request.id, request.message.0),
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Answers call `request_id` with `answer`.
async fn answer(server: &mut Server, request_id: u64, answer: u32) {
    let response = Response {
        request_id,
        message: Ok(Answer(answer)),
    };
    server.send(response).await.expect("the answer is sent");
}

/// A spawned call's result, which must come within a minute.
async fn result(call: JoinHandle<Result<Answer, RpcError>>) -> Result<Answer, RpcError> {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call ended within a minute")
        .expect("the call did not panic")
}

#[tokio::test(start_paused = true)]
async fn answers_arriving_out_of_order_reach_their_own_calls() {
    let (channel, mut server) = connect();
    let calls = [10, 20, 30].map(|ask| spawn_call(&channel, ask));
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(next_request(&mut server).await);
    }
    let mut ids: Vec<_> = requests.iter().map(|&(id, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each call has its own id: {requests:?}");
    for &(id, ask) in requests.iter().rev() {
        answer(&mut server, id, ask + 1).await;
    }
    for (call, ask) in calls.into_iter().zip([10, 20, 30]) {
        assert_eq!(result(call).await.expect("answered"), Answer(ask + 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_before_its_answer_sends_a_cancel_with_its_id() {
    let (channel, mut server) = connect();
    let call = channel.call(context::current(), Ask(1));
    let gave_up = tokio::time::timeout(Duration::from_millis(100), call).await;
    assert!(gave_up.is_err(), "the call was not answered: {gave_up:?}");
    let (id, _) = next_request(&mut server).await;
    match next_message(&mut server).await {
        ClientMessage::Cancel { request_id, .. } => assert_eq!(request_id, id),
        other => panic!("expected a cancel for call {id}, got {other:?}"),
    }

    // Its late answer is dropped; the next call gets its own.
    answer(&mut server, id, 999).await;
    let call = spawn_call(&channel, 2);
    let (next, ask) = next_request(&mut server).await;
    assert_ne!(next, id);
    answer(&mut server, next, ask + 1).await;
    assert_eq!(result(call).await.expect("answered"), Answer(3));
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_deadline_fails_with_deadline_exceeded_and_is_cancelled() {
    let (channel, mut server) = connect();
    // A deadline due now fails at once (its request is still sent, then cancelled); 200 ms
    // arms the call's timer at once; 3 s waits for the watcher to say it is near.
    for deadline in [
        Duration::ZERO,
        Duration::from_millis(200),
        Duration::from_secs(3),
    ] {
        let mut ctx = context::current();
        ctx.deadline = rpc_core::timers::now() + deadline;
        let started = tokio::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(60), channel.call(ctx, Ask(1)))
            .await
            .expect("the call ended within a minute");
        let took = started.elapsed();
        assert!(
            matches!(result, Err(RpcError::DeadlineExceeded)),
            "a call nobody answers, due in {deadline:?}, gave {result:?}"
        );
        assert!(
            took >= deadline && took < deadline + Duration::from_millis(100),
            "a call due in {deadline:?} failed after {took:?}"
        );
        let (id, _) = next_request(&mut server).await;
        match next_message(&mut server).await {
            ClientMessage::Cancel { request_id, .. } => assert_eq!(request_id, id),
            other => panic!("expected a cancel for call {id}, got {other:?}"),
        }
    }
    assert!(channel.is_usable(), "a deadline breaks no connection");
}

#[tokio::test(start_paused = true)]
async fn the_server_closing_the_connection_fails_waiting_and_later_calls() {
    let (channel, mut server) = connect();
    let calls = [1, 2].map(|ask| spawn_call(&channel, ask));
    next_request(&mut server).await;
    next_request(&mut server).await;
    drop(server);
    for call in calls {
        let result = result(call).await;
        assert!(
            matches!(result, Err(RpcError::Shutdown)),
            "a waiting call gave {result:?}"
        );
    }
    assert!(!channel.is_usable());
    let later = channel.call(context::current(), Ask(3)).await;
    assert!(
        matches!(later, Err(RpcError::Shutdown)),
        "a later call gave {later:?}"
    );
}

// `is_usable` asks the kernel, not the reactor: a hang-up is seen at once, before the runtime
// has polled its reactor (a current-thread runtime driven only by `block_on` per call never
// would between calls), so the next call reconnects instead of failing on a dead socket.
#[tokio::test(start_paused = true)]
async fn an_idle_channel_notices_the_server_hanging_up_before_the_runtime_turns() {
    let (channel, server) = connect();
    assert!(channel.is_usable());
    drop(server);
    assert!(
        !channel.is_usable(),
        "the hang-up is seen before the runtime polls the socket"
    );
    tokio::task::yield_now().await;
    assert!(!channel.is_usable(), "and stays seen");
    let call = channel.call(context::current(), Ask(1)).await;
    assert!(
        matches!(call, Err(RpcError::Shutdown)),
        "a call gave {call:?}"
    );
}

// Shows that "the server closed the connection" is not always `RpcError::Shutdown`: a Unix
// socket closed with bytes still unread in it (here the second request) is reset, and the
// channel reports that as a socket error. A server that stops reading at shutdown closes
// this way whenever a request arrived after it stopped.
#[tokio::test(start_paused = true)]
async fn a_server_closing_with_a_request_unread_fails_it_with_a_reset_not_shutdown() {
    let (channel, mut server) = connect();
    let first = spawn_call(&channel, 1);
    let (id, ask) = next_request(&mut server).await;
    let second = spawn_call(&channel, 2);
    // The second call's task sends its request, which the server never reads.
    tokio::task::yield_now().await;
    answer(&mut server, id, ask + 1).await;
    drop(server);
    assert_eq!(
        result(first).await.expect("answered"),
        Answer(2),
        "what the server sent before closing is delivered"
    );
    match result(second).await {
        Err(RpcError::Channel(ChannelError::Read(err))) => assert!(
            matches!(err.downcast_ref::<CodecError>(), Some(CodecError::Io(io))
                if io.kind() == std::io::ErrorKind::ConnectionReset),
            "the unanswered call failed with {err:?}"
        ),
        other => panic!("the unanswered call gave {other:?}"),
    }
    assert!(!channel.is_usable());
}

#[tokio::test(start_paused = true)]
async fn an_answer_for_an_unknown_id_is_ignored_and_later_calls_still_work() {
    let (channel, mut server) = connect();
    let call = spawn_call(&channel, 5);
    let (id, ask) = next_request(&mut server).await;
    answer(&mut server, id + 100, 0).await;
    answer(&mut server, id, ask + 1).await;
    assert_eq!(result(call).await.expect("answered"), Answer(6));

    answer(&mut server, id + 200, 0).await;
    let call = spawn_call(&channel, 7);
    let (id, ask) = next_request(&mut server).await;
    answer(&mut server, id, ask + 1).await;
    assert_eq!(result(call).await.expect("answered"), Answer(8));
    assert!(channel.is_usable());
}

#[tokio::test(start_paused = true)]
async fn a_server_error_fails_only_its_own_call() {
    let (channel, mut server) = connect();
    let call = spawn_call(&channel, 1);
    let (id, _) = next_request(&mut server).await;
    let refusal = Response {
        request_id: id,
        message: Err(ServerError::new(
            std::io::ErrorKind::WouldBlock,
            "server throttled the request.".into(),
        )),
    };
    server.send(refusal).await.expect("sent");
    match result(call).await {
        Err(RpcError::Server(err)) => {
            assert_eq!(err.kind, std::io::ErrorKind::WouldBlock);
            assert_eq!(err.detail, "server throttled the request.");
        }
        other => panic!("expected the server's error, got {other:?}"),
    }
    assert!(channel.is_usable());
}

/// A byte string on the wire, as `serde_bytes` writes one: a large one takes the large-field
/// path.
#[derive(Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<De: serde::Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor).map(Blob)
    }
}

/// Takes a byte string as it comes: a large field arrives as its own buffer.
struct BytesVisitor;

impl serde::de::Visitor<'_> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }
}

/// A `(u64, bytes)` answer, as a Rust type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pair(u64, Blob);

/// A field's kind and value, as a client guided by a schema read at run time knows them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    U64,
    Bytes,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    U64(u64),
    Bytes(Vec<u8>),
}

/// Decodes a struct whose fields have these kinds: a shape, not a type.
#[derive(Debug, Clone)]
struct ShapeSeed(Arc<[Kind]>);

impl<'de> serde::de::DeserializeSeed<'de> for ShapeSeed {
    type Value = Vec<Value>;

    fn deserialize<De: serde::Deserializer<'de>>(self, de: De) -> Result<Vec<Value>, De::Error> {
        de.deserialize_tuple(self.0.len(), self)
    }
}

impl<'de> serde::de::Visitor<'de> for ShapeSeed {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a struct of {} fields", self.0.len())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut row = Vec::new();
        for (i, kind) in self.0.iter().enumerate() {
            let value = match kind {
                Kind::U64 => seq.next_element::<u64>()?.map(Value::U64),
                Kind::Bytes => seq.next_element::<Blob>()?.map(|blob| Value::Bytes(blob.0)),
            };
            row.push(value.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?);
        }
        Ok(row)
    }
}

/// The scripted server's end for `Pair` answers.
type PairServer = WireTransport<LocalStream, ClientMessage<Ask>, Response<Pair>>;

fn socket_pair() -> (LocalStream, PairServer) {
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let client = LocalStream::unix(client).expect("registers with the runtime");
    let server = LocalStream::unix(server).expect("registers with the runtime");
    let codec = rpc_core::WireCodec::new(FrameLimit::default());
    (client, WireTransport::new(server, BytesMut::new(), codec))
}

/// Calls `channel` once per answer, the server answering each call with the next one; returns
/// what each call got (errors as text).
async fn calls_answered<R, D>(
    channel: &Channel<Ask, R, D>,
    server: &mut PairServer,
    answers: &[Result<Pair, ServerError>],
) -> Vec<Result<R, String>>
where
    R: Send + 'static,
    D: MessageSeed<R> + Send + 'static,
{
    let mut got = Vec::new();
    for (ask, answer) in answers.iter().enumerate() {
        let call = {
            let channel = channel.clone();
            tokio::spawn(async move { channel.call(context::current(), Ask(ask as u32)).await })
        };
        let request = tokio::time::timeout(Duration::from_secs(60), server.next()).await;
        let request_id = match request {
            Ok(Some(Ok(ClientMessage::Request(request)))) => request.id,
            other => panic!("expected a request, got {other:?}"),
        };
        let response = Response {
            request_id,
            message: answer.clone(),
        };
        server.send(response).await.expect("the answer is sent");
        let result = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("the call ended within a minute")
            .expect("the call did not panic");
        got.push(result.map_err(|err| format!("{err:?}")));
    }
    got
}

#[tokio::test(start_paused = true)]
async fn a_channel_with_a_runtime_seed_gets_what_the_typed_channel_gets() {
    let big = rpc_core::wire::BIG_FIELD;
    let mut answers: Vec<Result<Pair, ServerError>> = [0, 10, big - 1, big + 1, 1 << 20]
        .into_iter()
        .map(|len| {
            let bytes = (0..len).map(|i| (i % 251) as u8).collect();
            Ok(Pair(len as u64 * 3, Blob(bytes)))
        })
        .collect();
    answers.insert(
        2,
        Err(ServerError::new(
            std::io::ErrorKind::WouldBlock,
            "server throttled the request.".into(),
        )),
    );

    let (client, mut server) = socket_pair();
    let codec = rpc_core::WireCodec::new(FrameLimit::default());
    let typed: Channel<Ask, Pair> = Channel::new(
        WireTransport::new(client, BytesMut::new(), codec),
        StreamLimits::default(),
    );
    let typed = calls_answered(&typed, &mut server, &answers).await;
    let expected: Vec<_> = answers
        .iter()
        .map(|answer| match answer {
            Ok(pair) => Ok(pair.clone()),
            Err(err) => Err(format!("{:?}", RpcError::Server(err.clone()))),
        })
        .collect();
    assert_eq!(typed, expected);

    let (client, mut server) = socket_pair();
    let seed = ShapeSeed(Arc::from([Kind::U64, Kind::Bytes]));
    let codec = rpc_core::WireCodec::new(FrameLimit::default());
    let transport =
        WireTransport::with_seed(client, BytesMut::new(), codec, ResponseSeed::new(seed));
    let seeded = Channel::with_seed(transport, StreamLimits::default());
    let seeded = calls_answered(&seeded, &mut server, &answers).await;
    let typed_as_values: Vec<_> = typed
        .into_iter()
        .map(|result| result.map(|Pair(n, Blob(bytes))| vec![Value::U64(n), Value::Bytes(bytes)]))
        .collect();
    assert_eq!(seeded, typed_as_values);
    assert!(seeded.iter().any(|result| {
        result
            .as_ref()
            .is_ok_and(|row| matches!(&row[1], Value::Bytes(bytes) if bytes.len() > big))
    }));
}
