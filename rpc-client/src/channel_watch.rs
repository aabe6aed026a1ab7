//! A [`Channel`](super::Channel)'s watcher: the task that looks in on its connection every
//! [`WATCH_INTERVAL`], in case no caller does.

use std::sync::Weak;
use std::task::{Context, Waker};

use rpc_core::wire::MessageSeed;
use serde::Serialize;

use super::{Shared, State, WATCH_INTERVAL, timer_due};

/// A connection's watcher: a backstop for callers that do not poll their calls.
///
/// A call registered with the socket is woken when answers arrive; if its task does not poll it
/// promptly (a future polled once and then left aside, or a `buffered` stream whose consumer is
/// busy), the answers of the other calls wait with it. The same goes for a stream's consumer
/// busy with an item. Every [`WATCH_INTERVAL`] while calls wait or streams are open (see
/// [`State::needs_a_look`]), the watcher writes what is queued, reads what has arrived and wakes
/// the callers, and wakes the streams that gave way to a call's answer its caller has not taken
/// yet, so such a stall lasts at most about half a second instead of until the calls'
/// deadlines. It also tells calls whose deadline draws near to arm their timer (see
/// [`timer_due`]), and its own timer keeps tokio's timer wheel armed, which spares a call that
/// arms one an `eventfd` write and an extra `epoll_wait`. It ends soon after the last clone of
/// the channel is dropped or the connection breaks.
pub(super) async fn watch<Req, Resp, D>(shared: Weak<Shared<Req, Resp, D>>)
where
    Req: Serialize,
    D: MessageSeed<Resp>,
{
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + WATCH_INTERVAL, WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        if state.broken.is_some() {
            return;
        }
        if state.needs_a_look() {
            state.drive(&mut Context::from_waker(Waker::noop()), None);
            // The drive above took the socket's registration: give it back to a caller.
            state.hand_off();
            // A stream that gave way to a call's answer the caller has not taken yet (its task
            // is busy or gone) waits no longer than this.
            state.resume_streams();
            let now = rpc_core::timers::now();
            for slot in state.calls.values_mut() {
                if !slot.timer_due && timer_due(slot.deadline, now) {
                    slot.timer_due = true;
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                }
            }
        }
    }
}

impl<Req, Resp, D> State<Req, Resp, D> {
    /// Whether answers may wait for the watcher: while calls wait, or streams are open, except
    /// for one stream alone whose consumer is the task the socket wakes (with nothing left to
    /// write). Every answer that can arrive is then that stream's, and a hang-up wakes its
    /// consumer too, so nothing is stranded; and a watch idle for hours is woken when something
    /// happens, not twice a second by a look that finds nothing.
    fn needs_a_look(&self) -> bool {
        if !self.calls.is_empty() {
            return true;
        }
        let lone_reader = self.streams.len() == 1
            && self.reader.is_some_and(|id| self.streams.contains_key(&id))
            && !self.transport.has_unsent();
        !self.streams.is_empty() && !lone_reader
    }
}
