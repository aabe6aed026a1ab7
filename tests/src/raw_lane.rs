//! The shared-memory lane spoken by hand: a region made and sealed here, sent with `SCM_RIGHTS`,
//! and lane frames built byte by byte, for tests that must send what the lane's own sender
//! never sends. The frames' layout is that of `rpc-core`'s `wire/lane_frame.rs`:
//!
//! ```text
//! fields:   00 00 00 00 | 01 | count: u8 | smalls_len: u32 BE | count x (pos: u64 LE, len: u64 LE) | smalls
//! released: 00 00 00 00 | 02 | through: u64 LE
//! ```
//!
//! The client writes its slots with `pwrite` on its memfd rather than through a mapping, and
//! seals its region only as a receiver demands (against shrinking, growing and further seals,
//! not against writes): it keeps the right to write into a slot after sending it, as a hostile
//! peer would.
//!
//! The server answers a large echo through its own region: [`LaneConnection::next_echo`] takes
//! the region's descriptor from its first lane frame, reads the slot with `pread`, puts the
//! message back together, and reports the slot copied, as a real client does.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bytes::{Buf, BytesMut};
use rpc_core::handshake::HandshakeCodec;
use rpc_core::lane::ShmSize;
use rpc_core::services::echo::EchoResponse;
use rpc_core::tarpc::Response;
use rpc_core::{Hello, HelloReply};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio_util::codec::Encoder;

use crate::ServerProcess;
use crate::raw::{CLOSE_TIMEOUT, connect, decode_echo_response, echo_request_frame, handshake};

/// The name of the memfds made here, so a test can tell them from the server's own
/// (`rpc-lane`) in `/proc/<pid>/fd` and `/proc/<pid>/maps`.
pub const TEST_REGION_NAME: &str = "hostile-lane";

/// The name of the memfds the library's own lane makes (client and server alike).
pub const LIBRARY_REGION_NAME: &str = "rpc-lane";

/// The lines of `/proc/<pid>/maps` that map a memfd called `name`: the lane regions process
/// `pid` has mapped (its own writable, its peers' read-only).
pub fn mapped_regions(pid: u32, name: &str) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|err| panic!("cannot read the maps of process {pid}: {err}"));
    let path = format!("/memfd:{name}");
    maps.lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(5)
                .is_some_and(|mapped| mapped == path)
        })
        .map(str::to_owned)
        .collect()
}

/// The smallest field a slot may carry: `rpc_core::transport::BIG_FIELD`, 32 KiB.
pub const BIG_FIELD: u64 = rpc_core::transport::BIG_FIELD as u64;

/// Descriptors one receive has room for: more than the one region a server ever sends.
const FDS_PER_RECEIVE: usize = 4;

/// A region of `size` bytes sealed as a receiver demands: against shrinking, growing and
/// further seals (not against writes, so the test can go on writing into it).
pub fn sealed_region(size: u64) -> OwnedFd {
    let fd = unsealed_region(size);
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
        .expect("a memfd can be sealed");
    fd
}

/// A memfd of `size` bytes that allows sealing but has no seal yet.
pub fn unsealed_region(size: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create(
        TEST_REGION_NAME,
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .expect("a memfd can be made");
    rustix::fs::ftruncate(&fd, size).expect("a memfd can be sized");
    fd
}

/// Writes `bytes` into the slot at position `pos` of `region` (of `size` bytes): at `pos`
/// modulo `size`, as the receiver reads it.
pub fn write_slot(region: impl AsFd, size: u64, pos: u64, bytes: &[u8]) {
    let mut offset = pos % size;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rustix::io::pwrite(&region, rest, offset).expect("the region is writable");
        assert!(n > 0, "pwrite into the region wrote nothing");
        rest = &rest[n..];
        offset += n as u64;
    }
}

