//! [`BlockingClient`]: calls from a program without an async runtime, such as a UI thread.

use rpc_core::Service;
use tarpc::context;

use crate::connect::{Client, Connector};
use crate::error::ConnectError;

/// A connected client plus the small runtime that drives it; every call blocks until answered.
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
    runtime: tokio::runtime::Runtime,
    client: Client<C>,
}

impl<C: Service> std::fmt::Debug for BlockingClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingClient")
            .field("service", &C::NAME)
            .finish_non_exhaustive()
    }
}

impl<C: Service> BlockingClient<C> {
    /// Connects, blocking the calling thread for at most the connector's timeout.
    pub fn connect(connector: Connector) -> Result<Self, ConnectError> {
        // No thread of our own: a call does its own I/O, on the caller's thread, inside
        // `block_on`; between calls nothing needs to run.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let client = runtime.block_on(connector.connect::<C>())?;
        Ok(BlockingClient { runtime, client })
    }

    /// Runs one call to completion: `f` gets the client and a fresh context (10 s deadline; set
    /// `ctx.deadline` to change it). The client's socket is driven by this value's own runtime,
    /// which runs only inside `call`, so the client is lent to `f` rather than handed out: a
    /// program with a runtime of its own connects with [`Connector::connect`] instead.
    pub fn call<T>(&self, f: impl AsyncFnOnce(&Client<C>, context::Context) -> T) -> T {
        self.runtime.block_on(f(&self.client, context::current()))
    }
}
