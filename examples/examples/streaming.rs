//! Streams: a service method that answers with many items, and the built-in `kv.watch`.
//!
//! `cargo run -p examples --example streaming`
//!
//! The server's handler returns `Streaming<T>`; the client's method returns a subscription, a
//! `Stream` of `StreamEvent`s that ends after the last item. The server produces only as fast
//! as the client takes items (credit), and dropping the subscription stops the producer.

/// The contract: what a shared crate would hold.
mod shared {
    use rpc_core::Streaming;

    /// Counts.
    #[rpc_core::service(name = "counter")]
    pub trait Counter {
        /// The numbers from 0 up to `to`, one item each.
        async fn count(to: u64) -> Streaming<u64>;
    }
}

use futures::StreamExt;
use rpc_client::{Client, Connector, Target};
use rpc_core::services::kv::{KvClient, KvEvent};
use rpc_core::tarpc::context::{self, Context};
use rpc_core::{ServerLocation, StreamEvent, Streaming};
use rpc_server::{Server, ServerConfig};
use shared::{Counter, CounterClient};

/// The server side.
#[derive(Clone)]
struct Counting;

impl Counter for Counting {
    async fn count(self, _: Context, to: u64) -> Streaming<u64> {
        // Any `Stream` of items; `Streaming::broadcast(receiver)` for a tokio broadcast (as
        // `kv.watch` does), `Streaming::failed(error)` to refuse.
        Streaming::new(futures::stream::iter(0..to))
    }
}

/// Adds up what `count` streams.
async fn sum(client: &Client<CounterClient>, to: u64) -> anyhow::Result<u64> {
    let mut numbers = client.count(context::current(), to).await?;
    let mut sum = 0;
    while let Some(event) = numbers.next().await {
        match event? {
            StreamEvent::Item(n) => sum += n,
            StreamEvent::Lagged { missed } => eprintln!("lost {missed} items"),
            StreamEvent::End => break, // never yielded: the subscription ends with `None`
        }
    }
    Ok(sum)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runtime_dir = tempfile::tempdir()?;
    let location = ServerLocation::new(Some(runtime_dir.path().to_owned()), "streaming")?;

    let mut server = Server::new(ServerConfig::new(location.clone()));
    server.add(|_| Counting.serve());
    rpc_server::add_builtin_services(&mut server);
    let bound = server.bind()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run_until(async {
        let _ = stopped.await;
    }));
    let connector = Connector::new(Target::Name(location));

    let counter = connector.connect::<CounterClient>().await?;
    println!("0 + 1 + ... + 99 = {}", sum(&counter, 100).await?);

    // Watch `kv` while another connection changes it.
    let kv = connector.connect::<KvClient>().await?;
    let mut changes = kv.watch(context::current(), "greeting".into()).await?;
    let writer = connector.connect::<KvClient>().await?;
    writer
        .set(context::current(), "greeting".into(), "hello".into())
        .await??;
    writer.delete(context::current(), "greeting".into()).await?;
    for _ in 0..2 {
        match changes.next().await {
            Some(Ok(StreamEvent::Item(KvEvent::Set { key, value }))) => {
                println!("watch: {key} = {value}")
            }
            Some(Ok(StreamEvent::Item(KvEvent::Delete { key }))) => {
                println!("watch: {key} deleted")
            }
            other => anyhow::bail!("expected a change, got {other:?}"),
        }
    }
    // Dropping the subscription cancels it: the server drops its producer.
    drop(changes);

    let _ = stop.send(());
    serving.await?;
    Ok(())
}
