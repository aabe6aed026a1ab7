//! The measurements: sequential latency into an HDR histogram, and throughput with a fixed number
//! of calls in flight per connection. The same loops drive every implementation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::large_payload;
use crate::raw;
use crate::spread::Spread;
use crate::steady_state::SteadyState;
use crate::subject::{Connection, Echoer, Implementation, Subject, Transport};

/// Latency percentiles of one subject at one payload size, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Implementation.
    pub implementation: Implementation,
    /// Transport.
    pub transport: Transport,
    /// Payload bytes each way.
    pub payload: usize,
    /// Calls timed.
    pub samples: u64,
    /// The median call: the median of the rounds' medians (see `p50_rounds`).
    pub p50_us: f64,
    /// Each round's median call, with their median and range.
    pub p50_rounds: Spread,
    /// 90th percentile, of every call of every round (as are the ones below).
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Slowest call.
    pub max_us: f64,
}

/// Throughput of one subject at one payload size and concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Implementation.
    pub implementation: Implementation,
    /// Transport.
    pub transport: Transport,
    /// Payload bytes each way.
    pub payload: usize,
    /// Calls kept in flight on each connection.
    pub in_flight: usize,
    /// Connections.
    pub connections: usize,
    /// Calls answered in the rounds' windows, all rounds together.
    pub calls: u64,
    /// Seconds the rounds' windows were open (see `steady_state.rs`), all together.
    pub seconds: f64,
    /// Calls per second: the median of the rounds' rates (see `rounds`).
    pub calls_per_sec: f64,
    /// Payload megabytes (10^6) echoed per second, counted one way, at the median rate.
    pub mb_per_sec: f64,
    /// Each round's calls per second, with their median and range.
    pub rounds: Spread,
}

impl Throughput {
    /// The point's figures from its rounds, in the order measured (at least one).
    pub fn from_rounds(parts: &[Throughput]) -> Option<Throughput> {
        let first = parts.first()?;
        let rounds = Spread::new(parts.iter().map(|t| t.calls_per_sec).collect());
        Some(Throughput {
            calls: parts.iter().map(|t| t.calls).sum(),
            seconds: parts.iter().map(|t| t.seconds).sum(),
            calls_per_sec: rounds.median,
            mb_per_sec: rounds.median * first.payload as f64 / 1e6,
            rounds,
            ..first.clone()
        })
    }
}

/// Calls made before timing starts, to settle buffers and caches.
pub const WARMUP_CALLS: usize = 20;

/// The percentiles of one round of sequential calls, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RoundLatency {
    /// Calls timed in the round.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

/// Call times of one run of sequential calls: all rounds in one histogram (the run's
/// percentiles), and each round's own percentiles, so that two runs measured in the same rounds
/// can be compared round by round.
pub struct Recorder {
    all: Histogram<u64>,
    round: Histogram<u64>,
    rounds: Vec<RoundLatency>,
}

impl Recorder {
    /// An empty recorder: 1 ns to 120 s, three significant digits.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Recorder {
            all: Histogram::new_with_bounds(1, 120_000_000_000, 3)?,
            round: Histogram::new_with_bounds(1, 120_000_000_000, 3)?,
            rounds: Vec::new(),
        })
    }

    /// Records one call's time.
    pub fn record(&mut self, elapsed: Duration) {
        let ns = elapsed.as_nanos().max(1) as u64;
        let _ = self.all.record(ns);
        let _ = self.round.record(ns);
    }

    /// Calls recorded in the round not closed yet.
    pub fn round_calls(&self) -> u64 {
        self.round.len()
    }

    /// Closes the current round: keeps its percentiles and starts the next one empty.
    pub fn end_round(&mut self) {
        let us = |ns: u64| ns as f64 / 1000.0;
        self.rounds.push(RoundLatency {
            samples: self.round.len(),
            p50_us: us(self.round.value_at_quantile(0.5)),
            p99_us: us(self.round.value_at_quantile(0.99)),
        });
        self.round.reset();
    }

    /// Every call of every round.
    pub fn all(&self) -> &Histogram<u64> {
        &self.all
    }

    /// Each closed round's percentiles, in order.
    pub fn rounds(&self) -> &[RoundLatency] {
        &self.rounds
    }
}

/// Sequential calls, one at a time, timed into a [`Recorder`] round by round: what the typed
/// latency run and the JSON path's share.
///
/// The futures are `Send`, so a round can run on any worker (see `schedule.rs`).
pub(crate) trait TimedCalls: Send {
    /// Makes one call; returns how long it took.
    fn call(&mut self) -> impl Future<Output = anyhow::Result<Duration>> + Send;

    /// Where the calls' times go.
    fn recorder(&mut self) -> &mut Recorder;

    /// The most calls a round times, if fewer than its duration allows.
    fn calls_per_round(&self) -> Option<u64> {
        None
    }

