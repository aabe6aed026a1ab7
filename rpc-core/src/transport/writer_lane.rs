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
    /// How long the message at the front may still wait for room, once it has begun to.
    wait: Option<Pin<Box<Sleep>>>,
    /// The task to wake when the peer gives slots back while a message waits for them.
    room_waker: Option<Waker>,
    /// The peer has given slots back since the waiting message last found the region full.
    room_changed: bool,
    /// A wait ran out and the peer has given nothing back since: a message short of room goes
    /// through the socket without waiting.
    stalled: bool,
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
    /// peer may be waiting for it to send what they wait for.
    ///
    /// (Only then ahead of the rest too: appended in order, a report read with a request goes
    /// out before the answer's lane frame, and the peer frees its slot before it takes the next,
    /// so a connection with one call in flight keeps using its region's first slot, hot in the
    /// cache. Put after it, slots went round the whole region, and four connections echoing
    /// 1 MiB lost a third of their calls a second.)
    pub fn queue_release(&mut self, through: u64) {
        let Some(lane) = self.lane.as_ref() else {
            return;
        };
        if lane.awaiting > 0 {
            self.release = Some(self.release.map_or(through, |queued| queued.max(through)));
        } else {
            let buf = self.open_buffer();
            lane_frame::encode_released(through, buf);
            self.buffered += lane_frame::RELEASED_LEN;
        }
    }

    /// Puts the report of released slots held back for a waiting message
    /// ([`FrameWriter::queue_release`]) at the front of the queue, unless a frame there has
    /// been begun.
    pub(super) fn put_release_first(&mut self) {
        let Some(through) = self.release else {
            return;
        };
        match self.queue.front_mut() {
            Some(Outgoing::Encoded { written, .. } | Outgoing::Direct { written, .. })
                if *written > 0 =>
            {
                return;
            }
            Some(Outgoing::Encoded {
                buf,
                with_fd: false,
                ..
            }) => lane_frame::encode_released(through, buf),
            _ => {
                let mut buf = BytesMut::with_capacity(lane_frame::RELEASED_LEN);
                lane_frame::encode_released(through, &mut buf);
                self.queue.push_front(Outgoing::Encoded {
                    buf,
                    written: 0,
                    with_fd: false,
                });
            }
        }
        self.buffered += lane_frame::RELEASED_LEN;
        self.release = None;
    }

    /// The peer has copied this side's slots up to `through`: they are free again, and a
    /// message waiting for them is woken.
    pub fn release_slots(&mut self, through: u64) -> Result<(), CodecError> {
        match self.lane.as_mut() {
            Some(LaneOut {
                region: Some(region),
                ..
            }) => region.release(through)?,
            _ => {
                return Err(crate::lane::LaneError::Protocol(
                    "the peer gave back slots of a region never sent".to_owned(),
                )
                .into());
            }
        }
        if let Some(lane) = self.lane.as_mut() {
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
        self.lane
            .as_ref()
            .and_then(|lane| lane.region.as_ref())
            .map_or(0, OwnRegion::in_use)
    }
}

impl<Out: Serialize> FrameWriter<Out> {
    /// Queues `item` as a lane frame, its large fields written into this side's region, and
    /// returns its body length; or says it waits for room in the region (the region is full
    /// while slots are out, or earlier messages wait), or goes through the socket (no lane, not
    /// a message the lane carries, or a wait ran out lately).
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
        let next = match placement {
            Placement::Placed(_) => {
                self.buffered += frame.len();
                Outgoing::Encoded {
                    buf: frame,
                    written: 0,
                    with_fd: false,
                }
            }
            Placement::Full if !lane.stalled => {
                let wait = lane
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(LANE_WAIT)));
                if wait.as_mut().poll(cx).is_pending() {
                    lane.room_waker = Some(cx.waker().clone());
                    self.queue
                        .push_front(Outgoing::AwaitingRoom { item, body_len });
                    return Poll::Pending;
                }
                lane.stalled = true;
                Outgoing::Direct {
                    item,
                    body_len,
                    written: 0,
                }
            }
            Placement::Full | Placement::Elsewhere => Outgoing::Direct {
                item,
                body_len,
                written: 0,
            },
        };
        lane.awaiting -= 1;
        lane.wait = None;
        lane.room_waker = None;
        self.queue.push_front(next);
        Poll::Ready(Ok(()))
    }
}
