//! [`JsonClient`]: calls any hosted service with JSON arguments, guided by the schema the server
//! describes, with no Rust types for the service compiled in. What `rpc-client call` uses, and
//! what bindings for other languages can build on.
//!
//! Connecting asks the server's built-in `introspect` service for the service's schema, then
//! opens a connection to the service itself. Each call checks its JSON arguments against the
//! schema before sending anything, sends exactly the bytes a compiled client would, and reads
//! the answer back into JSON (see [`rpc_core::schema`] for the conventions).
//!
//! It survives server restarts as [`crate::ReconnectingChannel`] does: a call that finds its
//! connection broken (the server went away since the last call) reconnects first, with backoff,
//! within the call's deadline, reading the service's schema again (the restarted server may run
//! another version; arguments are checked against the new one). A call in flight when the
//! connection breaks fails with [`JsonCallError::Interrupted`] and is not sent again: it may or
//! may not have run.
//!
//! A streaming method is opened with [`JsonClient::watch`] (and refused by [`JsonClient::call`],
//! which would read one answer and leave the stream running): its events arrive as JSON, each
//! `{"Item": item}` or `{"Lagged": {"missed": n}}`, until the server's last. A stream does not
//! survive a reconnect: when its connection breaks it ends with
//! [`JsonCallError::Interrupted`], and is not opened again on a new connection, which would
//! skip, unseen, whatever was sent in between. Open it again to go on.
//!
//! ```no_run
//! use rpc_client::{Connector, JsonClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let connector = Connector::from_env("rpc")?;
//! let kv = JsonClient::connect(&connector, "kv").await?;
//! let args = serde_json::json!({ "key": "greeting" });
//! let value = kv.call(rpc_core::tarpc::context::current(), "get", &args).await?;
//! println!("{value}");
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Instant;

use futures::Stream;
use rpc_core::schema::{
    JsonError, JsonRequest, JsonResponse, JsonResponseSeed, SchemaHash, ServiceSchema,
    UnprintableName,
};
use rpc_core::services::introspect::IntrospectClient;
use rpc_core::tarpc::client::RpcError;
use rpc_core::tarpc::client::stub::Stub;
use rpc_core::tarpc::context;
use rpc_core::untrusted::Untrusted;
use serde_json::Value;

use crate::channel::Channel;
use crate::connect::Connector;
use crate::error::ConnectError;
use crate::reconnect::{connection_broke, with_backoff};

mod stream;

/// A connection to one service, called with JSON; it reconnects on its own (see the module
/// documentation). Clones share the connection.
#[derive(Debug, Clone)]
pub struct JsonClient {
    connector: Connector,
    /// Where the schema comes from when reconnecting.
    source: SchemaSource,
    live: Arc<tokio::sync::Mutex<Live>>,
}

/// Where a [`JsonClient`] gets the schema of the service it calls.
#[derive(Debug, Clone)]
enum SchemaSource {
    /// From the server's `introspect` service, read again on each connection.
    Server { service: String },
    /// Given by the caller; each connection checks the server still hosts it.
    Given(Arc<ServiceSchema>),
}

/// The current connection and the schema it was made for.
#[derive(Debug, Clone)]
struct Live {
    schema: Arc<ServiceSchema>,
    channel: Channel<JsonRequest, JsonResponse, JsonResponseSeed>,
}

type JsonChannel = Channel<JsonRequest, JsonResponse, JsonResponseSeed>;