    /// Goes on over a fresh connection, its warm-up calls made, untimed (see
    /// [`TimedCalls::renew`]'s use in `schedule.rs`). Does nothing unless implemented.
    fn renew(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Makes the untimed calls each slice starts with. None unless implemented.
    fn before_slice(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Makes calls, one at a time, for `duration` (or [`TimedCalls::calls_per_round`] calls,
    /// whichever comes first, and at least one), recording each one's time as one round.
    fn round(&mut self, duration: Duration) -> impl Future<Output = anyhow::Result<()>> + Send {
        async move {
            self.slice(duration).await?;
            self.recorder().end_round();
            Ok(())
        }
    }

    /// Makes calls, one at a time, for `duration`, recording each one's time into the round
    /// being recorded, which stays open: a round made of slices, taken in turn with other
    /// subjects, is closed with [`Recorder::end_round`]. At least one call, unless the round
    /// already holds [`TimedCalls::calls_per_round`].
    fn slice(&mut self, duration: Duration) -> impl Future<Output = anyhow::Result<()>> + Send {
        async move {
            self.before_slice().await?;
            let until = Instant::now() + duration;
            let cap = self.calls_per_round().unwrap_or(u64::MAX);
            while self.recorder().round_calls() < cap {
                let elapsed = self.call().await?;
                self.recorder().record(elapsed);
                if Instant::now() >= until {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// `len` bytes counting up from 0 (wrapping), the payload every echo sends.
pub fn payload(len: usize) -> ByteBuf {
    ByteBuf::from((0..len).map(|i| i as u8).collect::<Vec<u8>>())
}

/// Fails unless the echo answered as many bytes as were sent.
pub fn check_echo(sent: usize, got: &ByteBuf) -> anyhow::Result<()> {
    anyhow::ensure!(
        got.len() == sent,
        "echo returned {} bytes for {sent}",
        got.len()
    );
    Ok(())
}

/// Sequential echoes of one subject at one payload size, timed in rounds: the bench alternates
/// subjects round by round, so a burst of load from elsewhere on this shared machine lands on
/// every subject's figures instead of on whichever one it happened to be measuring.
pub struct LatencyRun {
    subject: Subject,
    size: usize,
    connection: Connection,
    recorder: Recorder,
    /// The payload, sent and echoed back call after call (`rpc` and `tarpc`).
    bytes: ByteBuf,
    /// The request frame and the reply buffer (`raw`).
    frame: Vec<u8>,
    reply: Vec<u8>,
}

impl LatencyRun {
    /// Opens a connection and makes [`WARMUP_CALLS`] untimed calls on it (a large payload
    /// fewer: see `large_payload.rs`).
    pub async fn start(subject: &Subject, size: usize) -> anyhow::Result<Self> {
        let mut run = LatencyRun {
            subject: subject.clone(),
            size,
            connection: subject.connect(size).await?,
            recorder: Recorder::new()?,
            bytes: ByteBuf::new(),
            frame: Vec::new(),
            reply: Vec::new(),
        };
        match run.connection {
            Connection::Echo(_) => run.bytes = payload(size),
            Connection::Raw(_) => run.frame = raw::frame(size),
        }
        run.warm_up().await?;
        Ok(run)
    }

    /// The untimed calls a fresh connection makes first.
    async fn warm_up(&mut self) -> anyhow::Result<()> {
        let warmup = if large_payload::is_large(self.size) {
            large_payload::WARMUP_CALLS
        } else {
            WARMUP_CALLS
        };
        for _ in 0..warmup {
            self.call().await?;
        }
        Ok(())
    }

    /// The percentiles: the p50 as the median of the rounds', the others of every call.
    pub fn finish(&self) -> Latency {
        summarize(
            self.subject.implementation,
            self.subject.transport,
            self.size,
            self.recorder.all(),
            self.recorder.rounds(),
        )
    }

    /// The subject measured.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The payload size, bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Each round's percentiles.
    pub fn rounds(&self) -> &[RoundLatency] {
        self.recorder.rounds()
    }
}

impl TimedCalls for LatencyRun {
    /// One echo; returns how long it took.
    async fn call(&mut self) -> anyhow::Result<Duration> {
        match &mut self.connection {
            Connection::Echo(client) => {
                let bytes = std::mem::take(&mut self.bytes);
                let start = Instant::now();
                let bytes = client.echo(bytes).await?;
                let elapsed = start.elapsed();
                check_echo(self.size, &bytes)?;
                self.bytes = bytes;
                Ok(elapsed)
            }
            Connection::Raw(raw) => {
                let start = Instant::now();
                raw.echo(&self.frame, &mut self.reply).await?;
                Ok(start.elapsed())
            }
        }
    }

    fn recorder(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    fn calls_per_round(&self) -> Option<u64> {
        large_payload::is_large(self.size).then_some(large_payload::CALLS_PER_ROUND)
    }

    async fn renew(&mut self) -> anyhow::Result<()> {
        self.connection = self.subject.connect(self.size).await?;
        self.warm_up().await
    }

    /// A large payload's slice starts with one untimed call (see
    /// `large_payload::SLICE_WARMUP_CALLS`).
    async fn before_slice(&mut self) -> anyhow::Result<()> {
        if large_payload::is_large(self.size) {
            for _ in 0..large_payload::SLICE_WARMUP_CALLS {
                self.call().await?;
            }
        }
        Ok(())
    }
}

/// The percentiles of a run's calls: the p50 from its rounds, the others from all calls.
fn summarize(
    implementation: Implementation,
    transport: Transport,
    size: usize,
    h: &Histogram<u64>,
    rounds: &[RoundLatency],
) -> Latency {
    let us = |ns: u64| ns as f64 / 1000.0;
    let p50_rounds = Spread::new(rounds.iter().map(|r| r.p50_us).collect());
    Latency {
        implementation,
        transport,
        payload: size,
        samples: h.len(),
        p50_us: p50_rounds.median,
        p50_rounds,
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
    }
}

/// Keeps `in_flight` echoes of `size` bytes outstanding on each of `connections` new connections
/// and counts the answers over `duration` of their steady state: from when every task (or raw
/// pipeline) has its calls in flight, not counting the payloads' making nor the drain after
/// (see `steady_state.rs`).
pub async fn throughput(
    subject: &Subject,
    size: usize,
    in_flight: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(subject.connect(size).await?);
    }
    let state = SteadyState::new();
    let mut tasks = Vec::new();
    for connection in opened {
        match connection {
            Connection::Echo(client) => {
                for _ in 0..in_flight {
                    let client = client.clone();
                    tasks.push(tokio::spawn(state.clone().run_unit(
                        move |state| async move { echo_until_stopped(&client, size, &state).await },
                    )));
                }
            }
            Connection::Raw(raw) => {
                let frame = Arc::new(raw::frame(size));
                tasks.push(tokio::spawn(state.clone().run_unit(
                    move |state| async move { raw.pipeline(frame, in_flight, &state).await },
                )));
            }
        }
    }
    let window = state.time(tasks.len(), duration).await;
    for task in tasks {
        task.await.context("load task panicked")??;
    }
    let window = window.context("a load task ended before every one had its calls in flight")?;
    let calls_per_sec = window.answers as f64 / window.seconds;
    Ok(Throughput {
        implementation: subject.implementation,
        transport: subject.transport,
        payload: size,
        in_flight,
        connections,
        calls: window.answers,
        seconds: window.seconds,
        calls_per_sec,
        mb_per_sec: calls_per_sec * size as f64 / 1e6,
        rounds: Spread::new(vec![calls_per_sec]),
    })
}

/// One of a throughput point's echo tasks: makes its payload, then echoes it again and again
/// until `state` says stop.
async fn echo_until_stopped(
    client: &Echoer,
    size: usize,
    state: &SteadyState,
) -> anyhow::Result<()> {
    let mut bytes = payload(size);
    let mut first = true;
    while first || !state.stopped() {
        let call = client.echo(bytes);
        if std::mem::take(&mut first) {
            state.going();
        }
        bytes = call.await?;
        check_echo(size, &bytes)?;
        state.answered();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls that take 1, 2, 3... ms, each numbered; the slice's first is untimed.
    struct Numbered {
        recorder: Recorder,
        made: u64,
    }

    impl TimedCalls for Numbered {
        async fn call(&mut self) -> anyhow::Result<Duration> {
            self.made += 1;
            Ok(Duration::from_millis(self.made))
        }

        fn recorder(&mut self) -> &mut Recorder {
            &mut self.recorder
        }

        fn calls_per_round(&self) -> Option<u64> {
            Some(3)
        }

        async fn before_slice(&mut self) -> anyhow::Result<()> {
            self.call().await.map(drop)
        }
    }

    #[tokio::test]
    async fn a_slice_makes_its_untimed_calls_first_and_records_only_the_timed_ones() {
        let recorder = Recorder::new().expect("a histogram");
        let mut run = Numbered { recorder, made: 0 };
        run.slice(Duration::from_secs(60)).await.expect("calls");
        assert_eq!(run.made, 4, "one untimed call, then the round's three");
        assert_eq!(run.recorder.round_calls(), 3);
        // The untimed call took 1 ms, the timed ones 2, 3 and 4 (the histogram keeps 3
        // significant digits of nanoseconds).
        let fastest = run.recorder.all().min();
        assert!((1_990_000..=2_000_000).contains(&fastest), "{fastest} ns");
    }
}
