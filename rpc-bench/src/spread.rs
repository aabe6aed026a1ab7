//! [`Spread`]: one figure measured in several rounds spread over a run, as its median and range.
//!
//! A figure from one stretch of time on a shared 2-core VM can be off by 2x (a burst of load
//! elsewhere, or the vCPUs halting between calls), so every point is measured once per round and
//! the rounds are spread over the whole run: each figure is the median of its rounds, shown with
//! the range they covered, and each target says in how many rounds it was met.

use serde::Serialize;

/// One figure's value in each round, with their median and range.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    /// The median of the rounds (the mean of the middle two for an even count).
    pub median: f64,
    /// The lowest round.
    pub min: f64,
    /// The highest round.
    pub max: f64,
    /// Each round's value, in the order measured.
    pub rounds: Vec<f64>,
}

impl Spread {
    /// The spread of `rounds`, in the order measured.
    pub fn new(rounds: Vec<f64>) -> Spread {
        Spread {
            median: median(rounds.iter().copied()),
            min: rounds.iter().copied().fold(f64::INFINITY, f64::min),
            max: rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            rounds,
        }
    }

    /// The range as the tables print it: `30.1-40.2`.
    pub fn range(&self, decimals: usize) -> String {
        format!("{:.decimals$}-{:.decimals$}", self.min, self.max)
    }
}

/// Which figure of a point: the median of its rounds, or one round's (the targets are judged on
/// the first and counted on each of the second).
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// The median of the rounds.
    Median,
    /// One round, by its index.
    Round(usize),
}

impl Spread {
    /// The figure `pick` chooses; `None` for a round that was not measured.
    pub fn pick(&self, pick: Pick) -> Option<f64> {
        match pick {
            Pick::Median => Some(self.median),
            Pick::Round(i) => self.rounds.get(i).copied(),
        }
    }
}

/// The median; the mean of the middle two for an even count, NaN for none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_of_odd_counts_and_the_mean_of_the_middle_two_of_even_ones() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn a_spread_keeps_the_rounds_in_order_with_their_median_and_range() {
        let spread = Spread::new(vec![30.0, 90.0, 31.0]);
        assert_eq!(spread.median, 31.0);
        assert_eq!((spread.min, spread.max), (30.0, 90.0));
        assert_eq!(spread.rounds, [30.0, 90.0, 31.0]);
        assert_eq!(spread.range(1), "30.0-90.0");
    }
}
