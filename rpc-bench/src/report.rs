//! What a run reports: the tables on stdout, `results.json` and `report.svg` (the targets they
//! list are checked in `targets.rs`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

use crate::json_path::{self, JsonPath};
use crate::machine::Machine;
use crate::measure::{Implementation, Latency, Throughput, Transport};
use crate::spread::Pick;
use crate::targets::TargetCheck;

/// Looks up one figure by implementation, transport and payload.
type Lookup<'a> = dyn Fn(Implementation, Transport, usize) -> Option<f64> + 'a;

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
    /// Kernel socket buffer the framework and the raw baseline set on Unix connections.
    pub socket_buffer: usize,
    /// The rpc server measured: started by the bench, or given with `--endpoint`.
    pub rpc_server: String,
    /// The other rpc-server build measured as `rpc-b` (`--compare-server`), if any.
    pub compared_server: Option<String>,
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
    /// The targets.
    pub targets: Vec<TargetCheck>,
}

/// A payload size as the tables show it: `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// A byte count on a log axis, whose ticks fall on powers of ten: `100 B`, `10 kB`, `1 MB`.
fn axis_bytes(bytes: f64) -> String {
    match bytes {
        b if b >= 1e6 => format!("{} MB", (b / 1e6).round()),
        b if b >= 1e3 => format!("{} kB", (b / 1e3).round()),
        b => format!("{} B", b.round()),
    }
}

