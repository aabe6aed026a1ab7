//! [`LocalStream`]: one connected socket, Unix or TCP, behind one type.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Default kernel send and receive buffer for each Unix socket connection: 1 MiB. The kernel's
/// default (about 200 KiB) cuts a large message into many small round trips, while TCP loopback
/// autotunes its buffers to megabytes; this is most of why stock tarpc is slower over a Unix
/// socket than over TCP for large payloads.
pub const DEFAULT_SOCKET_BUFFER: usize = 1024 * 1024;

/// A connected socket of either kind. Both sides wrap it in a codec; neither cares which it is.
#[derive(Debug)]
pub enum LocalStream {
    /// A Unix domain stream socket.
    Unix(UnixStream),
    /// A TCP loopback socket.
    Tcp(TcpStream),
}

impl LocalStream {
    /// Tunes a freshly connected socket for RPC: no Nagle delay on TCP, and buffers large enough
    /// that a large message is not chopped into many small kernel round trips on a Unix socket
    /// (whose default send buffer is about 200 KiB, against TCP loopback's autotuned megabytes).
    pub fn tune(&self, socket_buffer: usize) -> io::Result<()> {
        let sock = match self {
            LocalStream::Unix(s) => socket2::SockRef::from(s),
            LocalStream::Tcp(s) => {
                s.set_nodelay(true)?;
                return Ok(());
            }
        };
        if socket_buffer > 0 {
            sock.set_send_buffer_size(socket_buffer)?;
            sock.set_recv_buffer_size(socket_buffer)?;
        }
        Ok(())
    }
}

impl AsFd for LocalStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            LocalStream::Unix(s) => s.as_fd(),
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
            LocalStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
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
            LocalStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            LocalStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LocalStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            LocalStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            LocalStream::Unix(s) => s.is_write_vectored(),
            LocalStream::Tcp(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LocalStream::Unix(s) => Pin::new(s).poll_flush(cx),
            LocalStream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LocalStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            LocalStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