/// Why a [`JsonClient`] could not connect.
#[derive(Debug, thiserror::Error)]
pub enum JsonConnectError {
    /// The server was not reached, or refused the connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server did not answer the `introspect` call.
    #[error("cannot read the server's schemas")]
    Describe(#[source] RpcError),
    /// The service the server hosts is not the one described: it changed (the server was
    /// restarted with another version) since its schema was read. Nothing was sent.
    #[error(
        "the server's `{}` service (schema {hosted}) is not the one described (schema {described}): read its schema again",
        Untrusted(service)
    )]
    SchemaChanged {
        /// The service.
        service: String,
        /// The hash of the schema the client holds.
        described: SchemaHash,
        /// The hash the server announced when connecting.
        hosted: SchemaHash,
    },
    /// The server described the service with a name that cannot be printed on one line.
    #[error("the server's schema of `{}` cannot be used", Untrusted(service))]
    Unprintable {
        /// The service.
        service: String,
        /// The name at fault.
        #[source]
        source: UnprintableName,
    },
    /// The server hosts no service of that name.
    #[error("unknown service `{}`: this server hosts {}", Untrusted(requested), available.iter().map(|n| Untrusted(n).to_string()).collect::<Vec<_>>().join(", "))]
    UnknownService {
        /// The name asked for.
        requested: String,
        /// The services it hosts.
        available: Vec<String>,
    },
}

/// Why a JSON call failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonCallError {
    /// The arguments do not fit the method's schema (nothing was sent).
    #[error(transparent)]
    Args(#[from] JsonError),
    /// The call was sent and failed: the connection, the deadline, or the server.
    #[error("call to {service}.{method} failed")]
    Rpc {
        /// The service.
        service: String,
        /// The method.
        method: String,
        /// What went wrong.
        #[source]
        source: RpcError,
    },
    /// The connection broke while the call was in flight: the call may or may not have run on
    /// the server, and was not sent again. Or it broke while a stream was open: the stream
    /// ended, and was not opened again (the items sent in between would be lost unseen).
    #[error(
        "the connection to the server broke while {service}.{method} was in flight: {}",
        if *streaming {
            "the stream ended and is not resumed (open it again to go on; what was sent in between is lost)"
        } else {
            "it may or may not have run, and was not retried"
        }
    )]
    Interrupted {
        /// The service.
        service: String,
        /// The method.
        method: String,
        /// Whether it was a stream ([`JsonClient::watch`]) rather than a call.
        streaming: bool,
    },
    /// The connection had broken before the call (the server went away), and no server could
    /// be reached again within the call's deadline. Nothing was sent.
    #[error("cannot reach the `{service}` service again")]
    Unreachable {
        /// The service.
        service: String,
        /// The last reconnection attempt's error.
        #[source]
        source: JsonConnectError,
    },
    /// The server answered with another method's response: its schema is not the one it
    /// described.
    #[error("the server answered {service}.{method} with the response of method {answered}")]
    WrongMethod {
        /// The service.
        service: String,
        /// The method called.
        method: String,
        /// The index of the method it answered.
        answered: u32,
    },
}

impl JsonConnectError {
    /// Whether trying again a little later may succeed (see [`ConnectError::retry_later`]; a
    /// server that went away during the `introspect` call counts too).
    pub fn retry_later(&self) -> bool {
        match self {
            JsonConnectError::Connect(err) => err.retry_later(),
            JsonConnectError::Describe(err) => {
                matches!(err, RpcError::Shutdown | RpcError::Channel(_))
            }
            _ => false,
        }
    }
}

impl JsonClient {
    /// Reads the schema of `service` from the server's `introspect` service, then connects to
    /// `service`. Later connections read it again.
    pub async fn connect(connector: &Connector, service: &str) -> Result<Self, JsonConnectError> {
        let source = SchemaSource::Server {
            service: service.to_owned(),
        };
        let live = open(connector, &source).await?;
        Ok(JsonClient::new(connector, source, live))
    }

    /// Connects to the service `schema` describes, trusting `schema` (e.g. one read earlier with
    /// [`JsonClient::connect`]'s `introspect` call, or from a file). Each connection, the first
    /// and any after a restart, fails with [`JsonConnectError::SchemaChanged`] if the server's
    /// service is not the one `schema` describes.
    pub async fn with_schema(
        connector: &Connector,
        schema: Arc<ServiceSchema>,
    ) -> Result<Self, JsonConnectError> {
        let source = SchemaSource::Given(schema);
        let live = open(connector, &source).await?;
        Ok(JsonClient::new(connector, source, live))
    }

