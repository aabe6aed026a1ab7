//! [`LocalStream`]: one connected socket, Unix or TCP, behind one type.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

pub use crate::limits::DEFAULT_SOCKET_BUFFER;
use crate::socket_calls::{no_sigpipe, poll_send_tcp, send_with};
pub use crate::socket_calls::{peer_hung_up, send_vectored};

/// The command (run as root) that raises the kernel's caps on socket buffers to `bytes`, for
/// when [`LocalStream::tune`] granted less than it asked: what `rpc-server`'s warning and
/// `rpc-bench`'s note tell the user to run.
///
/// ```
/// assert_eq!(
///     rpc_core::stream::raise_buffer_caps(1 << 20),
///     "sysctl -w net.core.wmem_max=1048576 net.core.rmem_max=1048576"
/// );
/// ```
pub fn raise_buffer_caps(bytes: usize) -> String {
    format!("sysctl -w net.core.wmem_max={bytes} net.core.rmem_max={bytes}")
}

/// Bytes one read through [`AsyncRead`] asks a Unix socket for, at most.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where a Unix socket read through [`AsyncRead`] (and any read of
    /// [`LocalStream::read_now`]) lands before it is copied into the caller's buffer, at most
    /// [`READ_CHUNK`] at a time. Safe code can only mark a `ReadBuf`'s bytes filled by writing
    /// them, so reading straight into one means zeroing its unfilled part first: a 64 KiB
    /// `memset` per read, which callgrind showed was 42 % of the server's instructions for
    /// 64-byte calls. Copying the few bytes a read returns costs far less. One per runtime thread, not one per connection; its
    /// bytes are zeroed once, as it grows, and kept initialised for every later read (a `recvmsg`
    /// needs initialised memory).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A connected socket of either kind. Both sides wrap it in a codec; neither cares which it is.
#[derive(Debug)]
pub enum LocalStream {
    /// A Unix domain stream socket (see [`UnixConnection`]).
    Unix(UnixConnection),
    /// A TCP loopback socket.
    Tcp(TcpStream),
}

/// A connected Unix stream socket, registered with the runtime for reading only.
///
/// A Unix socket signals "writable" to its writer every time the reader takes a message out of
/// it (the kernel's `unix_write_space` runs on each read; TCP only signals after the send buffer
/// was full). tokio registers its sockets for reading and writing, edge-triggered, so on a Unix
/// socket every message read by the peer woke this side's runtime for nothing: `strace -c`
/// showed two `epoll_wait` calls per 64-byte call instead of one. Here writes go straight to
/// the socket, and only when one would block is a second descriptor for the same socket
/// registered for writability, until the write goes through.
#[derive(Debug)]
pub struct UnixConnection {
    io: AsyncFd<std::os::unix::net::UnixStream>,
    /// Registered for writability while a write waits for room; `None` otherwise.
    writable: Option<AsyncFd<std::os::unix::net::UnixStream>>,
    /// Descriptors the peer sent (`SCM_RIGHTS`), once [`LocalStream::accept_descriptors`] has
    /// been called; until then reads are plain, and the kernel closes any descriptor sent.
    inbox: Option<Inbox>,
}

/// Descriptors received and not taken yet.
#[derive(Debug, Default)]
struct Inbox {
    fds: Vec<OwnedFd>,
    /// A message carried more descriptors than there was room for (the kernel closed them).
    truncated: bool,
}

/// Descriptors one read has room for: more than the one the lane ever sends at a time, so that
/// a peer sending several is seen doing so (and refused) rather than cut off silently.
const DESCRIPTORS_PER_READ: usize = 4;

impl LocalStream {
    /// Wraps a connected Unix socket (see [`UnixConnection`]). Needs a tokio runtime.
    pub fn unix(stream: UnixStream) -> io::Result<Self> {
        let std = stream.into_std()?;
        no_sigpipe(&std)?;
        let io = register(std, Interest::READABLE)?;
        Ok(LocalStream::Unix(UnixConnection {
            io,
            writable: None,
            inbox: None,
        }))
    }

    /// Wraps a connected TCP socket. Prefer it to building [`LocalStream::Tcp`] directly: on
    /// Apple systems it also marks the socket `SO_NOSIGPIPE` (see [`send_vectored`]).
    pub fn tcp(stream: TcpStream) -> io::Result<Self> {
        no_sigpipe(&stream)?;
        Ok(LocalStream::Tcp(stream))
    }

