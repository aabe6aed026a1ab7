//! [`keep_timers_warm`]: spares the wake-up tokio needs to arm a timer earlier than any pending.

use std::time::Duration;

/// How often the warm timer fires: well before tarpc's default 10 s deadline. The client's
/// connection watcher ticks alike, standing in for this timer on the client side.
pub const TICK: Duration = crate::limits::WATCH_INTERVAL;

/// Now, on tokio's clock: the one timers run on, which a test may pause. tarpc's deadlines are
/// `std` instants, which tokio's match while its clock runs; comparing them with this keeps a
/// deadline check in step with the timer that triggered it.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Keeps a timer pending that fires sooner than any call's deadline; never returns.
///
/// When no earlier timer is pending, tokio must wake its I/O driver to arm a new one (an
/// `eventfd` write and an extra `epoll_wait`). Neither side arms a timer per call any more (a
/// connection's server side keeps one for its earliest deadline, a client call arms one only
/// when its deadline is near), but those that remain land behind this tick and cost nothing to
/// arm. Run it beside the code that drives connections, e.g. in a `select!` with it.
pub async fn keep_timers_warm() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}
