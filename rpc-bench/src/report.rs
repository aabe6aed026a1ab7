//! What a run reports: the tables on stdout, `results.json`, `report.svg`, and the targets.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

use crate::json_path::{self, JsonPath};
use crate::machine::Machine;
use crate::measure::{Implementation, Latency, Throughput, Transport};

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

/// One of the targets, checked on this run.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// What is promised.
    pub target: String,
    /// The figures this run measured: the medians of the rounds.
    pub measured: String,
    /// Whether it holds on the medians.
    pub met: bool,
    /// In how many rounds it held, each round's figures taken alone.
    pub rounds_met: usize,
    /// Rounds.
    pub rounds: usize,
}

/// Stock tarpc's two configurations, its default and its fastest here.
const STOCK: [Implementation; 2] = [Implementation::Tarpc, Implementation::TarpcCt];

/// The framework's two configurations, its default and single-threaded.
const OURS: [Implementation; 2] = [Implementation::Rpc, Implementation::RpcCt];

/// Which figure of a point: the median of its rounds, or one round's.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Median,
    Round(usize),
}

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

    fn p50_in(&self, pick: Pick, imp: Implementation, tr: Transport, p: usize) -> Option<f64> {
        let row = self
            .latency
            .iter()
            .find(|l| l.implementation == imp && l.transport == tr && l.payload == p)?;
        match pick {
            Pick::Median => Some(row.p50_us),
            Pick::Round(i) => row.p50_rounds.rounds.get(i).copied(),
        }
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

    fn rate_in(
        &self,
        pick: Pick,
        imp: Implementation,
        tr: Transport,
        p: usize,
        k: usize,
        c: usize,
    ) -> Option<f64> {
        let row = self.throughput_row(imp, tr, p, k, c)?;
        match pick {
            Pick::Median => Some(row.calls_per_sec),
            Pick::Round(i) => row.rounds.rounds.get(i).copied(),
        }
    }

    /// The faster of two configurations (`STOCK` or `OURS`) at a latency point: the lower p50,
    /// with which one it was.
    fn fastest_p50(
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
    fn fastest_rate(
        &self,
        pick: Pick,
        of: [Implementation; 2],
        (tr, p, k, c): (Transport, usize, usize, usize),
    ) -> Option<(f64, Implementation)> {
        of.into_iter()
            .filter_map(|imp| self.rate_in(pick, imp, tr, p, k, c).map(|v| (v, imp)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Checks the targets on the medians of this run's rounds, and counts the
    /// rounds in which each held on that round's figures alone.
    pub fn check_targets(&mut self) {
        let rounds = self.settings.rounds as usize;
        let mut checks = self.targets_in(Pick::Median);
        for round in 0..rounds {
            for (check, in_round) in checks.iter_mut().zip(self.targets_in(Pick::Round(round))) {
                check.rounds_met += usize::from(in_round.met);
            }
        }
        for check in &mut checks {
            check.rounds = rounds;
        }
        self.targets = checks;
    }

    /// The targets, judged on the figures `pick` chooses.
    fn targets_in(&self, pick: Pick) -> Vec<TargetCheck> {
        use Implementation::*;
        use Transport::*;
        let p50 = |imp, tr, p| self.p50_in(pick, imp, tr, p);
        let rate = |imp, tr, p, k, c| self.rate_in(pick, imp, tr, p, k, c);
        let check = |target: String, measured: String, met: bool| TargetCheck {
            target,
            measured,
            met,
            rounds_met: 0,
            rounds: 0,
        };
        let mut checks = Vec::new();
        let mut losses = Vec::new();
        for &p in &self.settings.payloads {
            if let (Some(u), Some(t)) = (p50(Rpc, Uds, p), p50(Rpc, Tcp, p)) {
                if u >= t {
                    losses.push(format!(
                        "p50 at {}: uds {u:.1} us vs tcp {t:.1} us",
                        size_label(p)
                    ));
                }
            }
            for &k in &self.settings.in_flight {
                for &c in &self.settings.connections {
                    if let (Some(u), Some(t)) = (rate(Rpc, Uds, p, k, c), rate(Rpc, Tcp, p, k, c)) {
                        if u <= t {
                            losses.push(format!(
                                "throughput at {} x{k} on {c} conn: uds {u:.0}/s vs tcp {t:.0}/s",
                                size_label(p)
                            ));
                        }
                    }
                }
            }
        }
        checks.push(check(
            "1. rpc over UDS beats TCP at every payload, in p50 latency and throughput".into(),
            if losses.is_empty() {
                "UDS ahead everywhere".into()
            } else {
                losses.join("; ")
            },
            losses.is_empty(),
        ));
        let ratio_check = |name: &str, payload: usize, limit: f64| {
            let target = format!("{name} UDS p50 at most {limit}x raw UDS");
            match (p50(Rpc, Uds, payload), p50(Raw, Uds, payload)) {
                (Some(rpc), Some(raw)) => check(
                    target,
                    format!("{:.2}x ({rpc:.1} us vs {raw:.1} us)", rpc / raw),
                    rpc / raw <= limit,
                ),
                _ => check(target, "not measured in this run".into(), false),
            }
        };
        checks.push(ratio_check("2. 64 B", 64, 1.3));
        checks.push(ratio_check("3. 1 MiB", 1 << 20, 1.5));
        let target = "4. 64 B, 64 in flight, one UDS connection: the framework's faster configuration at least 1.5x stock tarpc's";
        let point = (Uds, 64, 64, 1);
        checks.push(
            match (
                self.fastest_rate(pick, OURS, point),
                self.fastest_rate(pick, STOCK, point),
            ) {
                (Some((rpc, ours)), Some((stock, which))) => check(
                    target.into(),
                    format!(
                        "{:.2}x ({} {rpc:.0}/s vs {} {stock:.0}/s)",
                        rpc / stock,
                        ours.name(),
                        which.name()
                    ),
                    rpc / stock >= 1.5,
                ),
                _ => check(target.into(), "not measured in this run".into(), false),
            },
        );
        let target =
            "5. 64 B UDS p50, the framework's faster configuration no slower than stock tarpc's";
        checks.push(
            match (
                self.fastest_p50(pick, OURS, Uds, 64),
                self.fastest_p50(pick, STOCK, Uds, 64),
            ) {
                (Some((rpc, ours)), Some((stock, which))) => check(
                    target.into(),
                    format!(
                        "{:.2}x ({} {rpc:.1} us vs {} {stock:.1} us)",
                        rpc / stock,
                        ours.name(),
                        which.name()
                    ),
                    rpc <= stock,
                ),
                _ => check(target.into(), "not measured in this run".into(), false),
            },
        );
        checks
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spread::Spread;

    fn latency(implementation: Implementation, rounds: Vec<f64>) -> Latency {
        let p50_rounds = Spread::new(rounds);
        Latency {
            implementation,
            transport: Transport::Uds,
            payload: 64,
            samples: 1,
            p50_us: p50_rounds.median,
            p50_rounds,
            p90_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
        }
    }

    #[test]
    fn a_target_is_judged_on_the_medians_and_counted_round_by_round() {
        // rpc/raw per round: 1.2, 1.5 (a slow round for rpc alone), 1.25: met on the medians
        // (25 / 20 = 1.25), and in two rounds of three.
        let mut report = Report {
            machine: Machine::detect(),
            settings: Settings {
                payloads: vec![64],
                in_flight: Vec::new(),
                connections: Vec::new(),
                seconds_per_point: 1.0,
                rounds: 3,
                quick: false,
                socket_buffer: 0,
                rpc_server: String::new(),
                compared_server: None,
            },
            latency: vec![
                latency(Implementation::Rpc, vec![24.0, 30.0, 25.0]),
                latency(Implementation::Raw, vec![20.0, 20.0, 20.0]),
            ],
            json_path: Vec::new(),
            throughput: Vec::new(),
            targets: Vec::new(),
        };
        report.check_targets();
        let target = report
            .targets
            .iter()
            .find(|t| t.target.starts_with("2. 64 B"))
            .expect("the 64 B target is checked");
        assert!(target.met, "{target:?}");
        assert_eq!((target.rounds_met, target.rounds), (2, 3), "{target:?}");
        assert!(report.to_text().contains("(met in 2 of 3 rounds)"));
    }
}
