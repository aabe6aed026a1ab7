//! The shared-memory lane's side of [`FrameWriter`]: this side's region, messages written into it
//! or waiting for room there, and the reports of the peer's slots copied out.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use serde::Serialize;
use tokio::time::Sleep;

use super::{FrameWriter, Outgoing};
use crate::lane::{LANE_WAIT, OwnRegion, ShmSize};
use crate::wire::CodecError;
use crate::wire::lane_frame::{self, Placement};

/// The outgoing side of the shared-memory lane.
#[derive(Debug)]
pub(super) struct LaneOut {
    size: ShmSize,
    /// This side's region, made when the first large message is queued.
    pub(super) region: Option<OwnRegion>,
    /// The region could not be made: every message goes through the socket.
    unavailable: bool,
    /// Whether the region's descriptor has been queued to go with a frame.
    fd_queued: bool,
    /// Messages in the queue waiting for room in the region ([`Outgoing::AwaitingRoom`]).
    pub(super) awaiting: usize,
    /// The wait of the message at the front for room, once it has begun.
    wait: Option<RoomWait>,
    /// The task to wake when the peer gives slots back while a message waits for them.
    room_waker: Option<Waker>,
    /// The peer has given slots back since the waiting message last found no room.
    room_changed: bool,
    /// A wait ran out and the peer has given nothing back since: a message short of room goes
    /// through the socket without waiting.
    stalled: bool,
}

/// The wait of the message at the queue's front for room in the region: until when (on tokio's
/// clock, [`crate::timers::now`]), and the timer that wakes the waiting task then, on the
/// runtime that polled it. Outside a runtime, or with a waker that wakes nothing, no timer is
/// armed; the end of the wait is still checked whenever the writer is polled.
#[derive(Debug)]
struct RoomWait {
    until: std::time::Instant,
    timer: Option<(tokio::runtime::Id, Pin<Box<Sleep>>)>,
}

impl RoomWait {
    fn new() -> Self {
        RoomWait {
            until: crate::timers::now() + LANE_WAIT,
            timer: None,
        }
    }

    /// Whether the wait is over; if not, `cx` is woken when it is, where a timer can be armed.
    /// (A timer is kept per runtime: one armed on a runtime since shut down is never polled.)
    fn poll_over(&mut self, cx: &mut Context<'_>) -> bool {
        if crate::timers::now() >= self.until {
            return true;
        }
        if cx.waker().will_wake(Waker::noop()) {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let until = tokio::time::Instant::from_std(self.until);
        let timer = match &mut self.timer {
            Some((id, timer)) if *id == runtime.id() => timer,
            slot => {
                &mut slot
                    .insert((runtime.id(), Box::pin(tokio::time::sleep_until(until))))
                    .1
            }
        };
        timer.as_mut().poll(cx).is_ready()
    }
}

impl LaneOut {
    /// The lane with a region of `size` bytes, made when first needed.
    pub(super) fn new(size: ShmSize) -> Self {
        LaneOut {
            size,
            region: None,
            unavailable: false,
            fd_queued: false,
            awaiting: 0,
            wait: None,
            room_waker: None,
            room_changed: false,
            stalled: false,
        }
    }

