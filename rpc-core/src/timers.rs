//! [`keep_timers_warm`]: removes a per-call wake-up that tarpc's deadline timers cost on tokio.

use std::time::Duration;

/// How often the warm timer fires: well before tarpc's default 10 s deadline.
pub const TICK: Duration = Duration::from_millis(500);

/// Keeps a timer pending that fires sooner than any call's deadline; never returns.
///
/// tarpc arms a timer for every call's deadline, on the client and on the server. When no
/// earlier timer is pending, tokio must wake its I/O driver to re-arm (an `eventfd` write and an
/// extra `epoll_wait` per call, a large share of a small call's cost on a Unix socket). With this
/// tick pending, deadlines land behind it and arming them costs nothing. Run it beside the code
/// that drives a connection, e.g. in a `select!` with it.
pub async fn keep_timers_warm() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}
