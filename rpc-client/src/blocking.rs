//! [`BlockingClient`]: calls from a program without an async runtime, such as a UI thread, and
//! [`BlockingSubscription`]: a stream's items as an iterator.

use std::sync::Arc;

use futures::StreamExt;
use rpc_core::{Service, StreamEvent, Subscription};
use tarpc::client::RpcError;
use tarpc::context;

use crate::connect::{Connector, Reconnecting};
use crate::error::ConnectError;

/// A connected client plus the small runtime that drives it; every call blocks until answered.
///
/// It reconnects on its own as [`Connector::reconnecting`]'s client does: a call made after the
/// server restarted reconnects first, with backoff, within the call's deadline; a call in flight
/// when the connection broke fails with [`CallInterrupted`](crate::CallInterrupted) unless it
/// was marked idempotent ([`BlockingClient::connect_with_retry`]).
///
/// It may be created, called and dropped anywhere, including on a thread that runs a tokio
/// runtime (an async command handler in a desktop framework): its own runtime then runs on a
/// short-lived helper thread for the duration of the call, and the calling thread blocks.
/// Outside a runtime the call runs on the caller's thread, with no thread of its own.
///
/// ```no_run
/// use rpc_client::{BlockingClient, Connector};
/// use rpc_core::services::kv::KvClient;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let kv = BlockingClient::<KvClient>::connect(Connector::from_env("rpc")?)?;
/// let value = kv.call(async |kv, ctx| kv.get(ctx, "greeting".into()).await)?;
/// # Ok(()) }
/// ```
pub struct BlockingClient<C: Service> {
    // Dropped before the runtime whose reactor its socket is registered with.
    client: Reconnecting<C>,
    /// Shared with the client's subscriptions, which block on it too.
    runtime: Arc<ClientRuntime>,
}

impl<C: Service> std::fmt::Debug for BlockingClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("service", &C::NAME)
            .finish_non_exhaustive()
    }
}

impl<C: Service> BlockingClient<C>
where
    // Always true of a generated client (a wrapper of its stub); said here because a call made
    // on a thread that runs a tokio runtime lends the client to a helper thread.
    Reconnecting<C>: Send + Sync,
{
    /// Connects, blocking the calling thread for at most the connector's timeout. A server that
    /// is not there fails here; later calls reconnect on their own.
    pub fn connect(connector: Connector) -> Result<Self, ConnectError> {
        Self::start(
            async move |connector| connector.reconnecting::<C>().await,
            connector,
        )
    }

    /// As [`BlockingClient::connect`], and a call in flight when its connection broke is sent
    /// again, once, if `idempotent` says it is safe to run twice (see
    /// [`Connector::reconnecting_with_retry`]).
    pub fn connect_with_retry(
        connector: Connector,
        idempotent: fn(&C::Request) -> bool,
    ) -> Result<Self, ConnectError> {
        Self::start(
            async move |connector| connector.reconnecting_with_retry::<C>(idempotent).await,
            connector,
        )
    }

    fn start(
        connect: impl AsyncFnOnce(Connector) -> Result<Reconnecting<C>, ConnectError> + Send,
        connector: Connector,
    ) -> Result<Self, ConnectError> {
        // No thread of our own: a call does its own I/O, on the caller's thread, inside
        // `block_on`; between calls nothing needs to run.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let runtime = ClientRuntime(Some(runtime));
        let client = runtime.block_on(|| connect(connector))?;
        Ok(BlockingClient {
            client,
            runtime: Arc::new(runtime),
        })
    }

    /// Runs one call to completion: `f` gets the client and a fresh context (10 s deadline; set
    /// `ctx.deadline` to change it). The client's socket is driven by this value's own runtime,
    /// which runs only inside `call`, so the client is lent to `f` rather than handed out: a
    /// program with a runtime of its own connects with [`Connector::connect`] instead.
    pub fn call<T: Send>(
        &self,
        f: impl AsyncFnOnce(&Reconnecting<C>, context::Context) -> T + Send,
    ) -> T {
        self.runtime
            .block_on(|| f(&self.client, context::current()))
    }

    /// Opens a stream, e.g. `kv.watch`, and returns its items as an iterator: `f` gets the
    /// client and a fresh context (its deadline bounds opening the stream, not how long it
    /// lasts) and returns the generated method's [`Subscription`].
    ///
    /// Each `next()` blocks until the next item arrives; the iterator yields
    /// `Ok(StreamEvent::Item(_))` or `Ok(StreamEvent::Lagged { .. })`, an error as its last item
    /// (the server refused or ended the stream with one, or the connection was lost), and then
    /// `None`. A stream does not survive a reconnect (see [`crate::ReconnectingChannel`]):
    /// after a connection error, subscribe again. Dropping the iterator cancels the stream.
    ///
    /// Between `next()` calls nothing runs: the server sends up to the stream's window
    /// ([`Connector::stream_window`]) ahead and then waits, so a consumer that pauses costs
    /// neither side more than that. Calls made with [`BlockingClient::call`] meanwhile are
    /// answered; they also read the stream's items that arrived, which then wait for `next()`.
    ///
    /// The iterator holds this client's runtime, not the client: it may outlive the client,
    /// and move to another thread.
    ///
    /// ```no_run
    /// use rpc_client::{BlockingClient, Connector};
    /// use rpc_core::StreamEvent;
    /// use rpc_core::services::kv::{KvClient, KvEvent};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let kv = BlockingClient::<KvClient>::connect(Connector::from_env("rpc")?)?;
    /// let changes = kv.subscribe(async |kv, ctx| kv.watch(ctx, "config/".into()).await)?;
    /// for change in changes {
    ///     match change? {
    ///         StreamEvent::Item(KvEvent::Set { key, value }) => println!("{key} = {value}"),
    ///         StreamEvent::Item(KvEvent::Delete { key }) => println!("{key} deleted"),
    ///         StreamEvent::Lagged { missed } => println!("missed {missed} changes: re-read"),
    ///         // Never yielded: the subscription ends with `None` instead.
    ///         StreamEvent::End => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe<T: Send + 'static>(
        &self,
        f: impl AsyncFnOnce(&Reconnecting<C>, context::Context) -> Result<Subscription<T>, RpcError>
        + Send,
    ) -> Result<BlockingSubscription<T>, RpcError> {
        let events = self.call(f)?;
        Ok(BlockingSubscription {
            events,
            runtime: self.runtime.clone(),
        })
    }
}