    /// The region, made now if it does not exist yet; `None` if it cannot be made.
    fn region(&mut self) -> Option<&mut OwnRegion> {
        if self.region.is_none() && !self.unavailable {
            match OwnRegion::new(self.size) {
                Ok(region) => self.region = Some(region),
                // The lane only saves copies: without a region the socket carries everything.
                Err(_) => self.unavailable = true,
            }
        }
        self.region.as_mut()
    }
}

/// Where [`FrameWriter::queue_lane`] put a message.
pub(super) enum LaneQueued {
    /// Into the lane, queued as a frame: its body length.
    Sent(usize),
    /// To wait for room in the region.
    Wait,
    /// Through the socket.
    Socket,
}

impl<Out> FrameWriter<Out> {
    /// Queues a report to the peer that its slots up to `through` have been copied: after what
    /// is queued, but ahead of the messages waiting for room in this side's region, as the
    /// peer may be waiting for it to send what they wait for. Reports stay in order either way
    /// (each says more than the last, and the peer refuses one that goes back): those queued
    /// before a message began to wait are ahead of it already.
    ///
    /// (Not ahead of the rest: in order, a report read with a request goes out before the
    /// answer's lane frame, and the peer frees its slot before it takes the next, so a
    /// connection with one call in flight keeps using its region's first slot, hot in the
    /// cache. Put first instead, it went out after the request the client had just queued, and
    /// four connections echoing 1 MiB lost a fifth to a third of their calls a second.)
    pub fn queue_release(&mut self, through: u64) {
        if self.lane.is_none() {
            return;
        }
        // Looked for only while one waits: a report per large message read is the common case.
        let waiting = self
            .awaits_room()
            .then(|| {
                self.queue
                    .iter()
                    .position(|entry| matches!(entry, Outgoing::AwaitingRoom { .. }))
            })
            .flatten();
        let Some(waiting) = waiting else {
            let buf = self.open_buffer();
            lane_frame::encode_released(through, buf);
            self.buffered += lane_frame::RELEASED_LEN;
            return;
        };
        // Into the unwritten buffer just ahead of the first waiting message, or one put there.
        let ahead = waiting.checked_sub(1).filter(|&at| {
            matches!(
                self.queue.get(at),
                Some(Outgoing::Encoded { written: 0, .. })
            )
        });
        let at = ahead.unwrap_or_else(|| {
            let buf = BytesMut::with_capacity(lane_frame::RELEASED_LEN);
            let entry = Outgoing::Encoded {
                buf,
                written: 0,
                with_fd: false,
            };
            self.queue.insert(waiting, entry);
            waiting
        });
        if let Some(Outgoing::Encoded { buf, .. }) = self.queue.get_mut(at) {
            lane_frame::encode_released(through, buf);
            self.buffered += lane_frame::RELEASED_LEN;
        }
    }

    /// The peer has copied this side's slots up to `through`: they are free again, and a
    /// message waiting for them is woken.
    pub fn release_slots(&mut self, through: u64) -> Result<(), CodecError> {
        let freed = match self.lane.as_mut() {
            Some(LaneOut {
                region: Some(region),
                ..
            }) => {
                let before = region.in_use();
                region.release(through)?;
                region.in_use() < before
            }
            _ => {
                return Err(crate::lane::LaneError::Protocol(
                    "the peer gave back slots of a region never sent".to_owned(),
                )
                .into());
            }
        };
        // A report that frees nothing changes nothing: a peer sending such reports must not
        // make every message wait again.
        if let Some(lane) = self.lane.as_mut().filter(|_| freed) {
            lane.stalled = false;
            lane.room_changed = true;
            if let Some(waker) = lane.room_waker.take() {
                waker.wake();
            }
        }
        Ok(())
    }

    /// Bytes of this side's region handed out and not given back yet.
    pub fn lane_in_use(&self) -> u64 {
        self.own_region().map_or(0, OwnRegion::in_use)
    }

    /// This side's region, once made.
    pub(super) fn own_region(&self) -> Option<&OwnRegion> {
        self.lane.as_ref().and_then(|lane| lane.region.as_ref())
    }

