//! The `raw` baseline: a length-prefixed echo with no RPC layer, in the same async style (tokio,
//! one task per connection, the same socket tuning as the framework). What it costs is the
//! kernel-plus-runtime floor the framework's overhead is measured against.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rpc_core::stream::DEFAULT_SOCKET_BUFFER;
use rpc_core::{Endpoint, LocalStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::steady_state::SteadyState;

/// Read buffer of each side: lets a small frame's header and body arrive in one read.
const READ_BUFFER: usize = 64 * 1024;

/// Serves raw echo on `<dir>/raw.sock` and 127.0.0.1:0 until killed.
pub async fn serve(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("raw.sock");
    let unix = UnixListener::bind(&path)?;
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on unix:{}", path.display());
    println!("listening on tcp:{}", tcp.local_addr()?);
    loop {
        let stream = tokio::select! {
            s = unix.accept() => LocalStream::unix(s?.0)?,
            s = tcp.accept() => LocalStream::Tcp(s?.0),
        };
        let _ = stream.tune(DEFAULT_SOCKET_BUFFER);
        tokio::spawn(async move {
            let _ = echo_connection(stream).await;
        });
    }
}

async fn echo_connection(stream: LocalStream) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let mut frame = Vec::new();
    loop {
        let len = read.read_u32().await? as usize;
        frame.clear();
        frame.extend_from_slice(&(len as u32).to_be_bytes());
        frame.resize(4 + len, 0);
        read.read_exact(&mut frame[4..]).await?;
        write.write_all(&frame).await?;
    }
}

/// One client connection to the raw echo server.
pub struct RawConnection {
    read: BufReader<ReadHalf<LocalStream>>,
    write: WriteHalf<LocalStream>,
}

impl RawConnection {
    /// Connects to `endpoint`.
    pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let stream = match endpoint {
            Endpoint::Unix(path) => LocalStream::unix(UnixStream::connect(path).await?)?,
            Endpoint::Tcp(addr) => LocalStream::Tcp(TcpStream::connect(addr).await?),
        };
        let _ = stream.tune(DEFAULT_SOCKET_BUFFER);
        let (read, write) = tokio::io::split(stream);
        Ok(RawConnection {
            read: BufReader::with_capacity(READ_BUFFER, read),
            write,
        })
    }

    /// One echo: sends `frame` (length prefix included), reads the echo back into `reply`.
    pub async fn echo(&mut self, frame: &[u8], reply: &mut Vec<u8>) -> anyhow::Result<()> {
        self.write.write_all(frame).await?;
        read_frame(&mut self.read, reply).await?;
        anyhow::ensure!(
            reply.len() + 4 == frame.len(),
            "raw echo came back truncated"
        );
        Ok(())
    }

    /// Keeps `in_flight` echoes of `frame` outstanding until `state` says stop, telling it of
    /// each answer, and that it is going once the first `in_flight` frames are written.
    pub async fn pipeline(
        self,
        frame: Arc<Vec<u8>>,
        in_flight: usize,
        state: &Arc<SteadyState>,
    ) -> anyhow::Result<()> {
        let RawConnection {
            mut read,
            mut write,
        } = self;
        let window = Arc::new(Semaphore::new(in_flight));
        // One message per frame written, so the reader knows exactly how many echoes it is owed.
        let (owed_tx, mut owed) = tokio::sync::mpsc::unbounded_channel::<()>();
        let writer = {
            let (window, state) = (window.clone(), state.clone());
            tokio::spawn(async move {
                let mut written = 0;
                while written < in_flight || !state.stopped() {
                    window.acquire().await?.forget();
                    write.write_all(&frame).await?;
                    let _ = owed_tx.send(());
                    written += 1;
                    if written == in_flight {
                        state.going();
                    }
                }
                anyhow::Ok(())
            })
        };
        let mut reply = Vec::new();
        while owed.recv().await.is_some() {
            read_frame(&mut read, &mut reply).await?;
            state.answered();
            window.add_permits(1);
        }
        writer.await.context("raw writer task")??;
        Ok(())
    }
}

async fn read_frame(
    read: &mut BufReader<ReadHalf<LocalStream>>,
    reply: &mut Vec<u8>,
) -> std::io::Result<()> {
    let len = read.read_u32().await? as usize;
    reply.resize(len, 0);
    read.read_exact(reply).await?;
    Ok(())
}

/// A raw frame: 4-byte big-endian length, then `payload` bytes.
pub fn frame(payload: usize) -> Vec<u8> {
    let mut frame = (payload as u32).to_be_bytes().to_vec();
    frame.extend((0..payload).map(|i| i as u8));
    frame
}