/// The raw bytes of a fields frame naming `slots` (position, length), with `smalls` as its small
/// bytes. The count is a `u8`: a test may name up to 255 slots, past the 64 allowed.
pub fn lane_frame(slots: &[(u64, u64)], smalls: &[u8]) -> Vec<u8> {
    let count = u8::try_from(slots.len()).expect("a frame names at most 255 slots");
    let smalls_len = u32::try_from(smalls.len()).expect("small bytes fit a u32");
    let mut frame = vec![0, 0, 0, 0, 1, count];
    frame.extend_from_slice(&smalls_len.to_be_bytes());
    for (pos, len) in slots {
        frame.extend_from_slice(&pos.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
    }
    frame.extend_from_slice(smalls);
    frame
}

/// The raw bytes of a released frame: every slot up to `through` has been copied.
pub fn released_frame(through: u64) -> Vec<u8> {
    let mut frame = vec![0, 0, 0, 0, 2];
    frame.extend_from_slice(&through.to_le_bytes());
    frame
}

/// An echo payload of `len` bytes that differs from request to request (by `id`) and from
/// byte to byte, so a slot read at the wrong place, or another request's answer, shows.
pub fn echo_payload(id: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(31) ^ id.wrapping_mul(0x9e37)) as u8)
        .collect()
}

/// The small bytes of an `echo.echo` request `id` whose payload of `payload_len` bytes travels
/// in a slot: the request's bincode body (as [`echo_request_frame`] encodes it) with the
/// payload's bytes cut out and its `u64` length left in. The payload is the body's last field,
/// so the length is all that differs between payloads; any length may be claimed.
pub fn echo_smalls(id: u64, payload_len: u64) -> Vec<u8> {
    const MARKER: &[u8] = b"payload-marker";
    let frame = echo_request_frame(id, MARKER.to_vec());
    let body = &frame[4..];
    assert!(
        body.ends_with(MARKER),
        "the payload is not the last field of an echo request"
    );
    let mut smalls = body[..body.len() - MARKER.len()].to_vec();
    let len_at = smalls.len() - 8;
    assert_eq!(
        smalls[len_at..],
        (MARKER.len() as u64).to_le_bytes(),
        "the payload's bincode length does not come just before it"
    );
    smalls[len_at..].copy_from_slice(&payload_len.to_le_bytes());
    smalls
}

/// A fields frame for an `echo.echo` request `id` whose payload (written by the caller, or not)
/// is the slot of `payload_len` bytes at `slot_pos`.
pub fn lane_echo_frame(id: u64, slot_pos: u64, payload_len: u64) -> Vec<u8> {
    lane_frame(&[(slot_pos, payload_len)], &echo_smalls(id, payload_len))
}

