//! [`BlockingClient`]: calls from a program without an async runtime, such as a UI thread.

use rpc_core::ServiceClient;
use tarpc::context;

use crate::connect::Connector;
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
#[derive(Debug)]
pub struct BlockingClient<C> {
    runtime: tokio::runtime::Runtime,
    client: C,
}

impl<C: ServiceClient> BlockingClient<C> {
    /// Connects, blocking the calling thread for at most the connector's timeout.
    pub fn connect(connector: Connector) -> Result<Self, ConnectError> {
        // One thread of our own: the connection's dispatch task runs there between calls, so the
        // caller's thread is only blocked while its call is in flight.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rpc-client")
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let client = runtime.block_on(connector.connect::<C>())?;
        Ok(BlockingClient { runtime, client })
    }

    /// Runs one call to completion: `f` gets the client and a fresh context (10 s deadline; set
    /// `ctx.deadline` to change it).
    pub fn call<T>(&self, f: impl AsyncFnOnce(&C, context::Context) -> T) -> T {
        self.runtime.block_on(f(&self.client, context::current()))
    }

    /// The async client inside, for callers that have a runtime after all.
    pub fn get_ref(&self) -> &C {
        &self.client
    }
}
