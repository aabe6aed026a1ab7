//! [`ReconnectingChannel`]: a tarpc stub that reconnects on its own after the server went away.
//!
//! What happens to a call depends on when the connection broke:
//! - broken before the call (the server restarted since the last call): the stub reconnects,
//!   with backoff, within the call's deadline, and sends the call on the new connection;
//! - broken while the call was in flight: the call fails with [`CallInterrupted`], because it
//!   may or may not have run on the server. Only calls the caller marked idempotent (see
//!   [`Connector::reconnecting_with_retry`]) are sent again. A call made in the instant
//!   between the server's death and this client noticing the closed socket is treated the same
//!   way: the client cannot tell it from one that reached the server.

use std::sync::Arc;
use std::time::Instant;

use rpc_core::FrameLimit;
use rpc_core::schema::SchemaHash;
use rpc_core::wire::WireFormat;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::client::RpcError;
use tarpc::client::stub::Stub;
use tarpc::{RequestName, context};
use tokio::sync::Mutex;

use crate::channel::Channel;
use crate::connect::Connector;
use crate::error::ConnectError;

/// The format idempotent requests are copied through to be sent again: the wire format, with
/// room for any frame a connection could carry.
const RESEND_FORMAT: WireFormat = WireFormat::new(FrameLimit::MAX);

pub use rpc_core::limits::{FIRST_RECONNECT_DELAY, MAX_RECONNECT_DELAY};

/// A call was in flight when its connection broke; it was not sent again.
#[derive(Debug, thiserror::Error)]
#[error(
    "the connection to the server broke while this call was in flight: it may or may not have run, and was not retried (mark idempotent calls with Connector::reconnecting_with_retry to retry them)"
)]
pub struct CallInterrupted;

/// A stub for generated clients that reconnects when the server went away; a client over one
/// comes from [`Connector::reconnecting`]: `connector.reconnecting::<KvClient>().await?`.
pub struct ReconnectingChannel<Req, Resp> {
    connector: Connector,
    service: String,
    /// The hash of the schema the client was built with: each reconnection checks it again,
    /// since a restarted server may run another version.
    schema: Option<SchemaHash>,
    live: Arc<Mutex<Channel<Req, Resp>>>,
    idempotent: Option<fn(&Req) -> bool>,
}

impl<Req, Resp> Clone for ReconnectingChannel<Req, Resp> {
    fn clone(&self) -> Self {
        ReconnectingChannel {
            connector: self.connector.clone(),
            service: self.service.clone(),
            schema: self.schema,
            live: self.live.clone(),
            idempotent: self.idempotent,
        }
    }
}

impl<Req, Resp> std::fmt::Debug for ReconnectingChannel<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingChannel")
            .field("target", self.connector.target())
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp> ReconnectingChannel<Req, Resp>
where
    Req: Serialize + DeserializeOwned + RequestName + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// Connects now; later calls reconnect as needed. A call in flight when its connection
    /// broke is resent, once, if `idempotent` says it is safe to run twice.
    pub(crate) async fn connect(
        connector: Connector,
        service: &str,
        schema: Option<SchemaHash>,
        idempotent: Option<fn(&Req) -> bool>,
    ) -> Result<Self, ConnectError> {
        let channel = connector.checked_channel(service, schema).await?;
        Ok(ReconnectingChannel {
            connector,
            service: service.to_owned(),
            schema,
            live: Arc::new(Mutex::new(channel)),
            idempotent,
        })
    }

    /// The current channel, reconnecting first (with backoff, until `deadline`) if it is dead.
    async fn channel(&self, deadline: Instant) -> Result<Channel<Req, Resp>, RpcError> {
        let mut live = self.live.lock().await;
        if live.is_usable() {
            return Ok(live.clone());
        }
        let connector = self.connector.until(deadline);
        let channel = with_backoff(deadline, ConnectError::retry_later, || {
            connector.checked_channel(&self.service, self.schema)
        })
        .await
        .map_err(|err| RpcError::Send(Box::new(err)))?;
        tracing::info!(service = %self.service, "reconnected");
        *live = channel;
        Ok(live.clone())
    }
}

/// Runs `attempt` until it succeeds, fails in a way `retry` says will not pass, or the next try
/// would start past `deadline`; waits [`FIRST_RECONNECT_DELAY`] after the first failure, twice
/// as long after each next one, at most [`MAX_RECONNECT_DELAY`]. Returns the last error.
///
/// The backoff every reconnecting client here uses, for code that connects on its own terms
/// (e.g. [`crate::JsonClient::connect`] to a server that may be restarting), with `retry` being
/// [`ConnectError::retry_later`] or [`crate::JsonConnectError::retry_later`]. It does not cut an
/// attempt short: connect with [`Connector::until`] the same deadline for that.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use rpc_client::{Connector, JsonClient, JsonConnectError, with_backoff};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let connector = Connector::from_env("rpc")?.until(deadline);
/// let kv = with_backoff(deadline, JsonConnectError::retry_later, || {
///     JsonClient::connect(&connector, "kv")
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn with_backoff<T, E, F, Fut>(
    deadline: Instant,
    retry: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = FIRST_RECONNECT_DELAY;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if Instant::now() + delay < deadline && retry(&err) => {
                tracing::debug!(error = %err, retry_ms = delay.as_millis() as u64, "reconnect failed");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether a call failed because its connection broke (rather than, say, because the request
/// was too large or the deadline passed): then it may or may not have run on the server.
pub(crate) fn connection_broke<Req, Resp, D>(
    err: &RpcError,
    channel: &Channel<Req, Resp, D>,
) -> bool
where
    Req: Serialize + Send + 'static,
    Resp: Send + 'static,
    D: rpc_core::wire::MessageSeed<Resp> + Send + 'static,
{
    match err {
        RpcError::Shutdown | RpcError::Channel(_) => true,
        // A request refused before it was queued (too large for the frame limit) leaves the
        // connection usable; a write that failed does not.
        RpcError::Send(_) => !channel.is_usable(),
        _ => false,
    }
}

impl<Req, Resp> Stub for ReconnectingChannel<Req, Resp>
where
    Req: Serialize + DeserializeOwned + RequestName + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    type Req = Req;
    type Resp = Resp;

    async fn call(&self, ctx: context::Context, request: Req) -> Result<Resp, RpcError> {
        // A copy to resend, made only for calls marked idempotent (generated requests are not
        // Clone, but they are serde types). A request too large to copy could not be sent.
        let copy = match self.idempotent {
            Some(idempotent) if idempotent(&request) => RESEND_FORMAT.copy(&request).ok(),
            _ => None,
        };
        let channel = self.channel(ctx.deadline).await?;
        match channel.call(ctx, request).await {
            Err(err) if connection_broke(&err, &channel) => {
                let Some(copy) = copy else {
                    return Err(RpcError::Send(Box::new(CallInterrupted)));
                };
                tracing::debug!(service = %self.service, "resending an idempotent call");
                let channel = self.channel(ctx.deadline).await?;
                channel.call(ctx, copy).await
            }
            other => other,
        }
    }
}
