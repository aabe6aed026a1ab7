//! Streams sharing a connection with calls and other streams: only one task is registered
//! with the socket, so a consumer that is busy, or that waits on something else, must not
//! keep other tasks' answers unread (the hand-off, the consumer's looks and the watcher see
//! to it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;

#[tokio::test(start_paused = true)]
async fn calls_are_answered_while_a_stream_nobody_takes_from_is_open() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..3).await;
    // The call's task reads the stream's answers too, and keeps them for the stream.
    a_call_works(&channel, &mut server).await;

    for n in 0..3 {
        expect_item(&mut answers, n).await;
    }
    // The stream is polled after the call, so the socket wakes this task (not the call's) when
    // answers arrive; and this task then waits for the call, not for the stream: the watcher
    // must read the call's answer.
    let call = spawn_call(&channel, 1);
    let (call_id, ask) = next_call(&mut server).await;
    tokio::task::yield_now().await;
    assert!(futures::poll!(answers.next()).is_pending());
    send_items(&mut server, id, 3..5).await;
    let started = tokio::time::Instant::now();
    let response = Response {
        request_id: call_id,
        message: Ok(Reply::Answer(ask + 1)),
    };
    server.send(response).await.expect("sent");
    assert_eq!(answered(call).await, Reply::Answer(2));
    assert!(
        started.elapsed() <= WATCH_INTERVAL + Duration::from_millis(10),
        "a consumer that does not poll held the call up for {:?}",
        started.elapsed()
    );
    expect_item(&mut answers, 3).await;
    expect_item(&mut answers, 4).await;
}

#[tokio::test(start_paused = true)]
async fn a_consumer_busy_with_its_buffered_answers_does_not_hold_up_a_call() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    let call = spawn_call(&channel, 1);
    let (call_id, ask) = next_call(&mut server).await;
    send_items(&mut server, id, 0..10).await;
    // Its first poll reads all ten answers; it then takes one every 100 ms, with no need to
    // read the socket, which would wake it (not the call) for the call's answer.
    let consumer = tokio::spawn(async move {
        for n in 0..10 {
            expect_item(&mut answers, n).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let response = Response {
        request_id: call_id,
        message: Ok(Reply::Answer(ask + 1)),
    };
    server.send(response).await.expect("sent");
    assert_eq!(answered(call).await, Reply::Answer(2));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "the call waited {:?} for the consumer",
        started.elapsed()
    );
    consumer.await.expect("the consumer took every answer");
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_consumer_does_not_poll_does_not_strand_another_streams_answers() {
    let (channel, mut server) = connect(StreamLimits::default());
    let window = rpc_core::limits::DEFAULT_STREAM_WINDOW;
    let mut first = open(&channel).await;
    let first_id = opened(&mut server, window).await;
    let mut second = open(&channel).await;
    let second_id = opened(&mut server, window).await;
    let waiting = tokio::spawn(async move { expect_item(&mut second, 0).await });
    tokio::task::yield_now().await;
    // Polled last, the first stream's consumer (this task) is the one the socket wakes; it
    // then waits for the other task, not for its stream: only the watcher reads.
    assert!(futures::poll!(first.next()).is_pending());
    let started = tokio::time::Instant::now();
    send_items(&mut server, second_id, 0..1).await;
    tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the second stream's item came within a minute")
        .expect("it was item 0");
    assert!(
        started.elapsed() <= WATCH_INTERVAL,
        "the second stream waited {:?}",
        started.elapsed()
    );
    send_items(&mut server, first_id, 0..1).await;
    expect_item(&mut first, 0).await;
}

/// A stream whose consumer has taken the first of `items` answers the server sent, and holds the
/// rest: its first poll read them all.
async fn answers_in_hand(items: u64) -> (Channel<Ask, Reply>, Server, Answers<Reply>) {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    send_items(&mut server, id, 0..items).await;
    expect_item(&mut answers, 0).await;
    (channel, server, answers)
}

/// Reads two calls' requests and answers only the one that asks `ask`. The other waits on: a
/// task the channel's hand-off can pick, so that only the wake-up under test wakes the stream.
async fn answer_only(server: &mut Server, ask: u32) {
    let calls = [next_call(server).await, next_call(server).await];
    let (id, _) = calls
        .into_iter()
        .find(|&(_, asked)| asked == ask)
        .expect("one of them asks it");
    let response = Response {
        request_id: id,
        message: Ok(Reply::Answer(ask + 1)),
    };
    server.send(response).await.expect("sent");
}

/// Takes answers (the items after 0, in order) without ever yielding, as a consumer busy with
/// them would, until the stream has none to give: returns the next item's number, and what
/// counts the times the stream wakes this consumer from then on.
async fn take_until_pending(answers: &mut Answers<Reply>) -> (u64, Arc<WakeCount>) {
    let wakes = Arc::new(WakeCount::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    // Unconstrained: tokio's cooperative budget would otherwise end the loop after 128.
    let next = tokio::task::unconstrained(async {
        let mut next = 1;
        loop {
            match answers.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(Ok(Reply::Number(StreamEvent::Item(n))))) => {
                    assert_eq!(n, next);
                    next += 1;
                }
                Poll::Pending => return next,
                other => panic!("expected item {next}, got {other:?}"),
            }
        }
    })
    .await;
    (next, wakes)
}

/// A caller that polls its call asking `ask` once, then does something else (waits to be
/// told) and does not poll it meanwhile. Told `true`, it waits for the answer; told `false`, it
/// drops the call.
fn hold_a_call(
    channel: &Channel<Ask, Reply>,
    ask: u32,
) -> (
    tokio::sync::oneshot::Sender<bool>,
    JoinHandle<Option<Result<Reply, RpcError>>>,
) {
    let (then, told) = tokio::sync::oneshot::channel();
    let channel = channel.clone();
    let caller = tokio::spawn(async move {
        let mut call = Box::pin(channel.call(context::current(), Ask::Call(ask)));
        assert!(futures::poll!(call.as_mut()).is_pending());
        let keep = told.await.expect("told what to do");
        match keep {
            true => Some(call.await),
            false => None,
        }
    });
    (then, caller)
}

/// Checks that a consumer that gave way was woken once, when `why` happened, and takes the
/// items `rest` in order.
async fn goes_on(
    answers: &mut Answers<Reply>,
    wakes: &WakeCount,
    rest: std::ops::Range<u64>,
    why: &str,
) {
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "woken once {why}");
    for n in rest {
        expect_item(answers, n).await;
    }
}

