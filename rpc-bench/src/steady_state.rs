//! [`SteadyState`]: the window a throughput point is timed over, opened only once every
//! load unit (an echo task, or a raw connection's pipeline) has its calls in flight, and closed
//! before the last answers drain.
//!
//! Timing from the spawn of the load to its last answer, as the bench did before, put the
//! making of every payload, the first calls on fresh connections and the drain at the end
//! (in-flight calls finishing with fewer and fewer behind them) into the figure. At 1 MiB with
//! 64 in flight on each of 4 connections that is 256 MiB of payloads made and 256 calls
//! drained in a round of 200 ms, most of the round, and the more so the faster the subject
//! (BENCHMARKS.md, "Throughput in the steady state").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How often [`SteadyState::time`] looks again when a window of `duration` saw no answer.
const NO_ANSWER_YET_POLL: Duration = Duration::from_millis(1);

/// Shared by the load units of one throughput point and the task timing them.
#[derive(Debug)]
pub struct SteadyState {
    /// Answers received so far, those before the window opened included.
    answers: AtomicU64,
    /// One permit per load unit that has its calls in flight.
    going: Semaphore,
    /// Set when the window has closed: units stop sending and wait for what is in flight.
    stop: AtomicBool,
}

/// What a window saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Answers that came while it was open.
    pub answers: u64,
    /// How long it was open, seconds.
    pub seconds: f64,
}

impl SteadyState {
    /// A point's shared state, before any unit has started.
    pub fn new() -> Arc<SteadyState> {
        Arc::new(SteadyState {
            answers: AtomicU64::new(0),
            going: Semaphore::new(0),
            stop: AtomicBool::new(false),
        })
    }

    /// A unit has sent every call it keeps in flight (its payload made, its connection open):
    /// from now on it only waits for answers and sends again.
    pub fn going(&self) {
        self.going.add_permits(1);
    }

    /// One more answer.
    pub fn answered(&self) {
        self.answers.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether units should stop sending.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs the load unit `unit` makes, handing it this state, to its end, then tells the
    /// state so ([`SteadyState::unit_ended`]), whatever its result.
    pub async fn run_unit<T, Unit: Future<Output = T>>(
        self: Arc<Self>,
        unit: impl FnOnce(Arc<Self>) -> Unit,
    ) -> T {
        let ended = unit(self.clone()).await;
        self.unit_ended();
        ended
    }

    /// A unit has ended (its task returned, whatever the result): if the window has not
    /// closed, something failed, and [`SteadyState::time`] must not wait for it to get going.
    pub fn unit_ended(&self) {
        if !self.stopped() {
            self.going.close();
        }
    }

    /// Waits until all `units` are going, then counts the answers over `duration` (longer if
    /// none came in it, until the first or until a unit ends), and tells the units to stop.
    /// `None` when there are no units, or when one ended before the window opened: its task
    /// has the error.
    pub async fn time(&self, units: usize, duration: Duration) -> Option<Window> {
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let going = self.going.acquire_many(units).await;
        if units == 0 || going.is_err() {
            self.stop.store(true, Ordering::Relaxed);
            return None;
        }
        let (opened, before) = (Instant::now(), self.answers.load(Ordering::Relaxed));
        tokio::time::sleep(duration).await;
        let mut after = self.answers.load(Ordering::Relaxed);
        // A unit that ended (closing `going`) failed: its task has the error, and no answer may
        // ever come.
        while after == before && !self.going.is_closed() {
            tokio::time::sleep(NO_ANSWER_YET_POLL).await;
            after = self.answers.load(Ordering::Relaxed);
        }
        let seconds = opened.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        Some(Window {
            answers: after - before,
            seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit that takes `setting_up` to make its payload, then has an answer every `every`
    /// until stopped, run as the bench runs its units.
    fn unit(
        state: &Arc<SteadyState>,
        every: Duration,
        setting_up: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(state.clone().run_unit(move |state| async move {
            tokio::time::sleep(setting_up).await;
            state.going();
            while !state.stopped() {
                tokio::time::sleep(every).await;
                state.answered();
            }
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_opens_when_the_slowest_unit_is_going_and_counts_only_what_comes_in_it() {
        let state = SteadyState::new();
        // Two units answering every 10 ms; one takes 500 ms to get going, as 256 payloads of
        // 1 MiB being made would.
        let fast = unit(&state, Duration::from_millis(10), Duration::ZERO);
        let slow = unit(
            &state,
            Duration::from_millis(10),
            Duration::from_millis(500),
        );
        let window = state
            .time(2, Duration::from_millis(105))
            .await
            .expect("both going");
        fast.await.expect("unit");
        slow.await.expect("unit");
        assert!((window.seconds - 0.105).abs() < 0.001, "{window:?}");
        // Open from 500 to 605 ms: each unit's answers at 510, 520... 600 ms, and perhaps the
        // fast one's at 500 ms, which comes at the same instant as the window opens. Not the
        // fast unit's 50 while the slow one got going, nor anything after the window closed.
        assert!((20..=21).contains(&window.answers), "{window:?}");
        assert!(state.answers.load(Ordering::Relaxed) >= 70);
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_that_saw_no_answer_stays_open_until_the_first() {
        let state = SteadyState::new();
        let slow = unit(&state, Duration::from_millis(300), Duration::ZERO);
        let window = state
            .time(1, Duration::from_millis(100))
            .await
            .expect("going");
        slow.await.expect("unit");
        assert_eq!(window.answers, 1);
        assert!((window.seconds - 0.3).abs() < 0.005, "{window:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_without_answers_closes_when_a_unit_ends() {
        let state = SteadyState::new();
        // A unit whose connection breaks once it is going: no answer ever comes.
        let broken = tokio::spawn(state.clone().run_unit(|state| async move {
            state.going();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }));
        let window = state
            .time(1, Duration::from_millis(100))
            .await
            .expect("going");
        broken.await.expect("unit");
        assert_eq!(window.answers, 0);
        assert!((window.seconds - 0.3).abs() < 0.005, "{window:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_unit_that_ends_before_getting_going_stops_the_wait() {
        let state = SteadyState::new();
        let ok = unit(&state, Duration::from_millis(10), Duration::ZERO);
        // A unit whose first call failed: it ends before it is going.
        let failed = tokio::spawn(state.clone().run_unit(|_| async {}));
        assert_eq!(state.time(2, Duration::from_millis(100)).await, None);
        assert!(state.stopped());
        ok.await.expect("unit");
        failed.await.expect("unit");
    }
}
