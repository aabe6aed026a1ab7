//! Stream throughput: how many items a second one connection takes from a server that pushes
//! as fast as credit allows, the built-in `echo.stream(len, None)` (zero-filled items of `len`
//! bytes, endless), consumed by one task that only counts them.
//!
//! Each round opens a fresh connection and a fresh stream (as the throughput points open fresh
//! connections), so a round's figure includes the stream's start: its request, the opening
//! window's grant and the first items, a few tens of microseconds in a round of a fifth of a
//! second. The stream is dropped (cancelled) at the end of the round, and the connection
//! closed once the server has stopped sending, untimed.
//!
//! Only the framework's server streams: stock tarpc has no server push, and the raw echo no RPC
//! layer to push with, so neither has a figure here (see [`NOT_MEASURED`]).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use rpc_core::StreamEvent;
use serde::Serialize;

use crate::report::size_label;
use crate::spread::Spread;
use crate::subject::{Implementation, Subject, Transport};

/// Item sizes measured by default: the small item a change feed sends, and a large one that
/// fills a quarter of the default window.
pub const ITEM_SIZES: [usize; 2] = [64, 64 << 10];

/// Why some subjects have no stream figures, written beside them in the text and the JSON.
pub const NOT_MEASURED: &str = "rpc only: stock tarpc has no server push and the raw echo no RPC \
                                layer, so neither has stream figures; rpc-b (--compare-server) \
                                is not measured on streams, as its build may predate them, nor \
                                is rpc-shm (the lane), whose targets are about calls";

/// One subject's stream throughput at one item size, from its rounds.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRate {
    /// Implementation.
    pub implementation: Implementation,
    /// Transport.
    pub transport: Transport,
    /// Bytes of each item (its payload; the frame around it adds a few dozen).
    pub item: usize,
    /// Items taken, all rounds together.
    pub items: u64,
    /// Seconds from opening the stream to its last item taken, all rounds together.
    pub seconds: f64,
    /// Items per second: the median of the rounds' rates (see `rounds`).
    pub items_per_sec: f64,
    /// Item megabytes (10^6) per second at the median rate.
    pub mb_per_sec: f64,
    /// Each round's items per second, with their median and range.
    pub rounds: Spread,
}

impl StreamRate {
    /// The point's figures from its rounds, in the order measured (at least one).
    pub fn from_rounds(parts: &[StreamRate]) -> Option<StreamRate> {
        let first = parts.first()?;
        let rounds = Spread::new(parts.iter().map(|r| r.items_per_sec).collect());
        Some(StreamRate {
            items: parts.iter().map(|r| r.items).sum(),
            seconds: parts.iter().map(|r| r.seconds).sum(),
            items_per_sec: rounds.median,
            mb_per_sec: rounds.median * first.item as f64 / 1e6,
            rounds,
            ..first.clone()
        })
    }
}