    /// Tunes a freshly connected socket for RPC: no Nagle delay on TCP, and buffers large enough
    /// that a large message is not chopped into many small kernel round trips on a Unix socket
    /// (whose default send buffer is about 200 KiB, against TCP loopback's autotuned megabytes).
    /// `socket_buffer` 0 leaves the kernel's default.
    ///
    /// Returns, for a Unix socket, the buffer the kernel granted: the smaller of the send and
    /// receive buffers, as many bytes as were asked for unless the kernel capped them
    /// (`net.core.wmem_max`, `net.core.rmem_max`; see [`DEFAULT_SOCKET_BUFFER`]). `None` for TCP,
    /// whose buffers the kernel sizes itself, and when `socket_buffer` is 0 (nothing asked).
    pub fn tune(&self, socket_buffer: usize) -> io::Result<Option<usize>> {
        let sock = match self {
            LocalStream::Unix(s) => socket2::SockRef::from(s.io.get_ref()),
            LocalStream::Tcp(s) => {
                s.set_nodelay(true)?;
                return Ok(None);
            }
        };
        if socket_buffer == 0 {
            return Ok(None);
        }
        sock.set_send_buffer_size(socket_buffer)?;
        sock.set_recv_buffer_size(socket_buffer)?;
        let reported = sock.send_buffer_size()?.min(sock.recv_buffer_size()?);
        // Linux reports twice what it granted when asked (the other half is its bookkeeping).
        let granted = match cfg!(any(target_os = "linux", target_os = "android")) {
            true => reported / 2,
            false => reported,
        };
        Ok(Some(granted))
    }

    /// From now on, takes the descriptors the peer sends with its bytes (`SCM_RIGHTS`) and keeps
    /// them for [`LocalStream::take_descriptors`]: for the shared-memory lane, whose peer sends
    /// its region this way. Before this, and on TCP, a descriptor sent is closed by the kernel
    /// unread. Reads of large fields stay plain reads (a descriptor arrives only with the first
    /// byte of a frame, never inside a field).
    pub fn accept_descriptors(&mut self) {
        if let LocalStream::Unix(unix) = self {
            unix.inbox.get_or_insert_with(Inbox::default);
        }
    }

    /// The descriptors received since the last call, or an error if the peer sent more in one
    /// message than there was room for (those were closed by the kernel).
    pub fn take_descriptors(&mut self) -> io::Result<Vec<OwnedFd>> {
        let LocalStream::Unix(UnixConnection {
            inbox: Some(inbox), ..
        }) = self
        else {
            return Ok(Vec::new());
        };
        if inbox.truncated {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer sent more descriptors in one message than it may",
            ));
        }
        Ok(std::mem::take(&mut inbox.fds))
    }

    /// Writes `buf` with `fd` attached to its first byte (`SCM_RIGHTS`), or waits for room;
    /// returns how many bytes were written (the descriptor goes with the first of them). Unix
    /// sockets only.
    pub fn poll_write_with_descriptor(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        fd: BorrowedFd<'_>,
    ) -> Poll<io::Result<usize>> {
        match self {
            LocalStream::Unix(unix) => unix.poll_send(cx, &[io::IoSlice::new(buf)], Some(fd)),
            LocalStream::Tcp(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "descriptors cannot travel over TCP",
            ))),
        }
    }

    /// Reads at most `max` bytes (and at most 64 KiB) that the kernel holds for this socket now
    /// and hands them to `take`, without waiting and whatever the runtime's readiness says:
    /// `Err(WouldBlock)` when nothing has arrived, `Ok(0)` at the end of the stream. Descriptors
    /// that come with them are kept as any read keeps them.
    ///
    /// The runtime learns that bytes arrived only when its event loop next runs: on a
    /// current-thread runtime that is after the running task yields, and on any runtime up to
    /// 61 polls of a task that never waits. A task that keeps running, such as a stream's
    /// consumer with answers in hand, reads here what its polled reads would not see yet. The
    /// readiness is left as it was: a read that then finds the socket drained clears it, as any
    /// stale readiness is cleared.
    pub fn read_now(&mut self, max: usize, mut take: impl FnMut(&[u8])) -> io::Result<usize> {
        debug_assert!(
            max > 0,
            "a read of nothing would look like the end of the stream"
        );
        let max = max.min(READ_CHUNK);
        match self {
            LocalStream::Unix(unix) => {
                read_via_scratch(unix.io.get_ref(), unix.inbox.as_mut(), max, &mut take)
                    .map(|read| read.n)
            }
            LocalStream::Tcp(tcp) => {
                read_via_scratch(&*tcp, None, max, &mut take).map(|read| read.n)
            }
        }
    }

    /// [`LocalStream::poll_read_vec`] without waiting, as [`LocalStream::read_now`] reads:
    /// `Err(WouldBlock)` when nothing has arrived.
    pub fn read_vec_now(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        if buf.capacity() == buf.len() {
            buf.reserve(max.min(READ_CHUNK));
        }
        if buf.capacity() - buf.len() > max {
            // More room than may be read: through the bounce buffer, as a polled read goes.
            return self.read_now(max, |bytes| buf.extend_from_slice(bytes));
        }
        // Straight into the room (a large field: no descriptor arrives inside one).
        Ok(rustix::io::read(
            &*self,
            rustix::buffer::spare_capacity(buf),
        )?)
    }

    /// Reads into `buf`'s spare capacity, growing its length by the bytes read: `Ok(0)` at the
    /// end of the stream. Unlike [`AsyncRead`], the spare capacity is not zeroed first, which
    /// matters for megabyte fields. At most `max` bytes are read: when the spare capacity is
    /// larger, the read goes through a bounce buffer instead (callers size it to fit).
    pub fn poll_read_vec(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        if buf.capacity() == buf.len() {
            buf.reserve(max.min(READ_CHUNK));
        }
        match self {
            LocalStream::Unix(unix) => {
                if buf.capacity() - buf.len() > max {
                    return unix.poll_read_with(cx, max.min(READ_CHUNK), |bytes| {
                        buf.extend_from_slice(bytes)
                    });
                }
                let room = buf.capacity() - buf.len();
                unix.poll_read_ready_with(cx, room, |socket| {
                    rustix::io::read(socket, rustix::buffer::spare_capacity(&mut *buf))
                        .map(Read::plain)
                        .map_err(io::Error::from)
                })
            }
            LocalStream::Tcp(tcp) if buf.capacity() - buf.len() > max => {
                let mut bounce = vec![0u8; max.min(READ_CHUNK)];
                let mut read = ReadBuf::new(&mut bounce);
                ready!(Pin::new(tcp).poll_read(cx, &mut read))?;
                let n = read.filled().len();
                buf.extend_from_slice(&bounce[..n]);
                Poll::Ready(Ok(n))
            }
            LocalStream::Tcp(tcp) => loop {
                ready!(tcp.poll_read_ready(cx))?;
                match tcp.try_read_buf(buf) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return Poll::Ready(other),
                }
            },
        }
    }
}