    /// Whether messages in the queue wait for room in the region ([`Outgoing::AwaitingRoom`]).
    pub(super) fn awaits_room(&self) -> bool {
        self.lane.as_ref().is_some_and(|lane| lane.awaiting > 0)
    }
}

impl<Out: Serialize> FrameWriter<Out> {
    /// Queues `item` as a lane frame, its large fields written into this side's region, and
    /// returns its body length; or says it waits for room in the region (the region is full,
    /// or [`crate::lane::LANE_AHEAD`] is out, while slots are out; or earlier messages wait),
    /// or goes through the socket (no lane, not a message the lane carries, or a wait ran out
    /// lately).
    pub(super) fn queue_lane(&mut self, item: &Out) -> Result<LaneQueued, CodecError> {
        let format = self.format;
        let Some(lane) = self.lane.as_mut() else {
            return Ok(LaneQueued::Socket);
        };
        if lane.awaiting > 0 {
            // In turn: a message queued later never takes the room an earlier one waits for.
            return Ok(LaneQueued::Wait);
        }
        let stalled = lane.stalled;
        let Some(region) = lane.region() else {
            return Ok(LaneQueued::Socket);
        };
        let mut frame = BytesMut::new();
        let len = match lane_frame::encode_fields(format, format.limit(), region, item, &mut frame)?
        {
            Placement::Placed(len) => len,
            Placement::Full if !stalled => return Ok(LaneQueued::Wait),
            Placement::Full | Placement::Elsewhere => return Ok(LaneQueued::Socket),
        };
        let with_fd = !lane.fd_queued;
        lane.fd_queued = true;
        self.buffered += frame.len();
        if with_fd {
            // The descriptor goes with this frame's first byte: a buffer of its own.
            self.queue.push_back(Outgoing::Encoded {
                buf: frame,
                written: 0,
                with_fd,
            });
        } else {
            self.open_buffer().extend_from_slice(&frame);
        }
        Ok(LaneQueued::Sent(len))
    }

    /// Moves the message at the front, which waits for room in the region, into the lane when
    /// the region has room for it, or into the socket's way when it cannot fit or its wait has
    /// run out. `Pending`, the message kept, while it waits.
    pub(super) fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        let format = self.format;
        let Some(Outgoing::AwaitingRoom { item, body_len }) = self.queue.pop_front() else {
            return Poll::Ready(Ok(()));
        };
        let Some(lane) = self.lane.as_mut() else {
            return Poll::Ready(Err(CodecError::unencodable(
                "a message waits for a lane that is off",
            )));
        };
        let mut frame = BytesMut::new();
        let placement = match lane.region.as_mut() {
            // Tried again only once slots have come back since it last found no room.
            Some(region) if lane.wait.is_none() || lane.room_changed => {
                lane.room_changed = false;
                lane_frame::encode_fields(format, format.limit(), region, &item, &mut frame)?
            }
            Some(_) => Placement::Full,
            None => Placement::Elsewhere,
        };
        if placement == Placement::Full && !lane.stalled {
            let wait = lane.wait.get_or_insert_with(RoomWait::new);
            if !wait.poll_over(cx) {
                // Not a waker that wakes nothing: those of writes made in passing, which leave
                // waiting to a task that drives the connection.
                if !cx.waker().will_wake(Waker::noop()) {
                    lane.room_waker = Some(cx.waker().clone());
                }
                self.queue
                    .push_front(Outgoing::AwaitingRoom { item, body_len });
                return Poll::Pending;
            }
            lane.stalled = true;
        }
        let next = if let Placement::Placed(_) = placement {
            self.buffered += frame.len();
            Outgoing::Encoded {
                buf: frame,
                written: 0,
                with_fd: false,
            }
        } else {
            Outgoing::Direct {
                item,
                body_len,
                written: 0,
            }
        };
        lane.awaiting -= 1;
        lane.wait = None;
        lane.room_waker = None;
        self.queue.push_front(next);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wait_polled_outside_a_runtime_arms_no_timer_and_still_ends_on_time() {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut wait = RoomWait::new();
        assert!(!wait.poll_over(&mut cx), "not over yet");
        assert!(wait.timer.is_none(), "no runtime to arm a timer on");
        wait.until = crate::timers::now();
        assert!(wait.poll_over(&mut cx), "over once its time has come");
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_waker_that_wakes_someone_arms_the_timer_and_it_is_woken_when_the_wait_is_over()
    {
        let mut wait = RoomWait::new();
        assert!(!wait.poll_over(&mut Context::from_waker(Waker::noop())));
        assert!(wait.timer.is_none());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        assert!(!wait.poll_over(&mut Context::from_waker(&waker)));
        assert!(wait.timer.is_some());
        tokio::time::sleep(LANE_WAIT).await;
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken when the wait is over"
        );
        assert!(wait.poll_over(&mut Context::from_waker(&waker)));
    }
}
