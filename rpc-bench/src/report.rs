//! What a run reports: the tables on stdout, `results.json` and `report.svg` (the targets they
//! list are checked in `targets.rs`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::beside_stream::{self, BesideStream};
use crate::json_path::{self, JsonPath};
use crate::lane_check::LaneCheck;
use crate::large_payload;
use crate::machine::Machine;
use crate::measure::{Latency, Throughput};
use crate::spread::Pick;
use crate::stream_rate::{self, StreamRate};
use crate::subject::{Implementation, Transport};
use crate::targets::TargetCheck;

/// Every setting of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Payload sizes, bytes.
    pub payloads: Vec<usize>,
    /// Calls in flight per connection, for throughput.
    pub in_flight: Vec<usize>,
    /// Connection counts, for throughput.
    pub connections: Vec<usize>,
    /// Seconds per latency and per throughput point.
    pub seconds_per_point: f64,
    /// Rounds each point's time is split into, the subjects taking turns.
    pub rounds: u32,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Whether calls were measured (latency, the JSON path, throughput): not with
    /// `--only streams`.
    pub calls: bool,
    /// Whether streams were measured: not with `--only calls`.
    pub streams: bool,
    /// Item sizes of the stream throughput points, bytes.
    pub stream_items: Vec<usize>,
    /// The credit each stream opened with, bytes.
    pub stream_window: u64,
    /// Kernel socket buffer the framework and the raw baseline set on Unix connections.
    pub socket_buffer: usize,
    /// The shared-memory region rpc-shm offered for payloads up to 8 MiB, bytes (`--shm-size`).
    pub shm_size: u64,
    /// The rpc server measured: started by the bench, or given with `--endpoint`.
    pub rpc_server: String,
    /// The other rpc-server build measured as `rpc-b` (`--compare-server`), if any.
    pub compared_server: Option<String>,
    /// How the payloads above 8 MiB were measured (latency only, on fewer subjects), if the run
    /// had one (see `large_payload.rs`).
    pub large_payloads: Option<String>,
}

/// Stock tarpc's two configurations, its default and its fastest here.
pub(crate) const STOCK: [Implementation; 2] = [Implementation::Tarpc, Implementation::TarpcCt];

/// The framework's two configurations, its default and single-threaded.
pub(crate) const OURS: [Implementation; 2] = [Implementation::Rpc, Implementation::RpcCt];

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: Settings,
    /// Sequential latency rows.
    pub latency: Vec<Latency>,
    /// The JSON path beside the typed call, rpc over UDS, at the small payloads.
    pub json_path: Vec<JsonPath>,
    /// Throughput rows.
    pub throughput: Vec<Throughput>,
    /// Stream throughput rows, the framework's server only.
    pub stream_rate: Vec<StreamRate>,
    /// Calls beside a saturating stream, the framework's server only.
    pub beside_stream: Vec<BesideStream>,
    /// Why the other implementations have no stream rows (when streams were measured).
    pub streams_not_measured: Option<&'static str>,
    /// The targets.
    pub targets: Vec<TargetCheck>,
    /// Whether rpc-shm's calls went through the shared-memory lane.
    pub lane_check: Option<LaneCheck>,
}

/// A payload size as the tables show it: `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

impl Report {
    pub(crate) fn p50(&self, imp: Implementation, tr: Transport, payload: usize) -> Option<f64> {
        self.p50_in(Pick::Median, imp, tr, payload)
    }

    pub(crate) fn p50_in(
        &self,
        pick: Pick,
        imp: Implementation,
        tr: Transport,
        p: usize,
    ) -> Option<f64> {
        let row = self
            .latency
            .iter()
            .find(|l| l.implementation == imp && l.transport == tr && l.payload == p)?;
        row.p50_rounds.pick(pick)
    }

    pub(crate) fn rate(
        &self,
        imp: Implementation,
        tr: Transport,
        p: usize,
        k: usize,
        c: usize,
    ) -> Option<f64> {
        self.rate_in(Pick::Median, imp, tr, p, k, c)
    }

    fn throughput_row(
        &self,
        imp: Implementation,
        tr: Transport,
        p: usize,
        k: usize,
        c: usize,
    ) -> Option<&Throughput> {
        self.throughput.iter().find(|t| {
            t.implementation == imp
                && t.transport == tr
                && t.payload == p
                && t.in_flight == k
                && t.connections == c
        })
    }

    pub(crate) fn rate_in(
        &self,
        pick: Pick,
        imp: Implementation,
        tr: Transport,
        p: usize,
        k: usize,
        c: usize,
    ) -> Option<f64> {
        let row = self.throughput_row(imp, tr, p, k, c)?;
        row.rounds.pick(pick)
    }

