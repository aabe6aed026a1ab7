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
//!
//! A stream (a subscription) opens on the current connection, reconnecting first as a call
//! does, and lives and dies with that connection: it is never reopened behind the caller's
//! back, since what it missed while no connection was up is lost. When the connection breaks,
//! the stream yields the error and ends; the application subscribes again.

use std::sync::Arc;
use std::time::Instant;

use rpc_core::schema::SchemaHash;
use rpc_core::streaming::Answers;
use rpc_core::wire::WireFormat;
use rpc_core::{FrameLimit, StreamStub};
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
///
/// Calls survive a restart of the server as the module describes. Streams do not: one opened
/// through this stub ([`StreamStub::open`], e.g. `kv.watch`) yields an error and ends when its
/// connection is lost, and the application opens it again (the next open reconnects). Items
/// sent while no connection was up are lost either way; a new subscription is where the
/// application learns that, and can catch up (re-read what it watches, say).
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

impl<Req, Resp> StreamStub for ReconnectingChannel<Req, Resp>
where
    Req: Serialize + DeserializeOwned + RequestName + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// Opens the stream on the current connection, reconnecting first (with backoff, within
    /// the context's deadline) if it is dead, as a call does; see [`Channel`]'s `open`.
    ///
    /// The stream does not survive a reconnect: when this connection is lost, it yields the
    /// error ([`RpcError::Shutdown`] or [`RpcError::Channel`]) and ends, and the caller opens
    /// it again. It is never reopened on its own, so a subscriber always learns that it may
    /// have missed items. Neither is an open whose connection broke in the instant before
    /// it was sent: it fails with that error, as a call would be interrupted.
    async fn open(
        &self,
        ctx: context::Context,
        request: Req,
        is_last: fn(&Resp) -> bool,
    ) -> Result<Answers<Resp>, RpcError> {
        let channel = self.channel(ctx.deadline).await?;
        channel.open(ctx, request, is_last).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use rpc_core::wire::ClientMessage;
    use rpc_core::{Endpoint, LocalStream, StreamEvent, WireTransport};
    use serde::Deserialize;
    use tarpc::Response;
    use tokio::net::UnixListener;

    use super::*;
    use crate::fake_server::{self, SocketPath};

    /// Opens a stream of numbers.
    #[derive(Debug, Serialize, Deserialize)]
    struct Numbers;

    impl RequestName for Numbers {
        fn name(&self) -> &str {
            "numbers"
        }
    }

    type Server = WireTransport<LocalStream, ClientMessage<Numbers>, Response<StreamEvent<u64>>>;

    /// Accepts one connection on `listener`, as a server hosting `numbers` would.
    async fn accept(listener: &UnixListener) -> Server {
        fake_server::accept(listener, "numbers").await
    }

    /// Reads a stream's request and its opening grant; sends it item `n`.
    async fn serve_one_item(server: &mut Server, n: u64) {
        let Some(Ok(ClientMessage::Request(request))) = server.next().await else {
            panic!("expected the stream's request");
        };
        let Some(Ok(ClientMessage::Grant { request_id, .. })) = server.next().await else {
            panic!("expected the stream's grant");
        };
        assert_eq!(request_id, request.id);
        let item = Response {
            request_id,
            message: Ok(StreamEvent::Item(n)),
        };
        server.send(item).await.expect("the item is sent");
    }

    /// The stream's next answer, which must come within a minute.
    async fn next(
        answers: &mut Answers<StreamEvent<u64>>,
    ) -> Option<Result<StreamEvent<u64>, RpcError>> {
        tokio::time::timeout(Duration::from_secs(60), answers.next())
            .await
            .expect("an answer within a minute")
    }

    #[tokio::test]
    async fn a_stream_ends_with_its_connection_and_opening_it_again_reconnects() {
        let path = SocketPath::new("streams");
        let listener = UnixListener::bind(&path.0).expect("binds");
        let connector = Connector::endpoint(Endpoint::Unix(path.0.clone())).expect("a connector");
        let (stub, mut server) = tokio::join!(
            ReconnectingChannel::<Numbers, StreamEvent<u64>>::connect(
                connector, "numbers", None, None
            ),
            accept(&listener),
        );
        let stub = stub.expect("connects");

        let (answers, ()) = tokio::join!(
            stub.open(context::current(), Numbers, |event| *event
                == StreamEvent::End),
            serve_one_item(&mut server, 1)
        );
        let mut answers = answers.expect("the stream opens");
        let first = next(&mut answers).await;
        assert!(matches!(first, Some(Ok(StreamEvent::Item(1)))), "{first:?}");

        // The server goes away (a restart): the stream fails and ends, and is not reopened.
        drop(server);
        let lost = next(&mut answers).await;
        assert!(matches!(lost, Some(Err(RpcError::Shutdown))), "{lost:?}");
        assert!(next(&mut answers).await.is_none());

        // Opening it again reconnects, within the context's deadline.
        let (answers, mut server) = tokio::join!(
            stub.open(context::current(), Numbers, |event| *event
                == StreamEvent::End),
            async {
                let mut server = accept(&listener).await;
                serve_one_item(&mut server, 2).await;
                server
            }
        );
        let mut answers = answers.expect("the stream opens again");
        let again = next(&mut answers).await;
        assert!(matches!(again, Some(Ok(StreamEvent::Item(2)))), "{again:?}");
        drop(answers);
        let cancel = tokio::time::timeout(Duration::from_secs(60), server.next())
            .await
            .expect("in time");
        assert!(
            matches!(cancel, Some(Ok(ClientMessage::Cancel { .. }))),
            "{cancel:?}"
        );
    }
}