#[tokio::test]
async fn a_consumer_with_answers_in_hand_finds_a_calls_answer_and_gives_way_to_it() {
    let items = 200;
    let (channel, mut server, mut answers) = answers_in_hand(items).await;
    let call = spawn_call(&channel, 1);
    let waiting = spawn_call(&channel, 10);
    answer_only(&mut server, 1).await;

    // This task now takes answers without yielding, so the runtime has not seen the call's
    // answer arrive, nor would it before this task stops: the consumer must look for it
    // itself, and then wait for the caller to take it.
    let (next, wakes) = take_until_pending(&mut answers).await;
    assert!(
        next <= u64::from(super::LOOK_EVERY),
        "the consumer took {next} of its {items} answers before it gave way to the call"
    );
    assert_eq!(
        wakes.0.load(Ordering::Relaxed),
        0,
        "woken before the caller ran"
    );
    assert_eq!(answered(call).await, Reply::Answer(2));
    goes_on(
        &mut answers,
        &wakes,
        next..items,
        "the caller took its answer",
    )
    .await;
    waiting.abort();
}

#[tokio::test]
async fn a_consumer_that_gave_way_goes_on_once_the_caller_drops_its_answered_call() {
    let items = 200;
    let (channel, mut server, mut answers) = answers_in_hand(items).await;
    let (then, caller) = hold_a_call(&channel, 1);
    let waiting = spawn_call(&channel, 10);
    answer_only(&mut server, 1).await;

    let (next, wakes) = take_until_pending(&mut answers).await;
    assert!(next <= u64::from(super::LOOK_EVERY), "took {next} answers");
    then.send(false).expect("the caller waits");
    assert!(caller.await.expect("the caller did not panic").is_none());
    goes_on(
        &mut answers,
        &wakes,
        next..items,
        "the caller dropped its answered call",
    )
    .await;
    waiting.abort();
}