/// Registers a Unix socket with the runtime's reactor for `interest` only.
///
/// The workspace's one `unsafe` block. tokio 1.54 deprecated `AsyncFd`'s safe constructors as
/// unsound for descriptor types that may swap or close their descriptor while registered, and
/// made the replacement `unsafe` so that the caller vouches for the type.
#[allow(unsafe_code)]
fn register(
    stream: std::os::unix::net::UnixStream,
    interest: Interest,
) -> io::Result<AsyncFd<std::os::unix::net::UnixStream>> {
    // SAFETY: a std `UnixStream` owns one open descriptor for its whole life, returns that same
    // descriptor from every `as_raw_fd` call, and closes it only when dropped, which happens
    // after the `AsyncFd` holding it has deregistered it.
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(io::Error::from)
}

impl UnixConnection {
    /// Reads at most `max` bytes into the thread's scratch buffer and hands them to `take`;
    /// returns how many were read (0 at the end of the stream).
    fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        mut take: impl FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let inbox = &mut self.inbox;
        let io = &self.io;
        poll_read_ready_with(io, cx, max, |socket| {
            read_via_scratch(socket, inbox.as_mut(), max, &mut take)
        })
    }

    /// Waits until the socket is readable and runs `read`, which reads at most `max` bytes and
    /// returns how many; retries if the readiness was stale.
    fn poll_read_ready_with(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        read: impl FnMut(&std::os::unix::net::UnixStream) -> io::Result<Read>,
    ) -> Poll<io::Result<usize>> {
        poll_read_ready_with(&self.io, cx, max, read)
    }

    /// Writes `bufs` straight to the socket; when it is full, waits for room through a second,
    /// write-only registration that lasts until the write goes through.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, bufs, None)
    }

    /// [`UnixConnection::poll_write_vectored`], with `fd` attached to the first byte if given.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        fd: Option<BorrowedFd<'_>>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match send_with(self.io.get_ref(), bufs, fd) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => {
                    self.writable = None;
                    return Poll::Ready(result);
                }
            }
            if self.writable.is_none() {
                let clone = self.io.get_ref().try_clone()?;
                self.writable = Some(register(clone, Interest::WRITABLE)?);
            }
            if let Some(writable) = &self.writable {
                let mut guard = ready!(writable.poll_write_ready(cx))?;
                guard.clear_ready();
            }
        }
    }
}