/// A stream's items, one blocking `next()` at a time, from [`BlockingClient::subscribe`].
/// Dropping it tells the server to stop the stream.
pub struct BlockingSubscription<T> {
    // Dropped before the runtime: its cancel is written to a socket that runtime drives.
    events: Subscription<T>,
    runtime: Arc<ClientRuntime>,
}

impl<T> std::fmt::Debug for BlockingSubscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSubscription")
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<T: Send> Iterator for BlockingSubscription<T> {
    type Item = Result<StreamEvent<T>, RpcError>;

    /// Blocks until the stream's next item, its error, or its end (`None`, and `None` from then
    /// on). The client's runtime runs meanwhile, as it does inside [`BlockingClient::call`].
    fn next(&mut self) -> Option<Self::Item> {
        let events = &mut self.events;
        self.runtime.block_on(|| events.next())
    }
}

/// A client's current-thread runtime: it runs only inside a blocking call or `next()`, on the
/// caller's thread. Shared by a [`BlockingClient`] and its [`BlockingSubscription`]s, and
/// dropped with the last of them.
struct ClientRuntime(
    /// `None` only while dropping (see the `Drop` impl).
    Option<tokio::runtime::Runtime>,
);

impl ClientRuntime {
    /// Runs the future `make` makes on this runtime, on this thread; or, when this thread
    /// already runs a tokio runtime (where `block_on` would panic), on a helper thread while
    /// this one waits.
    fn block_on<F: Future<Output: Send>>(&self, make: impl FnOnce() -> F + Send) -> F::Output {
        let runtime = self
            .0
            .as_ref()
            .expect("the runtime is taken only when dropping");
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(make());
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(make()))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        let Some(runtime) = self.0.take() else {
            return;
        };
        // Dropping a runtime waits for its tasks, which tokio forbids on a thread that runs
        // another runtime; there it is shut down without waiting (its only task, the
        // connection's watcher, holds nothing that needs an orderly end).
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use futures::SinkExt;
    use rpc_core::services::kv::{KvClient, KvEvent, KvRequest, KvResponse};
    use rpc_core::wire::ClientMessage;
    use rpc_core::{Endpoint, LocalStream, WireTransport};
    use tarpc::Response;
    use tokio::net::UnixListener;

