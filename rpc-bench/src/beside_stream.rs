//! Calls beside a saturating stream: what a stream pushing as fast as credit allows costs the
//! ordinary calls made on the same connection. A server that queued a call's answer behind a
//! window of stream items, or read requests only between long bursts, would show here.
//!
//! One connection per subject, kept from round to round (as the latency runs keep theirs). In
//! each round, back to back on it: sequential 64 B `echo.echo` calls alone for the round's time,
//! then the same calls, from a clone of the same client, while another task takes a 64 B
//! `echo.stream(64, None)` as fast as it comes. So the two figures of a round are seconds apart,
//! and the ratio is the median of the rounds' ratios (a burst of load from elsewhere lands on
//! both halves of a round and cancels out of it, as in `json_path.rs`).
//!
//! The calls beside the stream start once its first item has arrived, and end before it is
//! cancelled; a few untimed calls after the cancel take up the stream's answers still on their
//! way, so the next round's calls alone do not pay for them.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use rpc_client::Client;
use rpc_core::StreamEvent;
use rpc_core::services::echo::EchoClient;
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::measure::{self, Recorder, RoundLatency, TimedCalls, WARMUP_CALLS};
use crate::spread::Spread;
use crate::subject::{Implementation, Subject, Transport};

/// Bytes each way of the calls timed.
pub const CALL_PAYLOAD: usize = 64;
/// Bytes of each item of the stream beside them.
pub const STREAM_ITEM: usize = 64;

/// What the row compares, written beside the figures.
const TIMED: &str = "sequential 64 B echo.echo calls on one connection, alone and then beside \
                     echo.stream(64, None) taken as fast as it comes on the same connection (a \
                     clone of the client), back to back in each round";

/// One subject's calls, alone and beside a stream, round by round.
pub struct BesideStreamRun {
    subject: Subject,
    client: Client<EchoClient>,
    /// The payload, sent and echoed back call after call.
    bytes: ByteBuf,
    alone: Recorder,
    beside: Recorder,
    /// Whether a stream runs now, so the calls' times go to `beside`.
    streaming: bool,
    /// The stream's items per second while the calls were made beside it, per round.
    stream_rates: Vec<f64>,
}

impl BesideStreamRun {
    /// Opens the connection (its streams open with `window` bytes of credit, `None` for the
    /// client's default) and makes [`WARMUP_CALLS`] untimed calls on it.
    pub async fn start(subject: &Subject, window: Option<u64>) -> anyhow::Result<Self> {
        let mut run = BesideStreamRun {
            subject: subject.clone(),
            client: subject.connect_rpc(CALL_PAYLOAD, window).await?,
            bytes: measure::payload(CALL_PAYLOAD),
            alone: Recorder::new()?,
            beside: Recorder::new()?,
            streaming: false,
            stream_rates: Vec::new(),
        };
        run.untimed_calls().await?;
        Ok(run)
    }

    async fn untimed_calls(&mut self) -> anyhow::Result<()> {
        for _ in 0..WARMUP_CALLS {
            self.call().await?;
        }
        Ok(())
    }

    /// One round: calls alone for `duration`, then calls beside a stream for `duration`.
    pub async fn round_pair(&mut self, duration: Duration) -> anyhow::Result<()> {
        self.round(duration).await?;

        let mut stream = self
            .client
            .stream(tarpc::context::current(), STREAM_ITEM as u64, None)
            .await
            .context("cannot open echo.stream")?;
        let taken = Arc::new(AtomicU64::new(0));
        let (first, flowing) = tokio::sync::oneshot::channel();
        let counter = taken.clone();
        // On the runtime the calls run on: a worker of the bench's runtime, or the subject's
        // dedicated current-thread runtime, where the two tasks take turns on one thread.
        let consumer = tokio::spawn(async move {
            let mut first = Some(first);
            while let Some(event) = stream.next().await {
                match event.context("echo.stream failed")? {
                    StreamEvent::Item(_) => {}
                    other => anyhow::bail!("echo.stream sent {other:?}, not an item"),
                }
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            }
            Err::<(), _>(anyhow::anyhow!(
                "echo.stream ended, though it was asked for endless items"
            ))
        });
        if flowing.await.is_err() {
            // The consumer ended before its first item: its error says why.
            return Err(match consumer.await {
                Ok(Err(err)) => err,
                _ => anyhow::anyhow!("the stream's consumer ended before its first item"),
            });
        }

        self.streaming = true;
        let (start, before) = (Instant::now(), taken.load(Ordering::Relaxed));
        let calls = self.round(duration).await;
        let (seconds, after) = (start.elapsed().as_secs_f64(), taken.load(Ordering::Relaxed));
        self.streaming = false;
        consumer.abort();
        // Cancelled as asked, or ended on its own first: then its error says why.
        if let Ok(Err(err)) = consumer.await {
            return Err(err.context("the stream beside the calls"));
        }
        calls?;
        self.stream_rates.push((after - before) as f64 / seconds);
        self.untimed_calls().await
    }

    /// The row: each round's percentiles alone and beside the stream.
    pub fn finish(&self) -> BesideStream {
        BesideStream::from_rounds(
            &self.subject,
            (self.alone.all().len(), self.beside.all().len()),
            self.alone.rounds(),
            self.beside.rounds(),
            self.stream_rates.clone(),
        )
    }
}

impl TimedCalls for BesideStreamRun {
    /// One echo; returns how long it took.
    async fn call(&mut self) -> anyhow::Result<Duration> {
        let bytes = std::mem::take(&mut self.bytes);
        let start = Instant::now();
        let bytes = self.client.echo(tarpc::context::current(), bytes).await?;
        let elapsed = start.elapsed();
        measure::check_echo(CALL_PAYLOAD, &bytes)?;
        self.bytes = bytes;
        Ok(elapsed)
    }