impl AsFd for LocalStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            LocalStream::Unix(s) => s.io.get_ref().as_fd(),
            LocalStream::Tcp(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for LocalStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LocalStream::Unix(unix) => {
                let want = buf.remaining().min(READ_CHUNK);
                ready!(unix.poll_read_with(cx, want, |bytes| buf.put_slice(bytes)))?;
                Poll::Ready(Ok(()))
            }
            LocalStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LocalStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LocalStream::Unix(unix) => unix.poll_write_vectored(cx, &[io::IoSlice::new(buf)]),
            LocalStream::Tcp(s) => poll_send_tcp(s, cx, &[io::IoSlice::new(buf)]),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LocalStream::Unix(unix) => unix.poll_write_vectored(cx, bufs),
            LocalStream::Tcp(s) => poll_send_tcp(s, cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LocalStream::Unix(_) => Poll::Ready(Ok(())),
            LocalStream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LocalStream::Unix(unix) => {
                Poll::Ready(unix.io.get_ref().shutdown(std::net::Shutdown::Write))
            }
            LocalStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Reads at most `max` bytes of `socket` into the thread's scratch buffer and hands them to
/// `take`, keeping the descriptors that came with them in `inbox` if given.
fn read_via_scratch(
    socket: impl AsFd,
    inbox: Option<&mut Inbox>,
    max: usize,
    take: &mut impl FnMut(&[u8]),
) -> io::Result<Read> {
    SCRATCH.with_borrow_mut(|scratch| {
        if scratch.len() < max {
            scratch.resize(max, 0);
        }
        let room = &mut scratch[..max];
        let read = match inbox {
            None => Read::plain(rustix::io::read(socket, &mut *room)?),
            Some(inbox) => {
                let (n, with_fds) = receive_with_descriptors(socket, room, inbox)?;
                Read {
                    n,
                    may_have_more: with_fds,
                }
            }
        };
        take(&scratch[..read.n]);
        Ok(read)
    })
}

/// What one read of a Unix socket came to.
struct Read {
    /// Bytes read.
    n: usize,
    /// Whether more may be waiting even if the read was short.
    may_have_more: bool,
}

impl Read {
    /// A plain read, which is short only when the socket is drained.
    fn plain(n: usize) -> Self {
        Read {
            n,
            may_have_more: false,
        }
    }
}

/// Reads into `buf` with `recvmsg`, keeping any descriptors the peer sent in `inbox`. Returns
/// the bytes read and whether descriptors came with them: the kernel ends a read after the bytes
/// a descriptor came with, however much more is waiting, so such a short read does not mean the
/// socket is drained (and must not clear its readiness: no new event would come for the rest).
fn receive_with_descriptors(
    socket: impl AsFd,
    buf: &mut [u8],
    inbox: &mut Inbox,
) -> io::Result<(usize, bool)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space =
        [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(DESCRIPTORS_PER_READ))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        socket,
        &mut [io::IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut with_fds = received.flags.contains(ReturnFlags::CTRUNC);
    inbox.truncated |= with_fds;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            inbox.fds.extend(fds);
            with_fds = true;
        }
    }
    Ok((received.bytes, with_fds))
}

/// Waits until `io` is readable and runs `read`, which reads at most `max` bytes and returns how
/// many; retries if the readiness was stale.
fn poll_read_ready_with(
    io: &AsyncFd<std::os::unix::net::UnixStream>,
    cx: &mut Context<'_>,
    max: usize,
    mut read: impl FnMut(&std::os::unix::net::UnixStream) -> io::Result<Read>,
) -> Poll<io::Result<usize>> {
    loop {
        let mut guard = ready!(io.poll_read_ready(cx))?;
        match guard.try_io(|io| read(io.get_ref())) {
            Ok(Ok(Read { n, may_have_more })) => {
                if n < max && !may_have_more {
                    // Drained: wait for the next readiness event before reading again.
                    guard.clear_ready();
                }
                return Poll::Ready(Ok(n));
            }
            Ok(Err(err)) => return Poll::Ready(Err(err)),
            Err(_would_block) => continue,
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The smaller of the kernel's caps on socket buffers.
    fn caps() -> usize {
        let cap = |name: &str| -> usize {
            let text = std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .expect("reads the cap");
            text.trim().parse().expect("a number")
        };
        cap("wmem_max").min(cap("rmem_max"))
    }

    #[tokio::test]
    async fn tune_reports_the_unix_buffer_granted_and_the_kernels_cap_on_it() {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let stream = LocalStream::unix(a).expect("registers");
        // Below any distribution's cap: granted as asked.
        assert_eq!(stream.tune(64 * 1024).expect("tunes"), Some(64 * 1024));
        // Above the caps: the cap (on this machine both are 4 MiB, on many 212992 bytes).
        let caps = caps();
        assert!(
            caps < 1 << 30,
            "caps of {caps} bytes leave nothing to check"
        );
        assert_eq!(stream.tune(1 << 30).expect("tunes"), Some(caps));
        // Nothing asked: nothing said.
        assert_eq!(stream.tune(0).expect("tunes"), None);
    }

    #[tokio::test]
    async fn tune_reports_nothing_for_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let client = TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connects");
        let stream = LocalStream::tcp(client).expect("wraps");
        assert_eq!(stream.tune(1 << 20).expect("tunes"), None);
    }
}
