//! [`BlockingClient`]: calls from a program without an async runtime, such as a UI thread.

use rpc_core::Service;
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
    /// `None` only while dropping (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    client: Reconnecting<C>,
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
        let client = block_on(&runtime, || connect(connector))?;
        Ok(BlockingClient {
            runtime: Some(runtime),
            client,
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
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime is taken only when dropping");
        block_on(runtime, || f(&self.client, context::current()))
    }
}

/// Runs the future `make` makes on `runtime`, on this thread; or, when this thread already runs
/// a tokio runtime (where `block_on` would panic), on a helper thread while this one waits.
fn block_on<F: Future<Output: Send>>(
    runtime: &tokio::runtime::Runtime,
    make: impl FnOnce() -> F + Send,
) -> F::Output {
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

impl<C: Service> Drop for BlockingClient<C> {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
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
