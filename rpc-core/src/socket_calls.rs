//! The system calls a [`crate::LocalStream`] makes that need none of its state: every write a
//! `sendmsg` with `MSG_NOSIGNAL` (with a descriptor attached, for the lane), the hang-up probe,
//! and `SO_NOSIGPIPE` where `MSG_NOSIGNAL` does not exist. Public through [`crate::stream`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Writes `bufs` to a socket as one `sendmsg` with `MSG_NOSIGNAL`: a peer that has gone makes
/// it fail with `EPIPE`, never raise SIGPIPE. std's and tokio's `write_vectored` are a plain
/// `writev`, whose SIGPIPE kills a host that keeps the signal's default action (a C, C++ or Go
/// program embedding this client) on the first write after its server died. Apple systems have
/// no `MSG_NOSIGNAL`; their sockets are marked `SO_NOSIGPIPE` when wrapped instead.
pub fn send_vectored(socket: impl AsFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    send_with(socket, bufs, None)
}

/// [`send_vectored`], with `fd` attached (`SCM_RIGHTS`) if given.
pub(crate) fn send_with(
    socket: impl AsFd,
    bufs: &[io::IoSlice<'_>],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<usize> {
    #[cfg(not(any(target_vendor = "apple", windows)))]
    let flags = rustix::net::SendFlags::NOSIGNAL;
    #[cfg(any(target_vendor = "apple", windows))]
    let flags = rustix::net::SendFlags::empty();
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("no room for a descriptor"));
        }
    }
    Ok(rustix::net::sendmsg(socket, bufs, &mut control, flags)?)
}

/// Whether the peer of a connected socket has hung up, asked of the kernel without waiting:
/// a one-byte `recv` with `MSG_PEEK | MSG_DONTWAIT`, which reads the end of the stream (or a
/// reset) when the peer closed, and leaves any bytes that did arrive where they are.
///
/// It does not depend on the runtime's readiness: a client on a current-thread runtime that
/// runs only inside `block_on` (a UI thread calling now and then) has no reactor running
/// between calls to have noticed the hang-up. Bytes still unread before the end of the stream
/// count as not hung up: they are read first.
pub fn peer_hung_up(socket: impl AsFd) -> bool {
    let mut byte = [0u8; 1];
    let flags = rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT;
    match rustix::net::recv(socket, &mut byte[..], flags) {
        Ok((_, 0)) => true,
        Ok(_) => false,
        Err(err) => err != rustix::io::Errno::AGAIN && err != rustix::io::Errno::INTR,
    }
}

/// Marks a socket `SO_NOSIGPIPE` where `MSG_NOSIGNAL` does not exist (Apple systems).
pub(crate) fn no_sigpipe(socket: impl AsFd) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    rustix::net::sockopt::set_socket_nosigpipe(&socket, true)?;
    let _ = socket;
    Ok(())
}

/// [`send_vectored`] on a tokio TCP stream, waiting for room when the socket is full.
pub(crate) fn poll_send_tcp(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_io(Interest::WRITABLE, || send_vectored(stream, bufs)) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}
