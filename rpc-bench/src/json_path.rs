//! The JSON path: what a sequential echo costs when called with JSON through
//! `rpc_client::JsonClient` (what `rpc-client call` uses, and what bindings for other languages
//! build on), beside the same echo called with the compiled `EchoClient`, against the same
//! server over the same kind of socket, in the same alternating rounds.
//!
//! Timed per call, as a user pays it: `JsonClient::call` from its start to its answer as a
//! `serde_json::Value`, that is checking the arguments against the schema and turning them into
//! the request (JSON to wire), the call, and reading the response into JSON (wire to JSON). Not
//! timed: building the arguments' `Value` from the bytes, done once before the first call (the
//! typed run likewise builds its `ByteBuf` once), and dropping the answer. The typed call is
//! timed the same way, from `echo(...)` to its `ByteBuf`.
//!
//! Both runs keep each round's percentiles; the row gives the median over the rounds of each
//! figure, and the ratio as the median of the rounds' ratios, so that a burst of load from
//! elsewhere, which lands on both runs of a round, cancels out of the ratio.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rpc_client::JsonClient;
use rpc_core::services::echo;
use serde::Serialize;
use serde_json::Value;

use crate::measure::{LatencyRun, Recorder, RoundLatency, TimedCalls, WARMUP_CALLS};
use crate::report::size_label;
use crate::spread::median;
use crate::subject::{Subject, Transport};

/// The largest payload the JSON path is measured at: 4 KiB. In JSON each byte is an array item,
/// a `serde_json::Value` of its own on both ways, so the path's cost grows with every byte; it is
/// meant for small calls (`rpc-client call`), not for the large payloads the typed path is tuned
/// for.
pub const MAX_PAYLOAD: usize = 4 << 10;

/// What each call's time includes, written beside the figures.
const TIMED: &str = "JsonClient::call: JSON args -> wire, call, wire -> serde_json::Value; \
                     building the args Value from the bytes is out (done once), as is dropping \
                     the answer";

/// Sequential JSON echoes at one payload size, timed round by round.
pub struct JsonPathRun {
    /// How `client` was connected, for [`TimedCalls::renew`].
    connector: rpc_client::Connector,
    client: JsonClient,
    /// `{"bytes": [0, 1, 2, ...]}`, the same bytes the typed run sends, built once.
    args: Value,
    recorder: Recorder,
}

impl JsonPathRun {
    /// Reads the echo service's schema from the server's `introspect` service, connects with it
    /// (as `rpc-client call` does), and makes [`WARMUP_CALLS`] untimed calls.
    pub async fn start(subject: &Subject, size: usize) -> anyhow::Result<Self> {
        let connector = subject.connector(size)?;
        let client = JsonClient::connect(&connector, echo::NAME).await?;
        let bytes: Vec<Value> = (0..size).map(|i| Value::from(i as u8)).collect();
        let mut run = JsonPathRun {
            connector,
            client,
            args: serde_json::json!({ "bytes": bytes }),
            recorder: Recorder::new()?,
        };
        run.warm_up().await?;
        Ok(run)
    }

    /// The untimed calls a fresh connection makes first.
    async fn warm_up(&mut self) -> anyhow::Result<()> {
        for _ in 0..WARMUP_CALLS {
            self.call().await?;
        }
        Ok(())
    }

    /// The row: this run beside `typed`, the compiled client's run against the same server at
    /// the same payload, measured in the same rounds.
    pub fn finish(&self, typed: &LatencyRun) -> JsonPath {
        JsonPath::from_rounds(
            typed.subject().transport,
            typed.size(),
            self.recorder.rounds(),
            typed.rounds(),
        )
    }
}

impl TimedCalls for JsonPathRun {
    /// One echo with JSON; returns how long it took.
    async fn call(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let answer = self
            .client
            .call(tarpc::context::current(), "echo", &self.args)
            .await?;
        let elapsed = start.elapsed();
        anyhow::ensure!(
            answer == self.args["bytes"],
            "the JSON echo answered other bytes than it was sent"
        );
        Ok(elapsed)
    }