/// Sends `bytes` on `stream` with `fds` attached to their first byte (`SCM_RIGHTS`).
pub async fn send_with_fds(
    stream: &mut UnixStream,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    assert!(!bytes.is_empty(), "a descriptor travels with a byte");
    let socket = &*stream;
    let sent = socket
        .async_io(Interest::WRITABLE, || {
            let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            assert!(
                control.push(SendAncillaryMessage::ScmRights(fds)),
                "room for the descriptors"
            );
            rustix::net::sendmsg(
                socket,
                &[io::IoSlice::new(bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        })
        .await?;
    stream.write_all(&bytes[sent..]).await
}

/// A complete handshake frame: a tokenless hello for `service` offering regions of `shm` bytes.
pub fn lane_hello_frame(service: &str, shm: ShmSize) -> Vec<u8> {
    let mut frame = BytesMut::new();
    HandshakeCodec::<HelloReply, Hello>::new()
        .encode(Hello::new(service, None).with_shm(shm), &mut frame)
        .expect("a hello encodes");
    frame.to_vec()
}

/// A frame read off the connection, as the server sent it.
#[derive(Debug)]
pub enum Frame {
    /// An ordinary frame's body.
    Message(Vec<u8>),
    /// A fields frame: a message whose large fields are in the server's region.
    Fields {
        /// Each field's slot (position, length).
        slots: Vec<(u64, u64)>,
        /// The message's body without those fields' bytes.
        smalls: Vec<u8>,
    },
    /// The server has copied this client's slots up to this position.
    Released(u64),
}

/// A connection to `echo` past a handshake that offered the lane, spoken by hand.
#[derive(Debug)]
pub struct LaneConnection {
    stream: UnixStream,
    shm: ShmSize,
    /// Bytes received and not yet taken as frames.
    received: BytesMut,
    /// Descriptors received and not yet taken as the server's region.
    fds: Vec<OwnedFd>,
    /// The server's region, once its first fields frame came.
    server_region: Option<OwnedFd>,
    /// The last position the server reported copied of this client's region.
    released: Option<u64>,
    /// Answers that came through the server's region.
    lane_answers: usize,
    /// The last position up to which this client reported the server's slots copied.
    server_released: Option<u64>,
    /// Whether answers through the server's region are reported copied.
    gives_back: bool,
}

impl LaneConnection {
    /// Connects to `server`'s `echo` with a hello offering regions of `offer` bytes; panics
    /// unless it is accepted.
    pub async fn open(server: &ServerProcess, offer: ShmSize) -> Self {
        let hello = Hello::new("echo", None).with_shm(offer);
        let (reply, stream) = handshake(connect(server).await, hello).await;
        LaneConnection::accepted(reply, stream)
    }

    /// The connection `stream` is once `reply` (which must be an acceptance) has been read.
    pub fn accepted(reply: HelloReply, stream: UnixStream) -> Self {
        let HelloReply::Accepted { shm, .. } = reply else {
            panic!("the hello got {reply:?}");
        };
        LaneConnection {
            stream,
            shm,
            received: BytesMut::new(),
            fds: Vec::new(),
            server_region: None,
            released: None,
            lane_answers: 0,
            server_released: None,
            gives_back: true,
        }
    }

    /// The region size the server agreed to ([`ShmSize::OFF`]: no lane).
    pub fn shm(&self) -> ShmSize {
        self.shm
    }

    /// The socket, e.g. to send on it by other means.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// Sends `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Sends `bytes` with `fds` attached to their first byte (see [`send_with_fds`]).
    pub async fn send_with_fds(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        send_with_fds(&mut self.stream, bytes, fds).await
    }

    /// Receives what the server sent next into the buffer, keeping any descriptors; `Ok(0)`
    /// when it has closed the connection.
    async fn receive(&mut self) -> io::Result<usize> {
        let mut chunk = vec![0u8; 64 * 1024];
        let stream = &self.stream;
        let fds = &mut self.fds;
        let n = stream
            .async_io(Interest::READABLE, || {
                let mut space =
                    [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_RECEIVE))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let received = rustix::net::recvmsg(
                    stream,
                    &mut [io::IoSliceMut::new(&mut chunk)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(received) = message {
                        fds.extend(received);
                    }
                }
                Ok(received.bytes)
            })
            .await?;
        self.received.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Takes one frame off the buffer if all of it is there.
    fn take_frame(&mut self) -> Option<Frame> {
        let buf = &mut self.received;
        let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
        if len > 0 {
            if buf.len() < 4 + len {
                return None;
            }
            buf.advance(4);
            return Some(Frame::Message(buf.split_to(len).to_vec()));
        }
        match *buf.get(4)? {
            2 if buf.len() >= 13 => {
                buf.advance(5);
                Some(Frame::Released(buf.get_u64_le()))
            }
            2 => None,
            1 => {
                let header = buf.get(..10)?;
                let count = header[5] as usize;
                let smalls_len =
                    u32::from_be_bytes(header[6..10].try_into().expect("four bytes")) as usize;
                if buf.len() < 10 + 16 * count + smalls_len {
                    return None;
                }
                buf.advance(10);
                let slots = (0..count)
                    .map(|_| (buf.get_u64_le(), buf.get_u64_le()))
                    .collect();
                let smalls = buf.split_to(smalls_len).to_vec();
                Some(Frame::Fields { slots, smalls })
            }
            kind => panic!("the server sent an escape frame of unknown kind {kind}"),
        }
    }

    /// The next frame the server sends, or `None` if it closes the connection first (a reset
    /// counts as closed).
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            match tokio::time::timeout(CLOSE_TIMEOUT, self.receive()).await {
                Err(_) => panic!("the server sent nothing for {CLOSE_TIMEOUT:?}"),
                Ok(Ok(0)) => return None,
                Ok(Ok(_)) => {}
                Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionReset => return None,
                Ok(Err(err)) => panic!("reading from the server failed: {err}"),
            }
        }
    }

    /// The next echo answer, through the socket or the server's region, noting the server's
    /// reports of slots copied on the way; `None` if the server closes the connection first. An
    /// answer through the region is reported copied at once, as a real client does (unless
    /// [`LaneConnection::keep_server_slots`]).
    pub async fn next_echo(&mut self) -> Option<Response<EchoResponse>> {
        loop {
            match self.next_frame().await? {
                Frame::Released(through) => {
                    self.released = Some(self.released.map_or(through, |last| last.max(through)));
                }
                Frame::Message(body) => return Some(decode_echo_response(&body)),
                Frame::Fields { slots, smalls } => {
                    let body = self.reassemble(&slots, smalls);
                    let (pos, len) = slots[0];
                    if self.gives_back {
                        self.send(&released_frame(pos + len))
                            .await
                            .expect("the release is sent");
                        self.server_released = Some(pos + len);
                    }
                    self.lane_answers += 1;
                    return Some(decode_echo_response(&body));
                }
            }
        }
    }

    /// The body of an answer that came as a fields frame: its one field read out of the server's
    /// region (adopted from the descriptor that came with the server's first fields frame) and
    /// put back at the end of the small bytes, where an echo answer carries its payload.
    fn reassemble(&mut self, slots: &[(u64, u64)], mut smalls: Vec<u8>) -> Vec<u8> {
        if self.server_region.is_none() {
            let mut fds = std::mem::take(&mut self.fds);
            assert_eq!(
                fds.len(),
                1,
                "the server's first fields frame came with {} descriptors, not its region",
                fds.len()
            );
            self.server_region = fds.pop();
        }
        assert!(
            self.fds.is_empty(),
            "the server sent a descriptor after its region"
        );
        let region = self.server_region.as_ref().expect("adopted just above");
        let size = self.shm.bytes();
        let [(pos, len)] = slots[..] else {
            panic!("an echo answer names {} slots, not one", slots.len());
        };
        assert!(
            smalls.ends_with(&len.to_le_bytes()),
            "the answer's field is not at the end of its small bytes"
        );
        let offset = pos % size;
        assert!(
            offset + len <= size,
            "the server's slot passes its region's end"
        );
        let start = smalls.len();
        smalls.resize(start + len as usize, 0);
        let mut done = 0;
        while done < len as usize {
            let n = rustix::io::pread(region, &mut smalls[start + done..], offset + done as u64)
                .expect("the server's region is readable");
            assert!(n > 0, "the server's region ends inside a slot");
            done += n;
        }
        smalls
    }

    /// From now on, never reports the server's slots copied: they stay out, and the server's
    /// answers wait for room (`LANE_AHEAD`), then go through the socket.
    pub fn keep_server_slots(&mut self) {
        self.gives_back = false;
    }

    /// The server's region, once an answer came through it.
    pub fn server_region(&self) -> Option<BorrowedFd<'_>> {
        self.server_region.as_ref().map(AsFd::as_fd)
    }

    /// How many answers came through the server's region.
    pub fn lane_answers(&self) -> usize {
        self.lane_answers
    }

    /// The last position up to which this client reported the server's slots copied.
    pub fn server_slots_released(&self) -> Option<u64> {
        self.server_released
    }

    /// The last position up to which the server reported this client's slots copied.
    pub fn released(&self) -> Option<u64> {
        self.released
    }

    /// Reads until the server closes the connection, for at most [`CLOSE_TIMEOUT`], and returns
    /// the frames it sent on the way. Panics if the connection stays open.
    pub async fn frames_until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame().await {
            frames.push(frame);
        }
        frames
    }

    /// Checks that the server closes the connection without answering anything (a report of
    /// slots copied is not an answer); `what` names the input, for the message.
    pub async fn assert_closed_unanswered(&mut self, what: &str) {
        let answers: Vec<Frame> = self
            .frames_until_closed()
            .await
            .into_iter()
            .filter(|frame| !matches!(frame, Frame::Released(_)))
            .collect();
        assert!(
            answers.is_empty(),
            "{what}: the server answered {answers:?} before closing"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_frames_have_the_layout_of_wire_lane_frame() {
        let frame = lane_frame(&[(1, 2)], b"ab");
        assert_eq!(
            frame,
            [
                &[0, 0, 0, 0, 1, 1, 0, 0, 0, 2][..],
                &1u64.to_le_bytes(),
                &2u64.to_le_bytes(),
                b"ab"
            ]
            .concat()
        );
        assert_eq!(
            released_frame(7),
            [&[0, 0, 0, 0, 2][..], &7u64.to_le_bytes()].concat()
        );
    }

    #[test]
    fn echo_smalls_and_payload_make_the_request_body() {
        // Each frame carries its own deadline, so only lengths and the tail can be compared.
        let payload = echo_payload(3, 40_000);
        let smalls = echo_smalls(3, payload.len() as u64);
        let frame = echo_request_frame(3, payload.clone());
        assert_eq!(smalls.len() + payload.len(), frame.len() - 4);
        assert!(frame.ends_with(&payload), "the payload ends the body");
        let len_at = frame.len() - payload.len() - 8;
        assert_eq!(smalls[smalls.len() - 8..], frame[len_at..len_at + 8]);
    }
}