    /// The faster of two configurations (`STOCK` or `OURS`) at a latency point: the lower p50,
    /// with which one it was.
    pub(crate) fn fastest_p50(
        &self,
        pick: Pick,
        of: [Implementation; 2],
        tr: Transport,
        p: usize,
    ) -> Option<(f64, Implementation)> {
        of.into_iter()
            .filter_map(|imp| self.p50_in(pick, imp, tr, p).map(|v| (v, imp)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The faster of two configurations at a throughput point: the higher rate, with which one
    /// it was.
    pub(crate) fn fastest_rate(
        &self,
        pick: Pick,
        of: [Implementation; 2],
        (tr, p, k, c): (Transport, usize, usize, usize),
    ) -> Option<(f64, Implementation)> {
        of.into_iter()
            .filter_map(|imp| self.rate_in(pick, imp, tr, p, k, c).map(|v| (v, imp)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The tables and targets, as printed on stdout.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let _ = writeln!(
            out,
            "machine: {} ({} cores), {}, wmem_max {:?}, rmem_max {:?}",
            m.cpu, m.cores, m.kernel, m.wmem_max, m.rmem_max
        );
        if m.caps_socket_buffers(s.socket_buffer) {
            let _ = writeln!(
                out,
                "note: the kernel caps socket buffers below the {} B the framework and the raw echo \
                 ask for (net.core.wmem_max, rmem_max): large payloads over Unix sockets ran with \
                 smaller ones; `{}` (as root) measures them as configured",
                s.socket_buffer,
                rpc_core::stream::raise_buffer_caps(s.socket_buffer)
            );
        }
        let _ = writeln!(
            out,
            "settings: {:.2} s per point in {} rounds spread over the run{}, socket buffer {} B, rpc-shm region {} B, rpc server {}",
            s.seconds_per_point,
            s.rounds,
            if s.quick { " (--quick)" } else { "" },
            s.socket_buffer,
            s.shm_size,
            s.rpc_server
        );
        if s.calls {
            self.write_calls(&mut out);
        }
        if s.streams {
            stream_rate::write_text(&self.stream_rate, s.stream_window, &mut out);
            beside_stream::write_text(&self.beside_stream, &mut out);
        }
        if let Some(compared) = &s.compared_server {
            self.write_comparison(&mut out, compared);
        }
        let _ = writeln!(
            out,
            "\ntargets, judged on the medians (and in how many rounds each held alone)"
        );
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  [{}] {}: {} (met in {} of {} rounds)",
                if t.met { "met" } else { "MISSED" },
                t.target,
                t.measured,
                t.rounds_met,
                t.rounds
            );
        }
        if let Some(lane) = &self.lane_check {
            let _ = writeln!(out, "\n{}", lane.describe());
        }
        out
    }

    /// The calls' tables: latency, the JSON path, throughput.
    fn write_calls(&self, out: &mut String) {
        use Implementation::*;
        use Transport::*;
        let s = &self.settings;
        let (f, r) = (figure, ratio);
        let _ = writeln!(
            out,
            "\nsequential latency, p50 in us, median of the rounds (rpc uds: the socket path, rpc-shm: the shared-memory lane over the same socket; uds/tcp < 1: UDS faster; shm/uds < 1: the lane faster; rpc/raw and shm/raw: framework overhead; rpc/tarpc: against stock tarpc's faster configuration over UDS)"
        );
        let _ = writeln!(
            out,
            "{:>8} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>12} {:>10}",
            "payload",
            "rpc uds",
            "rpc tcp",
            "uds/tcp",
            "rpc-shm",
            "shm/uds",
            "rpc-ct uds",
            "raw uds",
            "raw tcp",
            "rpc/raw",
            "shm/raw",
            "tarpc uds",
            "tarpc-ct uds",
            "rpc/tarpc"
        );
        for &p in &s.payloads {
            let (ru, rt) = (self.p50(Rpc, Uds, p), self.p50(Rpc, Tcp, p));
            let (shm, raw) = (self.p50(RpcShm, Uds, p), self.p50(Raw, Uds, p));
            let best = self
                .fastest_p50(Pick::Median, STOCK, Uds, p)
                .map(|(v, _)| v);
            let _ = writeln!(
                out,
                "{:>8} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>12} {:>10}",
                size_label(p),
                f(ru, 1),
                f(rt, 1),
                r(ru, rt),
                f(shm, 1),
                r(shm, ru),
                f(self.p50(RpcCt, Uds, p), 1),
                f(raw, 1),
                f(self.p50(Raw, Tcp, p), 1),
                r(ru, raw),
                r(shm, raw),
                f(self.p50(Tarpc, Uds, p), 1),
                f(self.p50(TarpcCt, Uds, p), 1),
                r(ru, best),
            );
        }
        if let Some(note) = &s.large_payloads {
            let _ = writeln!(out, "  ({note})");
        }
        json_path::write_text(&self.json_path, out);
        let _ = writeln!(
            out,
            "\nlatency in us: p50 median of the rounds [the rounds' range]; p90 / p99 / p99.9 / max of all calls"
        );
        for l in &self.latency {
            let _ = writeln!(
                out,
                "{:>8} {:>4} {:>8}  {:>9.1} {:>17} {:>9.1} {:>9.1} {:>9.1} {:>9.1}  ({} calls)",
                l.implementation.name(),
                l.transport.name(),
                size_label(l.payload),
                l.p50_us,
                format!("[{}]", l.p50_rounds.range(1)),
                l.p90_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                l.samples
            );
        }
        if s.payloads.iter().all(|&p| large_payload::is_large(p)) {
            return;
        }
        let _ = writeln!(
            out,
            "\nthroughput, calls/s, median of the rounds (rpc uds: the socket path, rpc-shm: the shared-memory lane; uds/tcp > 1: UDS faster; shm/uds > 1: the lane faster; rpc/raw and rpc/tarpc over UDS, against stock tarpc's faster configuration; ranges: the rounds' lowest and highest)"
        );
        let _ = writeln!(
            out,
            "{:>8} {:>5} {:>5} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>12} {:>9} {:>10} {:>10} {:>15} {:>15} {:>15}",
            "payload",
            "infl",
            "conns",
            "rpc uds",
            "rpc tcp",
            "uds/tcp",
            "rpc-shm",
            "shm/uds",
            "raw uds",
            "rpc/raw",
            "tarpc uds",
            "tarpc-ct uds",
            "rpc/tarpc",
            "rpc MB/s",
            "shm MB/s",
            "rpc uds range",
            "rpc tcp range",
            "rpc-shm range"
        );
        for &p in s.payloads.iter().filter(|&&p| !large_payload::is_large(p)) {
            for &c in &s.connections {
                for &k in &s.in_flight {
                    let (ru, rt) = (self.rate(Rpc, Uds, p, k, c), self.rate(Rpc, Tcp, p, k, c));
                    let shm = self.rate(RpcShm, Uds, p, k, c);
                    let raw = self.rate(Raw, Uds, p, k, c);
                    let best = self
                        .fastest_rate(Pick::Median, STOCK, (Uds, p, k, c))
                        .map(|(v, _)| v);
                    let range = |imp, tr| {
                        self.throughput_row(imp, tr, p, k, c)
                            .map_or("-".to_owned(), |t| t.rounds.range(0))
                    };
                    let mb = |rate: Option<f64>| f(rate.map(|v| v * p as f64 / 1e6), 1);
                    let _ = writeln!(
                        out,
                        "{:>8} {:>5} {:>5} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8} {:>10} {:>12} {:>9} {:>10} {:>10} {:>15} {:>15} {:>15}",
                        size_label(p),
                        k,
                        c,
                        f(ru, 0),
                        f(rt, 0),
                        r(ru, rt),
                        f(shm, 0),
                        r(shm, ru),
                        f(raw, 0),
                        r(ru, raw),
                        f(self.rate(Tarpc, Uds, p, k, c), 0),
                        f(self.rate(TarpcCt, Uds, p, k, c), 0),
                        r(ru, best),
                        mb(ru),
                        mb(shm),
                        range(Rpc, Uds),
                        range(Rpc, Tcp),
                        range(RpcShm, Uds),
                    );
                }
            }
        }
    }

    /// The A/B table: this build (`rpc`) against `--compare-server` (`rpc-b`), point by point.
    fn write_comparison(&self, out: &mut String, compared: &str) {
        use Implementation::*;
        let (f, r) = (figure, ratio);
        let _ = writeln!(
            out,
            "\nA/B: rpc (this build) vs rpc-b ({compared}), measured in the same rounds"
        );
        let _ = writeln!(
            out,
            "{:>8} {:>4} {:>14} {:>10} {:>10} {:>6}",
            "payload", "", "point", "rpc", "rpc-b", "rpc/b"
        );
        for &p in &self.settings.payloads {
            for tr in [Transport::Uds, Transport::Tcp] {
                let (a, b) = (self.p50(Rpc, tr, p), self.p50(RpcB, tr, p));
                let _ = writeln!(
                    out,
                    "{:>8} {:>4} {:>14} {:>10} {:>10} {:>6}",
                    size_label(p),
                    tr.name(),
                    "p50 us",
                    f(a, 1),
                    f(b, 1),
                    r(a, b)
                );
                if large_payload::is_large(p) {
                    continue;
                }
                for &c in &self.settings.connections {
                    for &k in &self.settings.in_flight {
                        let (a, b) = (self.rate(Rpc, tr, p, k, c), self.rate(RpcB, tr, p, k, c));
                        let _ = writeln!(
                            out,
                            "{:>8} {:>4} {:>14} {:>10} {:>10} {:>6}",
                            size_label(p),
                            tr.name(),
                            format!("x{k} on {c}, /s"),
                            f(a, 0),
                            f(b, 0),
                            r(a, b)
                        );
                    }
                }
            }
        }
    }

    /// Writes `results.json` and `report.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("results.json"), json)?;
        self.draw(&dir.join("report.svg"))
    }
}

/// A figure with `decimals` decimals, or `-` when it was not measured.
fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// `a / b` with two decimals, or `-` when either was not measured.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    }
}