    use super::*;
    use crate::fake_server::{self, SocketPath};

    type Server = WireTransport<LocalStream, ClientMessage<KvRequest>, Response<KvResponse>>;

    /// What the fake kv server saw, reported to the test.
    #[derive(Debug, PartialEq)]
    enum Saw {
        Watch { prefix: String, window: u64 },
        Cancel,
    }

    /// A fake kv server on its own thread and runtime: accepts one connection, then for each
    /// watch sends `items` changes; the first watch it then leaves open until cancelled, the
    /// second it ends by closing the connection.
    fn fake_kv_server(listener: std::os::unix::net::UnixListener, saw: mpsc::Sender<Saw>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            listener.set_nonblocking(true).expect("non-blocking");
            let listener = UnixListener::from_std(listener).expect("registers");
            let mut server: Server = fake_server::accept(&listener, "kv").await;
            for round in 0..2 {
                let Some(Ok(ClientMessage::Request(request))) = server.next().await else {
                    panic!("expected a watch");
                };
                let KvRequest::Watch { prefix } = request.message else {
                    panic!("expected a watch, got {:?}", request.message);
                };
                let Some(Ok(ClientMessage::Grant { bytes, .. })) = server.next().await else {
                    panic!("expected the watch's grant");
                };
                saw.send(Saw::Watch {
                    prefix,
                    window: bytes,
                })
                .expect("the test listens");
                for n in 0..2 {
                    let change = KvEvent::Set {
                        key: format!("k{n}"),
                        value: format!("{round}"),
                    };
                    let item = Response {
                        request_id: request.id,
                        message: Ok(KvResponse::Watch(StreamEvent::Item(change))),
                    };
                    server.send(item).await.expect("sent");
                }
                if round == 0 {
                    let Some(Ok(ClientMessage::Cancel { request_id, .. })) = server.next().await
                    else {
                        panic!("expected the watch's cancel");
                    };
                    assert_eq!(request_id, request.id);
                    saw.send(Saw::Cancel).expect("the test listens");
                }
            }
        });
    }

    fn set(key: &str, value: &str) -> StreamEvent<KvEvent> {
        StreamEvent::Item(KvEvent::Set {
            key: key.into(),
            value: value.into(),
        })
    }

    #[test]
    fn a_blocking_subscription_iterates_the_items_cancels_on_drop_and_outlives_its_client() {
        let path = SocketPath::new("blocking");
        let listener = std::os::unix::net::UnixListener::bind(&path.0).expect("binds");
        let (saw, seen) = mpsc::channel();
        let server = std::thread::spawn(move || fake_kv_server(listener, saw));
        let connector = Connector::endpoint(Endpoint::Unix(path.0.clone())).expect("a connector");
        let kv = BlockingClient::<KvClient>::connect(connector).expect("connects");

        let mut changes = kv
            .subscribe(async |kv, ctx| kv.watch(ctx, "k".into()).await)
            .expect("the watch opens");
        let watch = Saw::Watch {
            prefix: "k".into(),
            window: crate::DEFAULT_STREAM_WINDOW,
        };
        assert_eq!(seen.recv().expect("the server saw the watch"), watch);
        assert_eq!(
            changes.next().map(|c| c.expect("a change")),
            Some(set("k0", "0"))
        );
        drop(changes);
        assert_eq!(seen.recv().expect("the server saw the cancel"), Saw::Cancel);

        let changes = kv
            .subscribe(async |kv, ctx| kv.watch(ctx, "k".into()).await)
            .expect("the watch opens");
        assert_eq!(seen.recv().expect("the server saw the watch"), watch);
        // The subscription holds the runtime that drives its connection, not the client.
        drop(kv);
        let got: Vec<_> = changes
            .map(|c| c.map_err(|err| format!("{err:?}")))
            .collect();
        assert_eq!(
            got,
            [
                Ok(set("k0", "1")),
                Ok(set("k1", "1")),
                Err("Shutdown".to_owned())
            ]
        );
        server.join().expect("the fake server ran");
    }
}