/// One round: opens a connection and `echo.stream(item, None)` on it (with `window` bytes of
/// credit, `None` for the client's default), takes items as fast as they come for `duration`,
/// and counts them.
pub async fn stream_rate(
    subject: &Subject,
    item: usize,
    window: Option<u64>,
    duration: Duration,
) -> anyhow::Result<StreamRate> {
    let client = subject.connect_rpc(item, window).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut stream = client
        .stream(tarpc::context::current(), item as u64, None)
        .await
        .context("cannot open echo.stream")?;
    let mut items = 0u64;
    loop {
        let event = stream
            .next()
            .await
            .context("echo.stream ended, though it was asked for endless items")?
            .context("echo.stream failed")?;
        match event {
            StreamEvent::Item(bytes) => anyhow::ensure!(
                bytes.len() == item,
                "echo.stream sent an item of {} bytes, not {item}",
                bytes.len()
            ),
            other => anyhow::bail!("echo.stream sent {other:?}, not an item"),
        }
        items += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    // Cancels the stream. The ping's answer comes after the server has read the cancel and
    // after the items it sent before it (read and dropped on the way), so the connection closes
    // idle: closed while the server still wrote, it logs a warning for each round.
    drop(stream);
    client
        .ping(tarpc::context::current())
        .await
        .context("ping after cancelling echo.stream")?;
    let items_per_sec = items as f64 / seconds;
    Ok(StreamRate {
        implementation: subject.implementation,
        transport: subject.transport,
        item,
        items,
        seconds,
        items_per_sec,
        mb_per_sec: items_per_sec * item as f64 / 1e6,
        rounds: Spread::new(vec![items_per_sec]),
    })
}

/// The table, one line per implementation and item size, UDS beside TCP.
pub fn write_text(rows: &[StreamRate], window: u64, out: &mut String) {
    let Some(first) = rows.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\nstream throughput, one connection, echo.stream(len, None) taken as fast as it comes, \
         window {}: items/s, median of {} rounds [the rounds' range], MB/s at the median\n  ({NOT_MEASURED})",
        size_label(window as usize),
        first.rounds.rounds.len()
    );
    let _ = writeln!(
        out,
        "{:>8} {:>8} {:>10} {:>19} {:>8} {:>10} {:>19} {:>8} {:>8}",
        "", "item", "uds /s", "uds range", "uds MB/s", "tcp /s", "tcp range", "tcp MB/s", "uds/tcp"
    );
    let mut shown = Vec::new();
    for row in rows {
        let key = (row.implementation, row.item);
        if shown.contains(&key) {
            continue;
        }
        shown.push(key);
        let find = |transport| {
            rows.iter().find(|r| {
                r.implementation == row.implementation
                    && r.item == row.item
                    && r.transport == transport
            })
        };
        let (uds, tcp) = (find(Transport::Uds), find(Transport::Tcp));
        let cells = |r: Option<&StreamRate>| match r {
            Some(r) => (
                format!("{:.0}", r.items_per_sec),
                format!("[{}]", r.rounds.range(0)),
                format!("{:.1}", r.mb_per_sec),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let ((ur, ug, um), (tr, tg, tm)) = (cells(uds), cells(tcp));
        let ratio = match (uds, tcp) {
            (Some(u), Some(t)) => format!("{:.2}", u.items_per_sec / t.items_per_sec),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:>8} {:>8} {ur:>10} {ug:>19} {um:>8} {tr:>10} {tg:>19} {tm:>8} {ratio:>8}",
            row.implementation.name(),
            size_label(row.item),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(transport: Transport, items_per_sec: f64) -> StreamRate {
        StreamRate {
            implementation: Implementation::Rpc,
            transport,
            item: 64,
            items: items_per_sec as u64,
            seconds: 1.0,
            items_per_sec,
            mb_per_sec: items_per_sec * 64.0 / 1e6,
            rounds: Spread::new(vec![items_per_sec]),
        }
    }

    #[test]
    fn a_points_rate_is_the_median_of_its_rounds_and_its_bytes_follow_it() {
        let parts = [
            round(Transport::Uds, 500_000.0),
            round(Transport::Uds, 100_000.0),
            round(Transport::Uds, 600_000.0),
        ];
        let row = StreamRate::from_rounds(&parts).expect("rounds");
        assert_eq!(row.items_per_sec, 500_000.0);
        assert_eq!(row.mb_per_sec, 32.0);
        assert_eq!(row.items, 1_200_000);
        assert_eq!(row.seconds, 3.0);
        assert_eq!(row.rounds.rounds, [500_000.0, 100_000.0, 600_000.0]);
    }

    #[test]
    fn the_table_puts_uds_beside_tcp_with_their_ratio_and_says_who_has_no_streams() {
        let rows = [
            round(Transport::Uds, 600_000.0),
            round(Transport::Tcp, 400_000.0),
        ];
        let mut out = String::new();
        write_text(&rows, 256 << 10, &mut out);
        assert!(out.contains("stock tarpc has no server push"), "{out}");
        let row = out.lines().last().expect("a row");
        assert!(row.contains("600000") && row.contains("400000"), "{row}");
        assert!(row.trim_end().ends_with("1.50"), "{row}");
    }
}