    fn recorder(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    async fn renew(&mut self) -> anyhow::Result<()> {
        self.client = JsonClient::connect(&self.connector, echo::NAME).await?;
        self.warm_up().await
    }
}

/// The JSON path beside the typed call at one payload: medians over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct JsonPath {
    /// Transport of both runs.
    pub transport: Transport,
    /// Payload bytes each way.
    pub payload: usize,
    /// Rounds the medians are taken over.
    pub rounds: usize,
    /// What a call's time includes.
    pub timed: &'static str,
    /// JSON path p50, median over the rounds.
    pub json_p50_us: f64,
    /// Typed call p50, median over the same rounds.
    pub typed_p50_us: f64,
    /// JSON p50 / typed p50, median of the rounds' ratios.
    pub p50_ratio: f64,
    /// JSON p50 minus typed p50, median over the rounds: what the JSON path adds to a call.
    pub added_p50_us: f64,
    /// JSON path p99, median over the rounds.
    pub json_p99_us: f64,
    /// Typed call p99, median over the same rounds.
    pub typed_p99_us: f64,
    /// JSON p99 / typed p99, median of the rounds' ratios.
    pub p99_ratio: f64,
    /// Each round of the JSON path.
    pub json_rounds: Vec<RoundLatency>,
    /// Each round of the typed call.
    pub typed_rounds: Vec<RoundLatency>,
}

impl JsonPath {
    /// The row from the two runs' rounds, paired in order.
    fn from_rounds(
        transport: Transport,
        payload: usize,
        json: &[RoundLatency],
        typed: &[RoundLatency],
    ) -> JsonPath {
        let pairs = || json.iter().zip(typed);
        JsonPath {
            transport,
            payload,
            rounds: pairs().count(),
            timed: TIMED,
            json_p50_us: median(pairs().map(|(j, _)| j.p50_us)),
            typed_p50_us: median(pairs().map(|(_, t)| t.p50_us)),
            p50_ratio: median(pairs().map(|(j, t)| j.p50_us / t.p50_us)),
            added_p50_us: median(pairs().map(|(j, t)| j.p50_us - t.p50_us)),
            json_p99_us: median(pairs().map(|(j, _)| j.p99_us)),
            typed_p99_us: median(pairs().map(|(_, t)| t.p99_us)),
            p99_ratio: median(pairs().map(|(j, t)| j.p99_us / t.p99_us)),
            json_rounds: json.to_vec(),
            typed_rounds: typed.to_vec(),
        }
    }
}

/// The row, one line per payload, as printed on stdout beside the typed latency table.
pub fn write_text(rows: &[JsonPath], out: &mut String) {
    let Some(first) = rows.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\nrpc (JSON path) vs typed call, sequential, us, median over {} rounds (json/typed: \
         median of the rounds' ratios)\n  timed: {}",
        first.rounds, first.timed
    );
    let _ = writeln!(
        out,
        "{:>22} {:>8} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>7}  p50 ratio per round",
        "", "payload", "json p50", "typed p50", "ratio", "+us", "json p99", "typed p99", "ratio"
    );
    for row in rows {
        let per_round: Vec<String> = row
            .json_rounds
            .iter()
            .zip(&row.typed_rounds)
            .map(|(j, t)| format!("{:.2}", j.p50_us / t.p50_us))
            .collect();
        let _ = writeln!(
            out,
            "{:>22} {:>8} {:>9.1} {:>9.1} {:>7.2} {:>7.1} {:>9.1} {:>9.1} {:>7.2}  {}",
            format!("rpc (JSON path), {}", row.transport.name()),
            size_label(row.payload),
            row.json_p50_us,
            row.typed_p50_us,
            row.p50_ratio,
            row.added_p50_us,
            row.json_p99_us,
            row.typed_p99_us,
            row.p99_ratio,
            per_round.join(" ")
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

    #[test]
    fn ratio_is_the_median_of_the_rounds_ratios_so_a_slow_round_on_both_cancels_out() {
        // Round 3 was slowed down 3x for both runs by load from elsewhere.
        let json = [round(30.0, 60.0), round(31.0, 62.0), round(90.0, 180.0)];
        let typed = [round(20.0, 40.0), round(20.0, 40.0), round(60.0, 120.0)];
        let row = JsonPath::from_rounds(Transport::Uds, 64, &json, &typed);
        assert_eq!(row.rounds, 3);
        assert_eq!(row.json_p50_us, 31.0);
        assert_eq!(row.typed_p50_us, 20.0);
        assert_eq!(row.p50_ratio, 1.5);
        assert_eq!(row.p99_ratio, 1.5);
        assert_eq!(row.added_p50_us, 11.0);
    }

    #[test]
    fn text_row_names_the_json_path_and_its_payload() {
        let json = [round(30.0, 60.0)];
        let typed = [round(20.0, 40.0)];
        let rows = [JsonPath::from_rounds(Transport::Uds, 64, &json, &typed)];
        let mut out = String::new();
        write_text(&rows, &mut out);
        let row = out.lines().last().expect("a row");
        assert!(row.contains("rpc (JSON path), uds"), "{row}");
        assert!(row.contains("64 B"), "{row}");
        assert!(row.contains("1.50"), "{row}");
    }
}
