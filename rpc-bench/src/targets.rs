//! The targets: each checked on the medians of a run's rounds, and counted round by
//! round (in how many rounds it held on that round's figures alone), so a target met only
//! thanks to one lucky round shows as such.

use serde::Serialize;

use crate::measure::{Implementation, Transport};
use crate::report::{OURS, Report, STOCK, size_label};
use crate::spread::Pick;

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

impl Report {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::measure::Latency;
    use crate::report::Settings;
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
