//! The `tarpc` reference: stock tarpc 0.38 as its examples use it (`serde_transport::unix` and
//! `tcp`, bincode, default settings but one), serving and calling the same `echo` trait. The one:
//! its frame limit, 8 MiB by default (tokio's length-delimited codec), is raised to
//! [`MAX_FRAME`] on both sides, so that it can echo the large payload (see `large_payload.rs`);
//! the limit only bounds a frame's length and costs nothing below it.

use std::path::Path;

use futures::StreamExt;
use futures::future::ready;
use rpc_core::Endpoint;
use rpc_core::services::echo::{Echo, EchoClient};
use serde_bytes::ByteBuf;
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;

/// The largest frame either side takes: room for the largest payload `--payload` takes.
const MAX_FRAME: usize = 2 * crate::large_payload::MAX_PAYLOAD;

#[derive(Clone)]
struct StockEcho;

impl Echo for StockEcho {
    async fn ping(self, _: Context) {}

    async fn echo(self, _: Context, bytes: ByteBuf) -> ByteBuf {
        bytes
    }

    async fn delay(self, _: Context, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    /// Stock tarpc has no streams: its server answers this method with an error
    /// (`Answer::into_single`), and the bench does not call it.
    async fn stream(self, _: Context, _: u64, _: Option<u64>) -> rpc_core::Streaming<ByteBuf> {
        rpc_core::Streaming::new(futures::stream::empty())
    }
}

/// Serves stock-tarpc echo on `<dir>/tarpc.sock` and 127.0.0.1:0 until killed.
pub async fn serve(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("tarpc.sock");
    let mut unix = tarpc::serde_transport::unix::listen(&path, Bincode::default).await?;
    unix.config_mut().max_frame_length(MAX_FRAME);
    let mut tcp = tarpc::serde_transport::tcp::listen("127.0.0.1:0", Bincode::default).await?;
    tcp.config_mut().max_frame_length(MAX_FRAME);
    println!("listening on unix:{}", path.display());
    println!("listening on tcp:{}", tcp.local_addr());
    let unix = unix.filter_map(|r| ready(r.ok())).map(|t| {
        BaseChannel::with_defaults(t)
            .execute(StockEcho.serve())
            .for_each(spawn)
    });
    let tcp = tcp.filter_map(|r| ready(r.ok())).map(|t| {
        BaseChannel::with_defaults(t)
            .execute(StockEcho.serve())
            .for_each(spawn)
    });
    tokio::join!(
        unix.for_each(|c| async {
            tokio::spawn(c);
        }),
        tcp.for_each(|c| async {
            tokio::spawn(c);
        })
    );
    Ok(())
}

async fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(fut);
}

/// Connects a stock-tarpc echo client.
pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<EchoClient> {
    let config = tarpc::client::Config::default();
    Ok(match endpoint {
        Endpoint::Unix(path) => {
            let mut connect = tarpc::serde_transport::unix::connect(path, Bincode::default);
            connect.config_mut().max_frame_length(MAX_FRAME);
            EchoClient::new(config, connect.await?).spawn()
        }
        Endpoint::Tcp(addr) => {
            let mut connect = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
            connect.config_mut().max_frame_length(MAX_FRAME);
            EchoClient::new(config, connect.await?).spawn()
        }
    })
}