    fn new(connector: &Connector, source: SchemaSource, live: Live) -> Self {
        JsonClient {
            connector: connector.clone(),
            source,
            live: Arc::new(tokio::sync::Mutex::new(live)),
        }
    }

    /// The service's schema, as the current connection's server described it.
    pub async fn schema(&self) -> Arc<ServiceSchema> {
        self.live.lock().await.schema.clone()
    }

    /// Calls `method` with `args` (a JSON object of named arguments; `null` or `{}` for none)
    /// and returns its result as JSON. If the connection broke since the last call, it
    /// reconnects first, within `ctx.deadline`. A streaming method is refused
    /// ([`JsonError::StreamingMethod`]; nothing is sent): open it with [`JsonClient::watch`].
    pub async fn call(
        &self,
        ctx: context::Context,
        method: &str,
        args: &Value,
    ) -> Result<Value, JsonCallError> {
        let live = self.live(ctx.deadline).await?;
        let service = &live.schema.name;
        let request = live.schema.call_request_from_json(method, args)?;
        let index = request.index();
        let response = match live.channel.call(ctx, request).await {
            Ok(response) => response,
            Err(err) => {
                let broke = connection_broke(&err, &live.channel);
                return Err(rpc_failure(err, broke, service, method, false));
            }
        };
        if response.method != index {
            return Err(JsonCallError::WrongMethod {
                service: service.clone(),
                method: method.to_owned(),
                answered: response.method,
            });
        }
        Ok(response.value)
    }

    /// Opens `method`, a streaming method, with `args` (as [`JsonClient::call`] takes them), and
    /// returns its events as they arrive, each as JSON: `{"Item": item}` (the item as
    /// [`rpc_core::schema`]'s conventions write it) or `{"Lagged": {"missed": n}}` (the server
    /// skipped `n` items this client was too slow to take). The stream ends (`None`) after the
    /// server's last item; an error is the last thing it yields: the server failed or refused
    /// the stream ([`JsonCallError::Rpc`]), or the connection broke
    /// ([`JsonCallError::Interrupted`]: a stream does not survive a reconnect). Dropping it
    /// tells the server to stop.
    ///
    /// A method that answers once is refused ([`JsonError::NotStreaming`]; nothing is sent). If
    /// the connection broke since the last call, it reconnects first; `ctx.deadline` bounds that
    /// and the sending of the request, not how long the stream lasts.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use rpc_client::{Connector, JsonClient};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let kv = JsonClient::connect(&Connector::from_env("rpc")?, "kv").await?;
    /// let args = serde_json::json!({ "prefix": "config/" });
    /// let mut changes = kv.watch(rpc_core::tarpc::context::current(), "watch", &args).await?;
    /// while let Some(event) = changes.next().await {
    ///     println!("{}", event?); // {"Item":{"Set":{"key":"config/a","value":"1"}}}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch(
        &self,
        ctx: context::Context,
        method: &str,
        args: &Value,
    ) -> Result<
        impl Stream<Item = Result<Value, JsonCallError>> + Send + Unpin + 'static,
        JsonCallError,
    > {
        let live = self.live(ctx.deadline).await?;
        let service = &live.schema.name;
        let request = live.schema.stream_request_from_json(method, args)?;
        let index = request.index();
        // A stream's `End` reads as the JSON string "End" (see `stream::events`).
        let is_end = |answer: &JsonResponse| answer.value == "End";
        let answers = match rpc_core::StreamStub::open(&live.channel, ctx, request, is_end).await {
            Ok(answers) => answers,
            Err(err) => {
                let broke = connection_broke(&err, &live.channel);
                return Err(rpc_failure(err, broke, service, method, true));
            }
        };
        let channel = live.channel.clone();
        Ok(stream::events(
            answers,
            service.clone(),
            method.to_owned(),
            index,
            move |err| connection_broke(err, &channel),
        ))
    }

    /// The current connection, reconnecting first (with backoff, until `deadline`) if it broke.
    async fn live(&self, deadline: Instant) -> Result<Live, JsonCallError> {
        let mut live = self.live.lock().await;
        if live.channel.is_usable() {
            return Ok(live.clone());
        }
        let connector = self.connector.until(deadline);
        let fresh = with_backoff(deadline, JsonConnectError::retry_later, || {
            open(&connector, &self.source)
        })
        .await
        .map_err(|source| JsonCallError::Unreachable {
            service: self.source.service().to_owned(),
            source,
        })?;
        tracing::info!(service = %fresh.schema.name, "reconnected");
        *live = fresh;
        Ok(live.clone())
    }
}

