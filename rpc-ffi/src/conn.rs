//! [`Conn`], what an `rpc_conn *` points to: a server to call, its clients, and the runtime the
//! calls run on.
//!
//! Calls run on the caller's own thread: each `rpc_call` is a `block_on` on the handle's
//! current-thread runtime, so there is no extra thread and no cross-thread wake-up per call.
//! Several threads may `block_on` at once: one drives the socket and the timers while the others
//! wait for their answers, which tokio supports on a current-thread runtime.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rpc_client::{Connector, JsonClient, JsonConnectError, with_backoff};
use rpc_core::services::introspect::IntrospectClient;
use rpc_core::tarpc::context;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::status::{Failure, RPC_ERR_INTERNAL, RPC_ERR_UNREACHABLE};
use crate::target;

/// A handle on one server (`rpc_conn` in C), opaque to callers: how to reach the server, a
/// connection per service called so far, and the runtime the calls on it run on.
pub struct Conn {
    /// The clients, by service, connected on each service's first call. Declared before
    /// `runtime` so they are dropped while it still exists.
    clients: Mutex<HashMap<String, JsonClient>>,
    connector: Connector,
    runtime: Runtime,
}

impl Conn {
    /// Resolves `target` and connects once, to the server's `introspect` service, so that a
    /// mistyped target or an absent server fails here with a clear error rather than at the
    /// first call.
    pub(crate) fn connect(
        target: &str,
        runtime_dir: Option<&str>,
        timeout: Duration,
    ) -> Result<Conn, Failure> {
        let connector = target::connector(target, runtime_dir)?.connect_timeout(timeout);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| {
                Failure::new(
                    RPC_ERR_INTERNAL,
                    format!("cannot start a tokio runtime: {err}"),
                )
            })?;
        runtime
            .block_on(connector.connect::<IntrospectClient>())
            .map_err(|err| Failure::error(RPC_ERR_UNREACHABLE, &err))?;
        Ok(Conn {
            clients: Mutex::new(HashMap::new()),
            connector,
            runtime,
        })
    }

    /// Calls `service.method` with `args`, all within `timeout`: connecting to the service on
    /// its first call, reconnecting (inside [`JsonClient::call`]) if the connection broke since
    /// the last one, then the call itself.
    pub(crate) fn call(
        &self,
        service: &str,
        method: &str,
        args: &Value,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        let deadline = Instant::now() + timeout;
        self.runtime.block_on(async {
            let client = self.client(service, deadline).await?;
            let mut ctx = context::current();
            ctx.deadline = deadline;
            // The channel fails the call at its deadline, and a reconnection inside it is cut
            // short there too (`Connector::until`).
            client
                .call(ctx, method, args)
                .await
                .map_err(|err| Failure::call(&err))
        })
    }

    /// The client for `service`, connected now if there is none. The lock is held only to look
    /// up or insert: a client is an `Arc` inside, cloned out and called without it.
    async fn client(&self, service: &str, deadline: Instant) -> Result<JsonClient, Failure> {
        if let Some(client) = self.clients().get(service) {
            return Ok(client.clone());
        }
        let client = self.connect_service(service, deadline).await?;
        // Two threads may have connected at once; the first one in is kept.
        Ok(self
            .clients()
            .entry(service.to_owned())
            .or_insert(client)
            .clone())
    }

    /// Connects a [`JsonClient`] to `service`, trying again with backoff while the server may
    /// be coming back (restarting), until `deadline`. The client reconnects on its own after
    /// that.
    async fn connect_service(
        &self,
        service: &str,
        deadline: Instant,
    ) -> Result<JsonClient, Failure> {
        let connector = self.connector.until(deadline);
        with_backoff(deadline, JsonConnectError::retry_later, || {
            JsonClient::connect(&connector, service)
        })
        .await
        .map_err(|err| Failure::connect(&err))
    }

    /// The clients, even after a panic while the lock was held (see `boundary.rs`).
    fn clients(&self) -> MutexGuard<'_, HashMap<String, JsonClient>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