    fn recorder(&mut self) -> &mut Recorder {
        if self.streaming {
            &mut self.beside
        } else {
            &mut self.alone
        }
    }
}

/// Calls alone and beside a stream, on one subject: each figure over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct BesideStream {
    /// Implementation.
    pub implementation: Implementation,
    /// Transport.
    pub transport: Transport,
    /// Bytes each way of the calls timed.
    pub payload: usize,
    /// Bytes of each item of the stream beside them.
    pub stream_item: usize,
    /// What was timed.
    pub timed: &'static str,
    /// Calls timed alone, all rounds together.
    pub calls_alone: u64,
    /// Calls timed beside the stream, all rounds together.
    pub calls_beside: u64,
    /// Each round's p50 of the calls alone.
    pub alone_p50_us: Spread,
    /// Each round's p50 of the calls beside the stream.
    pub beside_p50_us: Spread,
    /// Each round's p50 beside / p50 alone; the median is the row's ratio.
    pub p50_ratio: Spread,
    /// Each round's p99 of the calls alone.
    pub alone_p99_us: Spread,
    /// Each round's p99 of the calls beside the stream.
    pub beside_p99_us: Spread,
    /// Each round's p99 beside / p99 alone.
    pub p99_ratio: Spread,
    /// The stream's items per second while the calls were made beside it, each round.
    pub stream_items_per_sec: Spread,
}

impl BesideStream {
    /// The row from the rounds of the calls `alone` and `beside` the stream, paired in order,
    /// and the stream's rate in each round; `calls` counts the calls timed alone and beside.
    fn from_rounds(
        subject: &Subject,
        (calls_alone, calls_beside): (u64, u64),
        alone: &[RoundLatency],
        beside: &[RoundLatency],
        stream_rates: Vec<f64>,
    ) -> BesideStream {
        let spread = |figure: fn(&RoundLatency, &RoundLatency) -> f64| {
            Spread::new(
                alone
                    .iter()
                    .zip(beside)
                    .map(|(a, b)| figure(a, b))
                    .collect(),
            )
        };
        BesideStream {
            implementation: subject.implementation,
            transport: subject.transport,
            payload: CALL_PAYLOAD,
            stream_item: STREAM_ITEM,
            timed: TIMED,
            calls_alone,
            calls_beside,
            alone_p50_us: spread(|a, _| a.p50_us),
            beside_p50_us: spread(|_, b| b.p50_us),
            p50_ratio: spread(|a, b| b.p50_us / a.p50_us),
            alone_p99_us: spread(|a, _| a.p99_us),
            beside_p99_us: spread(|_, b| b.p99_us),
            p99_ratio: spread(|a, b| b.p99_us / a.p99_us),
            stream_items_per_sec: Spread::new(stream_rates),
        }
    }
}

/// The table, one line per subject.
pub fn write_text(rows: &[BesideStream], out: &mut String) {
    let Some(first) = rows.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\ncalls beside a saturating stream, us, median of {} rounds (ratio: beside/alone, the \
         median of the rounds' ratios [their range])\n  timed: {}",
        first.p50_ratio.rounds.len(),
        first.timed
    );
    let _ = writeln!(
        out,
        "{:>8} {:>4} {:>9} {:>10} {:>6} {:>13} {:>9} {:>10} {:>6} {:>15}",
        "",
        "",
        "alone p50",
        "beside p50",
        "ratio",
        "ratio range",
        "alone p99",
        "beside p99",
        "ratio",
        "stream items/s"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:>8} {:>4} {:>9.1} {:>10.1} {:>6.2} {:>13} {:>9.1} {:>10.1} {:>6.2} {:>15.0}",
            row.implementation.name(),
            row.transport.name(),
            row.alone_p50_us.median,
            row.beside_p50_us.median,
            row.p50_ratio.median,
            format!("[{}]", row.p50_ratio.range(2)),
            row.alone_p99_us.median,
            row.beside_p99_us.median,
            row.p99_ratio.median,
            row.stream_items_per_sec.median,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(p50_us: f64, p99_us: f64) -> RoundLatency {
        RoundLatency {
            samples: 100,
            p50_us,
            p99_us,
        }
    }

    fn subject() -> Subject {
        Subject {
            implementation: Implementation::Rpc,
            transport: Transport::Uds,
            endpoint: "unix:/tmp/bench.sock".parse().expect("an endpoint"),
            token: None,
            dedicated: None,
        }
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_ratios_so_a_slow_round_on_both_cancels_out() {
        // Round 2 was slowed down 3x, alone and beside, by load from elsewhere.
        let alone = [round(20.0, 40.0), round(60.0, 120.0), round(22.0, 40.0)];
        let beside = [round(25.0, 80.0), round(75.0, 240.0), round(33.0, 100.0)];
        let row =
            BesideStream::from_rounds(&subject(), (300, 250), &alone, &beside, vec![4e5, 1e5, 5e5]);
        assert_eq!(row.alone_p50_us.median, 22.0);
        assert_eq!(row.beside_p50_us.median, 33.0);
        assert_eq!(row.p50_ratio.median, 1.25);
        assert_eq!(row.p50_ratio.rounds, [1.25, 1.25, 1.5]);
        assert_eq!(row.p99_ratio.median, 2.0);
        assert_eq!(row.stream_items_per_sec.median, 4e5);
        let mut out = String::new();
        write_text(&[row], &mut out);
        let line = out.lines().last().expect("a row");
        assert!(line.contains("rpc  uds"), "{line}");
        assert!(line.contains("[1.25-1.50]"), "{line}");
    }
}
