//! The loop over a real socket pair: the server side is the transport a served connection
//! has (a request-checking [`WireTransport`] inside a [`GuardedTransport`]), the test speaks
//! tarpc's messages from the other end. Most tests run on a paused tokio clock: handlers'
//! sleeps, deadlines and the tests' waits take no wall time.
//!
//! Over 500 lines on purpose: one harness serves every test of the loop, and splitting the tests
//! by topic would only spread it across files.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpc_core::lane::{LANE_AHEAD, LANE_WAIT, ShmSize};
use rpc_core::wire::WireFormat;
use rpc_core::{FrameLimit, LocalStream, WireCodec, WireTransport};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::guard::GuardedTransport;

/// What a test call asks its handler to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    /// Sent back in the reply, to tell replies apart beyond their request id.
    tag: u32,
    /// How long the handler takes; `None`: it never finishes.
    millis: Option<u64>,
    /// Bytes of payload in the reply.
    reply_len: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    tag: u32,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
}

/// A job that takes `millis` and replies with `tag`.
fn job(tag: u32, millis: u64) -> Job {
    Job {
        tag,
        millis: Some(millis),
        reply_len: 0,
    }
}

/// The tag of a job whose handler panics.
const PANICS: u32 = u32::MAX;

/// A job whose handler never finishes.
fn hanging(tag: u32) -> Job {
    Job {
        tag,
        millis: None,
        reply_len: 0,
    }
}

/// What the handlers did: every handler is counted as started, then as finished or as
/// dropped before it finished.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    finished: AtomicUsize,
    dropped: AtomicUsize,
}