impl SchemaSource {
    fn service(&self) -> &str {
        match self {
            SchemaSource::Server { service } => service,
            SchemaSource::Given(schema) => &schema.name,
        }
    }
}

/// Connects to the service, with its schema read from the server or checked against it.
async fn open(connector: &Connector, source: &SchemaSource) -> Result<Live, JsonConnectError> {
    let schema = match source {
        SchemaSource::Server { service } => describe(connector, service).await?,
        SchemaSource::Given(schema) => schema.clone(),
    };
    let seed = JsonResponseSeed {
        schema: schema.clone(),
    };
    let (channel, server_hash): (JsonChannel, _) = connector
        .seeded_channel::<JsonRequest, _, _>(&schema.name, seed)
        .await?;
    if server_hash != schema.hash() {
        return Err(JsonConnectError::SchemaChanged {
            service: schema.name.clone(),
            described: schema.hash(),
            hosted: server_hash,
        });
    }
    Ok(Live { schema, channel })
}

/// Reads the schema of `service` from the server's `introspect` service: that one schema (a
/// server hosting many services answers `services()` with all of theirs, which a small frame
/// limit may not hold), and only if it is not hosted, the names of those that are.
async fn describe(
    connector: &Connector,
    service: &str,
) -> Result<Arc<ServiceSchema>, JsonConnectError> {
    let introspect = connector.connect::<IntrospectClient>().await?;
    let ctx = || {
        let mut ctx = context::current();
        ctx.deadline = Instant::now() + connector.timeout();
        ctx
    };
    let described = introspect
        .describe(ctx(), service.to_owned())
        .await
        .map_err(JsonConnectError::Describe)?;
    let Some(schema) = described.filter(|schema| schema.name == service) else {
        let hosted = introspect
            .hashes(ctx())
            .await
            .map_err(JsonConnectError::Describe)?;
        return Err(JsonConnectError::UnknownService {
            requested: service.to_owned(),
            available: hosted.into_iter().map(|(name, _)| name).collect(),
        });
    };
    schema
        .check_names()
        .map_err(|source| JsonConnectError::Unprintable {
            service: service.to_owned(),
            source,
        })?;
    Ok(Arc::new(schema))
}

/// What `err`, the connection's error for a call or stream of `service.method`, means to a
/// JSON caller: the connection `broke` ([`JsonCallError::Interrupted`]: a call may or may not
/// have run, a stream ended and is not reopened) or the server answered with an error
/// ([`JsonCallError::Rpc`]).
fn rpc_failure(
    err: RpcError,
    broke: bool,
    service: &str,
    method: &str,
    streaming: bool,
) -> JsonCallError {
    let (service, method) = (service.to_owned(), method.to_owned());
    if broke {
        JsonCallError::Interrupted {
            service,
            method,
            streaming,
        }
    } else {
        JsonCallError::Rpc {
            service,
            method,
            source: err,
        }
    }
}