#[tokio::test(start_paused = true)]
async fn a_consumer_that_gave_way_to_a_caller_who_does_not_take_its_answer_goes_on_at_the_watchers_tick()
 {
    let items = 100;
    let (channel, mut server, mut answers) = answers_in_hand(items).await;
    let (then, caller) = hold_a_call(&channel, 1);
    let waiting = spawn_call(&channel, 10);
    answer_only(&mut server, 1).await;

    // The consumer finds the answer within a look, gives way, and waits for the caller, which
    // does not come: the watcher's tick lets it go on.
    let started = tokio::time::Instant::now();
    for n in 1..items {
        expect_item(&mut answers, n).await;
    }
    let waited = started.elapsed();
    assert!(
        waited > Duration::ZERO && waited <= WATCH_INTERVAL,
        "the consumer waited {waited:?} for a caller that does not come"
    );
    then.send(true).expect("the caller waits");
    let answer = caller.await.expect("the caller did not panic");
    assert_eq!(answer.expect("kept").expect("answered"), Reply::Answer(2));
    waiting.abort();
}

/// Opens a stream whose consumer waits for its first item in a task of its own, polled before
/// anything else is: the socket wakes whichever task polls it later.
async fn waiting_stream(
    channel: &Channel<Ask, Reply>,
    server: &mut Server,
) -> (u64, JoinHandle<Option<Result<Reply, RpcError>>>) {
    let mut answers = open(channel).await;
    let id = opened(server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    let waiting = tokio::spawn(async move { answers.next().await });
    tokio::task::yield_now().await;
    (id, waiting)
}

#[tokio::test(start_paused = true)]
async fn a_call_that_ends_hands_the_reading_over_to_a_waiting_stream() {
    let (channel, mut server) = connect(StreamLimits::default());
    let (id, waiting) = waiting_stream(&channel, &mut server).await;
    // The call, polled last, is the one the socket wakes; once answered, it must wake the
    // stream's consumer to take over.
    a_call_works(&channel, &mut server).await;
    let started = tokio::time::Instant::now();
    send_items(&mut server, id, 0..1).await;
    let first = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the item came within a minute")
        .expect("the consumer did not panic");
    assert!(
        matches!(first, Some(Ok(Reply::Number(StreamEvent::Item(0))))),
        "{first:?}"
    );
    assert!(
        started.elapsed() < WATCH_INTERVAL / 2,
        "the stream waited {:?} for the watcher",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_stream_fails_when_another_task_finds_the_connection_closed() {
    let (channel, mut server) = connect(StreamLimits::default());
    let (_, waiting) = waiting_stream(&channel, &mut server).await;
    let call = spawn_call(&channel, 1);
    next_call(&mut server).await;
    drop(server);
    let failed = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the call ended within a minute")
        .expect("the call did not panic");
    assert!(matches!(failed, Err(RpcError::Shutdown)), "{failed:?}");
    let ended = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the stream ended within a minute")
        .expect("the consumer did not panic");
    assert!(matches!(ended, Some(Err(RpcError::Shutdown))), "{ended:?}");
}

/// Counts the times it is woken.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_alone_on_its_connection_is_woken_only_when_something_arrives() {
    let (channel, mut server) = connect(StreamLimits::default());
    let mut answers = open(&channel).await;
    let id = opened(&mut server, rpc_core::limits::DEFAULT_STREAM_WINDOW).await;
    let wakes = Arc::new(WakeCount::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(answers.as_mut().poll_next(&mut cx).is_pending());

    // Twenty of the watcher's ticks: it leaves the consumer, which the socket wakes, alone.
    tokio::time::sleep(20 * WATCH_INTERVAL).await;
    assert_eq!(
        wakes.0.load(Ordering::Relaxed),
        0,
        "woken with nothing to take"
    );

    send_items(&mut server, id, 0..1).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "woken for its answer");
    match answers.as_mut().poll_next(&mut cx) {
        Poll::Ready(Some(Ok(Reply::Number(StreamEvent::Item(0))))) => {}
        other => panic!("expected item 0, got {other:?}"),
    }
}