impl Probe {
    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Lives as long as a handler runs: counts the handler as dropped if it did not finish.
struct Running {
    probe: Arc<Probe>,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            self.probe.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The test's end of the connection: tarpc's requests and cancels out, responses in.
type Client = WireTransport<LocalStream, Response<Reply>, ClientMessage<Job>>;

/// A connection served by a [`Dispatch`] in a task of its own.
struct Served {
    client: Client,
    probe: Arc<Probe>,
    status: Arc<ServerStatus>,
    shutdown: CancellationToken,
    dispatch: JoinHandle<Result<(), CodecError>>,
}

/// Serves a fresh socket pair with at most `max_in_flight` calls and frames of at most
/// `frame_limit` bytes each way, as [`crate::service`] serves a connection.
fn serve(max_in_flight: usize, frame_limit: usize) -> Served {
    serve_with(max_in_flight, frame_limit, ShmSize::OFF)
}

/// [`serve`], with shared-memory regions of `shm` bytes agreed (`ShmSize::OFF`: none).
fn serve_with(max_in_flight: usize, frame_limit: usize, shm: ShmSize) -> Served {
    let limit = FrameLimit::new(frame_limit).expect("a limit in range");
    let (client, server) = UnixStream::pair().expect("a socket pair");
    let client = LocalStream::unix(client).expect("registers with the runtime");
    let server = LocalStream::unix(server).expect("registers with the runtime");
    for stream in [&client, &server] {
        stream
            .tune(SOCKET_BUFFER)
            .expect("sets the socket's buffers");
    }
    let client = WireTransport::new(client, BytesMut::new(), WireCodec::new(limit));
    let server = WireTransport::new(server, BytesMut::new(), WireCodec::for_requests(limit));
    let (client, server) = (client.with_lane(shm), server.with_lane(shm));
    let shutdown = CancellationToken::new();
    let server = GuardedTransport::new(server, shutdown.clone(), Duration::from_secs(30));
    let probe = Arc::new(Probe::default());
    let status = Arc::new(ServerStatus::new());
    let handler = {
        let probe = probe.clone();
        move |_: context::Context, job: Job| {
            let probe = probe.clone();
            async move {
                probe.started.fetch_add(1, Ordering::SeqCst);
                if job.tag == PANICS {
                    panic!("the test handler panics, as asked");
                }
                let mut running = Running {
                    probe: probe.clone(),
                    finished: false,
                };
                match job.millis {
                    Some(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
                    None => std::future::pending().await,
                }
                running.finished = true;
                probe.finished.fetch_add(1, Ordering::SeqCst);
                Answer::One(Ok::<_, ServerError>(Reply {
                    tag: job.tag,
                    payload: vec![7; job.reply_len],
                }))
            }
        }
    };
    let dispatch = tokio::spawn({
        let status = status.clone();
        async move {
            let transport = pin!(server);
            let new_call = move |request, registration| {
                call(handler.clone(), status.clone(), request, registration)
            };
            Dispatch::new(transport, max_in_flight, new_call).await
        }
    });
    Served {
        client,
        probe,
        status,
        shutdown,
        dispatch,
    }
}

/// Kernel buffers of each end of the socket pair: small, so that a test can fill them.
const SOCKET_BUFFER: usize = 64 * 1024;

/// Frame limit for tests that do not test it: 1 MiB.
const FRAME: usize = 1024 * 1024;

/// The in-flight limit for tests that do not test it.
const MAX_IN_FLIGHT: usize = 16;

/// Deadline of a request that is not meant to reach it: an hour away.
const FAR: Duration = Duration::from_secs(3600);

/// Call `id` doing `job`, due by `deadline`.
fn request_by(id: u64, job: Job, deadline: Instant) -> ClientMessage<Job> {
    let mut context = context::current();
    context.deadline = deadline;
    ClientMessage::Request(Request {
        context,
        id,
        message: job,
    })
}

/// Call `id` doing `job`, due in an hour.
fn request(id: u64, job: Job) -> ClientMessage<Job> {
    request_by(id, job, Instant::now() + FAR)
}

/// The client's cancellation of call `id`.
fn cancel(id: u64) -> ClientMessage<Job> {
    ClientMessage::Cancel {
        trace_context: Default::default(),
        request_id: id,
    }
}

/// Sends each message and flushes.
async fn send(client: &mut Client, messages: impl IntoIterator<Item = ClientMessage<Job>>) {
    for message in messages {
        client.send(message).await.expect("the request is sent");
    }
}

/// The next response, which must come within a minute (of paused time, mostly).
async fn next_response(client: &mut Client) -> Response<Reply> {
    tokio::time::timeout(Duration::from_secs(60), client.next())
        .await
        .expect("a response within a minute")
        .expect("a response, not the end of the connection")
        .expect("a well-formed response")
}

/// Reads what the server still sends until it closes the connection, and how it closed it:
/// `None` for a clean end.
async fn read_until_closed(client: &mut Client) -> (Vec<Response<Reply>>, Option<CodecError>) {
    let mut rest = Vec::new();
    let read = async {
        loop {
            match client.next().await {
                Some(Ok(response)) => rest.push(response),
                Some(Err(err)) => return Some(err),
                None => return None,
            }
        }
    };
    let end = tokio::time::timeout(Duration::from_secs(2 * 3600), read)
        .await
        .expect("the server closes the connection");
    (rest, end)
}

/// Closes the test's side and reads what the server still sends until it closes its own,
/// cleanly.
async fn close_and_read_the_rest(client: &mut Client) -> Vec<Response<Reply>> {
    client.close().await.expect("closes its side");
    let (rest, end) = read_until_closed(client).await;
    assert!(end.is_none(), "the connection ended with {end:?}");
    rest
}

/// The reply's tag, for a call that succeeded.
fn tag(response: &Response<Reply>) -> u32 {
    match &response.message {
        Ok(reply) => reply.tag,
        Err(err) => panic!("call {} failed: {err:?}", response.request_id),
    }
}

#[tokio::test(start_paused = true)]
async fn calls_run_side_by_side_and_are_answered_by_id_as_each_finishes() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    let started = tokio::time::Instant::now();
    let jobs = [(1, job(10, 300)), (2, job(20, 100)), (3, job(30, 200))];
    send(&mut served.client, jobs.map(|(id, job)| request(id, job))).await;
    let mut answered = Vec::new();
    for _ in 0..3 {
        let response = next_response(&mut served.client).await;
        answered.push((response.request_id, tag(&response)));
    }
    assert_eq!(
        answered,
        [(2, 20), (3, 30), (1, 10)],
        "answered in the order they finished, each with its own reply"
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(400),
        "calls of 300, 100 and 200 ms took {took:?}: they did not run at once"
    );
    assert_eq!(served.status.calls_served(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_fails_its_call_alone_and_the_connection_goes_on() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(
        &mut served.client,
        [request(1, job(10, 200)), request(2, job(PANICS, 0))],
    )
    .await;
    let first = next_response(&mut served.client).await;
    assert_eq!(first.request_id, 2, "the panicking call is answered first");
    match &first.message {
        Err(err) => assert!(
            err.kind == std::io::ErrorKind::Other && err.detail.contains("the handler panicked"),
            "{err:?}"
        ),
        Ok(reply) => panic!("a panicking handler answered {reply:?}"),
    }
    assert_eq!(tag(&next_response(&mut served.client).await), 10);
    send(&mut served.client, [request(3, job(30, 0))]).await;
    assert_eq!(
        tag(&next_response(&mut served.client).await),
        30,
        "the connection still serves"
    );
    assert_eq!(served.status.info().calls_in_progress, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancel_drops_the_handler_at_once_and_sends_no_response() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(
        &mut served.client,
        [request(1, hanging(10)), request(2, job(20, 0))],
    )
    .await;
    assert_eq!(next_response(&mut served.client).await.request_id, 2);
    assert_eq!(served.probe.started(), 2, "call 1's handler runs");

    send(&mut served.client, [cancel(1), request(3, job(30, 0))]).await;
    let response = next_response(&mut served.client).await;
    assert_eq!(response.request_id, 3, "the cancelled call is not answered");
    assert_eq!(
        served.probe.dropped(),
        1,
        "the cancelled handler was dropped before the next call was answered"
    );
    assert_eq!(served.status.info().calls_cancelled, 1);

    let rest = close_and_read_the_rest(&mut served.client).await;
    assert!(rest.is_empty(), "nothing more was sent: {rest:?}");
    served.dispatch.await.expect("no panic").expect("no error");
}

#[tokio::test(start_paused = true)]
async fn a_passed_deadline_drops_the_handler_and_sends_no_response() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    let soon = Instant::now() + Duration::from_secs(1);
    send(
        &mut served.client,
        [request_by(1, hanging(10), soon), request(2, hanging(20))],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served.probe.started(), 2);
    assert_eq!(served.probe.dropped(), 0, "no deadline has passed yet");

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        served.probe.dropped(),
        1,
        "call 1's handler is dropped at its deadline, call 2's runs on"
    );
    send(&mut served.client, [request(3, job(30, 0))]).await;
    let response = next_response(&mut served.client).await;
    assert_eq!(response.request_id, 3, "the expired call is not answered");

    // Call 2 keeps the connection until its own deadline passes; nothing is answered.
    let rest = close_and_read_the_rest(&mut served.client).await;
    assert!(rest.is_empty(), "expired calls were answered: {rest:?}");
    assert_eq!(served.probe.dropped(), 2);
    assert_eq!(served.probe.finished(), 1);
    served.dispatch.await.expect("no panic").expect("no error");
}

// On the real clock: a request decoded on a paused clock would seem to come from the future.
#[tokio::test]
async fn a_request_already_past_its_deadline_is_never_run() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .expect("the clock is past its first second");
    send(
        &mut served.client,
        [request_by(1, job(10, 0), past), request(2, job(20, 0))],
    )
    .await;
    let response = next_response(&mut served.client).await;
    assert_eq!(
        response.request_id, 2,
        "the expired request is not answered"
    );
    assert_eq!(served.probe.started(), 1, "its handler never ran");
    let rest = close_and_read_the_rest(&mut served.client).await;
    assert!(
        rest.is_empty(),
        "the expired request was answered: {rest:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_of_a_running_call_is_ignored() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(
        &mut served.client,
        [request(7, job(1, 100)), request(7, job(2, 0))],
    )
    .await;
    let response = next_response(&mut served.client).await;
    assert_eq!((response.request_id, tag(&response)), (7, 1));
    assert_eq!(served.probe.started(), 1, "the duplicate never ran");

    // Once the call is answered, its id may be used again.
    send(&mut served.client, [request(7, job(3, 0))]).await;
    let response = next_response(&mut served.client).await;
    assert_eq!((response.request_id, tag(&response)), (7, 3));
    let rest = close_and_read_the_rest(&mut served.client).await;
    assert!(rest.is_empty(), "the duplicate was answered: {rest:?}");
}

#[tokio::test(start_paused = true)]
async fn over_the_in_flight_limit_the_extra_call_is_throttled_at_once() {
    const LIMIT: usize = 4;
    for calls in [LIMIT - 1, LIMIT, LIMIT + 1] {
        let mut served = serve(LIMIT, FRAME);
        // All but the last call never finish; the last one is quick.
        let last = calls as u64;
        let mut requests: Vec<_> = (1..last).map(|id| request(id, hanging(0))).collect();
        requests.push(request(last, job(99, 0)));
        send(&mut served.client, requests).await;
        let response = next_response(&mut served.client).await;
        assert_eq!(response.request_id, last, "{calls} calls");
        if calls <= LIMIT {
            assert_eq!(tag(&response), 99, "{calls} calls: the last one runs");
            assert_eq!(served.probe.started(), calls);
            continue;
        }
        let err = response.message.expect_err("the call over the limit fails");
        assert_eq!(err.kind, std::io::ErrorKind::WouldBlock);
        assert_eq!(err.detail, "server throttled the request.");
        assert_eq!(
            served.probe.started(),
            LIMIT,
            "the throttled call never ran"
        );

        // A cancelled call frees its place as soon as its handler is dropped.
        send(&mut served.client, [cancel(1), request(100, job(100, 0))]).await;
        let response = next_response(&mut served.client).await;
        assert_eq!((response.request_id, tag(&response)), (100, 100));
    }
}

#[tokio::test(start_paused = true)]
async fn a_response_over_the_frame_limit_fails_that_call_alone() {
    let limit = FrameLimit::MIN.bytes();
    let empty = Response {
        request_id: 0,
        message: Ok(Reply {
            tag: 0,
            payload: Vec::new(),
        }),
    };
    let overhead = WireFormat::new(FrameLimit::MIN)
        .body_len(&empty)
        .expect("an empty reply fits");
    let mut served = serve(MAX_IN_FLIGHT, limit);
    for (id, body_len) in [(1, limit - 1), (2, limit), (3, limit + 1)] {
        let job = Job {
            reply_len: body_len - overhead,
            ..job(id as u32, 0)
        };
        send(&mut served.client, [request(id, job)]).await;
        let response = next_response(&mut served.client).await;
        assert_eq!(response.request_id, id);
        if body_len <= limit {
            assert_eq!(tag(&response), id as u32, "a {body_len}-byte reply fits");
            continue;
        }
        let err = response.message.expect_err("a reply over the limit fails");
        assert_eq!(err.kind, std::io::ErrorKind::InvalidData);
        assert!(
            err.detail
                .contains(&format!("frame limit of {limit} bytes")),
            "the error names the limit: {}",
            err.detail
        );
    }
    send(&mut served.client, [request(4, job(4, 0))]).await;
    let response = next_response(&mut served.client).await;
    assert_eq!(
        (response.request_id, tag(&response)),
        (4, 4),
        "the connection goes on"
    );
}

#[tokio::test(start_paused = true)]
async fn when_the_peer_closes_its_side_running_calls_are_answered_then_the_loop_ends() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(
        &mut served.client,
        [request(1, job(10, 200)), request(2, job(20, 100))],
    )
    .await;
    let rest = close_and_read_the_rest(&mut served.client).await;
    let answered: Vec<_> = rest.iter().map(|r| (r.request_id, tag(r))).collect();
    assert_eq!(answered, [(2, 20), (1, 10)]);
    served.dispatch.await.expect("no panic").expect("no error");
    assert_eq!(served.probe.dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_reading_and_running_calls_are_still_answered() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(
        &mut served.client,
        [request(1, job(10, 500)), request(2, job(20, 0))],
    )
    .await;
    assert_eq!(next_response(&mut served.client).await.request_id, 2);
    assert_eq!(served.probe.started(), 2, "call 1 is running");

    served.shutdown.cancel();
    send(&mut served.client, [request(3, job(30, 0))]).await;
    let (rest, end) = read_until_closed(&mut served.client).await;
    let answered: Vec<_> = rest.iter().map(|r| (r.request_id, tag(r))).collect();
    assert_eq!(answered, [(1, 10)], "the running call, and no new one");
    assert_eq!(served.probe.started(), 2, "call 3 was never read");
    // Closed with call 3 unread, which Linux reports to the peer as a reset.
    assert!(
        end.as_ref()
            .is_none_or(|err| matches!(err, CodecError::Io(io)
            if io.kind() == std::io::ErrorKind::ConnectionReset)),
        "the connection ended with {end:?}"
    );
    served.dispatch.await.expect("no panic").expect("no error");
}

#[tokio::test(start_paused = true)]
async fn the_loop_ends_without_the_peer_closing_once_shutdown_finished_the_calls() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(&mut served.client, [request(1, job(10, 100))]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    served.shutdown.cancel();
    let response = next_response(&mut served.client).await;
    assert_eq!((response.request_id, tag(&response)), (1, 10));
    let ended = tokio::time::timeout(Duration::from_secs(60), &mut served.dispatch).await;
    ended
        .expect("the loop ended with the client still connected")
        .expect("no panic")
        .expect("no error");
}

#[tokio::test(start_paused = true)]
async fn a_transport_error_ends_the_connection_and_drops_running_calls() {
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    send(&mut served.client, [request(1, hanging(10))]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(served.probe.started(), 1);

    // The request codec refuses a deadline beyond a year.
    let too_far = Instant::now() + Duration::from_secs(2 * 365 * 24 * 3600);
    send(&mut served.client, [request_by(2, job(20, 0), too_far)]).await;
    let ended = tokio::time::timeout(Duration::from_secs(60), &mut served.dispatch)
        .await
        .expect("the loop ended")
        .expect("no panic");
    assert!(
        matches!(ended, Err(CodecError::Malformed(_))),
        "ended with {ended:?}"
    );
    assert_eq!(served.probe.dropped(), 1, "the running call was dropped");
    assert_eq!(served.probe.started(), 1, "the bad request never ran");
    let next = served.client.next().await;
    assert!(
        next.is_none(),
        "the connection is closed, unanswered: {next:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn responses_that_fill_the_socket_all_arrive_as_the_client_reads_them() {
    const CALLS: u64 = 16;
    let mut served = serve(MAX_IN_FLIGHT, FRAME);
    // 16 replies of 128 KiB: 2 MiB, far more than the socket pair's buffers hold.
    let requests = (1..=CALLS).map(|id| {
        let job = Job {
            reply_len: 128 * 1024,
            ..job(id as u32, 0)
        };
        request(id, job)
    });
    send(&mut served.client, requests).await;
    // Let the server run into the full socket before anything is read. While a response
    // waits for room, the running calls are not polled: so not all of them finished.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let finished = served.probe.finished() as u64;
    assert!(
        (1..CALLS).contains(&finished),
        "{finished} of {CALLS} handlers finished before the client read: the socket never filled"
    );
    let mut ids = Vec::new();
    for _ in 0..CALLS {
        let response = next_response(&mut served.client).await;
        let reply = response.message.as_ref().expect("the call succeeds");
        assert_eq!(reply.payload.len(), 128 * 1024);
        ids.push(response.request_id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=CALLS).collect::<Vec<_>>());
}

// Real threads and clock: the client reads, making room in the socket, on one thread while
// the loop writes on the other. Whether room appears between two of the loop's attempts to
// write (where a lost wake-up would hold a response back) is up to the scheduler, so this
// catches such a bug only now and then; no single-threaded test can reach that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_while_the_server_writes_gets_every_response() {
    const CALLS: u64 = 2000;
    let served = serve(CALLS as usize, FRAME);
    let (mut writer, mut reader) = served.client.split();
    let sending = tokio::spawn(async move {
        for id in 1..=CALLS {
            let job = Job {
                reply_len: 16 * 1024 + (id as usize * 7919) % (48 * 1024),
                ..job(id as u32, 0)
            };
            writer.feed(request(id, job)).await.expect("sent");
        }
        writer.flush().await.expect("flushed");
    });
    let reading = async {
        let mut ids = Vec::new();
        while ids.len() < CALLS as usize {
            let response = reader.next().await.expect("open").expect("well-formed");
            assert!(response.message.is_ok(), "{response:?}");
            ids.push(response.request_id);
        }
        ids
    };
    let mut ids = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("every response arrived: none was held back");
    ids.sort_unstable();
    assert_eq!(ids, (1..=CALLS).collect::<Vec<_>>());
    sending.await.expect("the sender did not panic");
}

#[tokio::test(start_paused = true)]
async fn at_the_in_flight_limit_an_answer_waiting_for_room_still_gets_the_clients_report() {
    const LIMIT: usize = 4;
    let mut served = serve_with(LIMIT, FRAME, ShmSize::new(4 << 20).expect("in range"));
    // Two answers of more than half of LANE_AHEAD each: the second waits for the first's slot.
    let large = |tag, millis| Job {
        tag,
        millis: Some(millis),
        reply_len: LANE_AHEAD as usize * 3 / 5,
    };
    let start = tokio::time::Instant::now();
    send(
        &mut served.client,
        [
            request(1, hanging(1)),
            request(2, large(2, 0)),
            request(3, large(3, 10)),
            request(4, hanging(4)),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The third answer waits for room. Two more calls that hang bring the server to its limit
    // (1, 4, 5 and 6 running), and the client's report of the second answer's slot comes
    // behind them: only a server that reads at its limit sees it.
    send(
        &mut served.client,
        [request(5, hanging(5)), request(6, hanging(6))],
    )
    .await;
    let second = next_response(&mut served.client).await;
    assert_eq!((second.request_id, tag(&second)), (2, 2));
    served.client.flush().await.expect("the report is written");
    let third = next_response(&mut served.client).await;
    assert_eq!((third.request_id, tag(&third)), (3, 3));
    // The server read on to the report: the answer did not wait its LANE_WAIT out.
    assert!(start.elapsed() < LANE_WAIT, "after {:?}", start.elapsed());
    assert_eq!(served.probe.started.load(Ordering::SeqCst), LIMIT + 2);
}