impl Report {
    fn p50(&self, imp: Implementation, tr: Transport, payload: usize) -> Option<f64> {
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

    fn rate(
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
        use Implementation::*;
        use Transport::*;
        let mut out = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let _ = writeln!(
            out,
            "machine: {} ({} cores), {}, wmem_max {:?}",
            m.cpu, m.cores, m.kernel, m.wmem_max
        );
        let _ = writeln!(
            out,
            "settings: {:.2} s per point in {} rounds spread over the run{}, socket buffer {} B, rpc server {}",
            s.seconds_per_point,
            s.rounds,
            if s.quick { " (--quick)" } else { "" },
            s.socket_buffer,
            s.rpc_server
        );
        let (f, r) = (figure, ratio);
        let _ = writeln!(
            out,
            "\nsequential latency, p50 in us, median of the rounds (uds/tcp < 1: UDS faster; rpc/raw: framework overhead; rpc/tarpc: against stock tarpc's faster configuration over UDS)"
        );
        let _ = writeln!(
            out,
            "{:>8} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>8} {:>10} {:>12} {:>10}",
            "payload",
            "rpc uds",
            "rpc tcp",
            "uds/tcp",
            "rpc-ct uds",
            "raw uds",
            "raw tcp",
            "rpc/raw",
            "tarpc uds",
            "tarpc-ct uds",
            "rpc/tarpc"
        );
        for &p in &s.payloads {
            let (ru, rt) = (self.p50(Rpc, Uds, p), self.p50(Rpc, Tcp, p));
            let best = self
                .fastest_p50(Pick::Median, STOCK, Uds, p)
                .map(|(v, _)| v);
            let _ = writeln!(
                out,
                "{:>8} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>8} {:>10} {:>12} {:>10}",
                size_label(p),
                f(ru, 1),
                f(rt, 1),
                r(ru, rt),
                f(self.p50(RpcCt, Uds, p), 1),
                f(self.p50(Raw, Uds, p), 1),
                f(self.p50(Raw, Tcp, p), 1),
                r(ru, self.p50(Raw, Uds, p)),
                f(self.p50(Tarpc, Uds, p), 1),
                f(self.p50(TarpcCt, Uds, p), 1),
                r(ru, best),
            );
        }
        json_path::write_text(&self.json_path, &mut out);
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
        let _ = writeln!(
            out,
            "\nthroughput, calls/s, median of the rounds (uds/tcp > 1: UDS faster; rpc/raw and rpc/tarpc over UDS, against stock tarpc's faster configuration; ranges: the rounds' lowest and highest)"
        );
        let _ = writeln!(
            out,
            "{:>8} {:>5} {:>5} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>12} {:>9} {:>10} {:>15} {:>15}",
            "payload",
            "infl",
            "conns",
            "rpc uds",
            "rpc tcp",
            "uds/tcp",
            "raw uds",
            "rpc/raw",
            "tarpc uds",
            "tarpc-ct uds",
            "rpc/tarpc",
            "rpc MB/s",
            "rpc uds range",
            "rpc tcp range"
        );
        for &p in &s.payloads {
            for &c in &s.connections {
                for &k in &s.in_flight {
                    let (ru, rt) = (self.rate(Rpc, Uds, p, k, c), self.rate(Rpc, Tcp, p, k, c));
                    let raw = self.rate(Raw, Uds, p, k, c);
                    let best = self
                        .fastest_rate(Pick::Median, STOCK, (Uds, p, k, c))
                        .map(|(v, _)| v);
                    let range = |tr| {
                        self.throughput_row(Rpc, tr, p, k, c)
                            .map_or("-".to_owned(), |t| t.rounds.range(0))
                    };
                    let _ = writeln!(
                        out,
                        "{:>8} {:>5} {:>5} {:>10} {:>10} {:>8} {:>10} {:>8} {:>10} {:>12} {:>9} {:>10} {:>15} {:>15}",
                        size_label(p),
                        k,
                        c,
                        f(ru, 0),
                        f(rt, 0),
                        r(ru, rt),
                        f(raw, 0),
                        r(ru, raw),
                        f(self.rate(Tarpc, Uds, p, k, c), 0),
                        f(self.rate(TarpcCt, Uds, p, k, c), 0),
                        r(ru, best),
                        f(ru.map(|v| v * p as f64 / 1e6), 1),
                        range(Uds),
                        range(Tcp),
                    );
                }
            }
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
        out
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

    fn draw(&self, path: &Path) -> anyhow::Result<()> {
        use Implementation::*;
        use Transport::*;
        let root = SVGBackend::new(path, (1400, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(50);
        title.titled(
            &format!(
                "rpc-bench: UDS vs TCP loopback — {} ({} cores), {}",
                self.machine.cpu, self.machine.cores, self.machine.kernel
            ),
            ("sans-serif", 18),
        )?;
        let panels = body.split_evenly((1, 2));
        let series = [
            (Rpc, Uds, RGBColor(0, 90, 200), true),
            (Rpc, Tcp, RGBColor(0, 90, 200), false),
            (Raw, Uds, RGBColor(120, 120, 120), true),
            (Raw, Tcp, RGBColor(120, 120, 120), false),
            (Tarpc, Uds, RGBColor(220, 90, 0), true),
            (Tarpc, Tcp, RGBColor(220, 90, 0), false),
            (TarpcCt, Uds, RGBColor(150, 40, 160), true),
            (TarpcCt, Tcp, RGBColor(150, 40, 160), false),
        ];
        let payloads = &self.settings.payloads;
        let x_range = (payloads.first().copied().unwrap_or(64) as f64 / 1.5)
            ..(payloads.last().copied().unwrap_or(1 << 20) as f64 * 1.5);
        let k = *self.settings.in_flight.last().unwrap_or(&1);
        let panels_spec: [(&str, String, Box<Lookup<'_>>); 2] = [
            (
                "p50 latency (us, log)",
                "sequential p50 latency by payload".to_owned(),
                Box::new(|i, t, p| self.p50(i, t, p)),
            ),
            (
                "calls/s (log)",
                format!("throughput, {k} in flight on 1 connection"),
                Box::new(move |i, t, p| self.rate(i, t, p, k, 1)),
            ),
        ];
        for (area, (y_label, caption, value)) in panels.iter().zip(panels_spec.iter()) {
            let values: Vec<f64> = series
                .iter()
                .flat_map(|(i, t, _, _)| payloads.iter().filter_map(|&p| value(*i, *t, p)))
                .filter(|v| *v > 0.0)
                .collect();
            let lo = values
                .iter()
                .cloned()
                .fold(f64::INFINITY, f64::min)
                .min(1.0e9)
                / 1.5;
            let hi = values.iter().cloned().fold(0.0, f64::max).max(lo * 10.0) * 1.5;
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 16))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x_range.clone().log_scale(), (lo.max(1e-3)..hi).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("payload (bytes, log)")
                .y_desc(*y_label)
                .x_label_formatter(&|v| axis_bytes(*v))
                .draw()?;
            for (imp, tr, color, solid) in series {
                let points: Vec<(f64, f64)> = payloads
                    .iter()
                    .filter_map(|&p| value(imp, tr, p).map(|v| (p as f64, v)))
                    .collect();
                let style = ShapeStyle {
                    color: color.to_rgba(),
                    filled: solid,
                    stroke_width: if solid { 3 } else { 1 },
                };
                chart
                    .draw_series(LineSeries::new(points.clone(), style))?
                    .label(format!("{} {}", imp.name(), tr.name()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, style)))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        root.present()?;
        Ok(())
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
