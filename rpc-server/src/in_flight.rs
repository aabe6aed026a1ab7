//! [`InFlight`]: the calls one connection is running, so that a cancel or a passed deadline can
//! stop their handlers.
//!
//! tarpc's `BaseChannel` keeps the same table, but with a `DelayQueue` entry, a tracing span and
//! an OpenTelemetry context per call: a large share of a small call's cost (the README's "UDS vs
//! TCP loopback" has the measurements). Here a call costs one map entry, and the connection one
//! timer, armed at the earliest deadline: calls that share a timeout arrive with ever later
//! deadlines, so the timer is reset only when a call comes with a shorter one. The call loop
//! ([`crate::dispatch`]) starts, finishes and cancels calls here, and polls for passed deadlines.

use std::collections::hash_map::Entry;
use std::pin::Pin;
use std::task::Context;
use std::time::Instant;

use futures::future::{AbortHandle, AbortRegistration};
use rpc_core::IdMap;
use tokio::time::Sleep;

/// One call being handled.
struct Call {
    abort: AbortHandle,
    deadline: Instant,
}

/// The calls a connection is running, by request id.
#[derive(Default)]
pub(crate) struct InFlight {
    calls: IdMap<Call>,
    /// Fires no later than the earliest deadline in `calls`; `None` while no call is tracked
    /// since it last fired.
    timer: Option<Pin<Box<Sleep>>>,
    /// When `timer` fires.
    armed: Option<Instant>,
}

impl InFlight {
    /// Calls being handled.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.calls.len()
    }

    /// Starts tracking call `id`; the registration aborts its handler when the call is cancelled
    /// or its deadline passes. `None` if a call with that id is running already (tarpc ignores
    /// such a duplicate, and so does this server).
    pub(crate) fn start(&mut self, id: u64, deadline: Instant) -> Option<AbortRegistration> {
        let Entry::Vacant(vacant) = self.calls.entry(id) else {
            return None;
        };
        let (abort, registration) = AbortHandle::new_pair();
        vacant.insert(Call { abort, deadline });
        if self.armed.is_none_or(|armed| deadline < armed) {
            self.armed = Some(deadline);
            let at = tokio::time::Instant::from_std(deadline);
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        Some(registration)
    }

    /// Whether call `id` is being handled.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.calls.contains_key(&id)
    }

    /// Stops tracking call `id`, whose handler has finished.
    pub(crate) fn finish(&mut self, id: u64) {
        self.calls.remove(&id);
    }

    /// Aborts call `id`'s handler: the client cancelled it. Its answer is never sent.
    pub(crate) fn cancel(&mut self, id: u64) {
        if let Some(call) = self.calls.remove(&id) {
            call.abort.abort();
        }
    }

    /// Aborts the handlers of calls whose deadline has passed (their clients have stopped
    /// waiting) and re-arms the timer; returns whether any was aborted. Registers `cx` for the
    /// next deadline.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let mut expired = false;
        while let Some(timer) = &mut self.timer {
            if self.armed.is_none() || timer.as_mut().poll(cx).is_pending() {
                break;
            }
            let now = rpc_core::timers::now();
            let mut next: Option<Instant> = None;
            self.calls.retain(|_, call| {
                if call.deadline <= now {
                    call.abort.abort();
                    expired = true;
                    false
                } else {
                    next = Some(next.map_or(call.deadline, |n| n.min(call.deadline)));
                    true
                }
            });
            self.armed = next;
            match next {
                Some(at) => timer.as_mut().reset(tokio::time::Instant::from_std(at)),
                None => break,
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use std::task::Poll;

    use futures::future::Abortable;

    use super::*;

    // Deadlines are read on tokio's clock (`rpc_core::timers::now`), which these tests pause and
    // move: the sleeps below take no wall time.
    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_aborts_only_that_call_and_rearms_for_the_next() {
        let mut in_flight = InFlight::default();
        let now = rpc_core::timers::now();
        let short = in_flight
            .start(1, now + Duration::from_millis(100))
            .expect("a new id");
        let long = in_flight
            .start(2, now + Duration::from_secs(10))
            .expect("a new id");
        assert!(
            in_flight.start(2, now).is_none(),
            "a duplicate id is refused"
        );
        let short = Abortable::new(std::future::pending::<()>(), short);
        let long = Abortable::new(std::future::pending::<()>(), long);

        assert!(!poll_fn(|cx| Poll::Ready(in_flight.poll_expired(cx))).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(poll_fn(|cx| Poll::Ready(in_flight.poll_expired(cx))).await);
        assert!(short.is_aborted());
        assert!(!long.is_aborted());
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            in_flight.armed,
            Some(now + Duration::from_secs(10)),
            "the timer moves to the next deadline"
        );

        in_flight.cancel(2);
        assert!(long.is_aborted());
        assert_eq!(in_flight.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_deadline_rearms_the_timer_earlier() {
        let mut in_flight = InFlight::default();
        let now = rpc_core::timers::now();
        let _long = in_flight
            .start(1, now + Duration::from_secs(10))
            .expect("a new id");
        let short = in_flight
            .start(2, now + Duration::from_millis(50))
            .expect("a new id");
        let short = Abortable::new(std::future::pending::<()>(), short);
        assert!(!poll_fn(|cx| Poll::Ready(in_flight.poll_expired(cx))).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(poll_fn(|cx| Poll::Ready(in_flight.poll_expired(cx))).await);
        assert!(short.is_aborted());
        in_flight.finish(1);
        assert_eq!(in_flight.len(), 0);
    }
}
