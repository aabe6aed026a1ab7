//! [`JsonClient`]: calls any hosted service with JSON arguments, guided by the schema the server
//! describes, with no Rust types for the service compiled in. What `rpc-client call` uses, and
//! what bindings for other languages can build on.
//!
//! Connecting asks the server's built-in `introspect` service for the service's schema, then
//! opens a connection to the service itself. Each call checks its JSON arguments against the
//! schema before sending anything, sends exactly the bytes a compiled client would, and reads
//! the answer back into JSON (see [`rpc_core::schema`] for the conventions).
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

/// A connection to one service, called with JSON.
#[derive(Debug, Clone)]
pub struct JsonClient {
    schema: Arc<ServiceSchema>,
    channel: Channel<JsonRequest, JsonResponse, JsonResponseSeed>,
}

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

impl JsonClient {
    /// Reads the schema of `service` from the server's `introspect` service, then connects to
    /// `service`.
    pub async fn connect(connector: &Connector, service: &str) -> Result<Self, JsonConnectError> {
        let introspect = connector.connect::<IntrospectClient>().await?;
        let mut ctx = context::current();
        ctx.deadline = std::time::Instant::now() + connector.timeout();
        let schemas = introspect
            .services(ctx)
            .await
            .map_err(JsonConnectError::Describe)?;
        let Some(schema) = schemas.iter().find(|s| s.name == service).cloned() else {
            return Err(JsonConnectError::UnknownService {
                requested: service.to_owned(),
                available: schemas.into_iter().map(|s| s.name).collect(),
            });
        };
        schema
            .check_names()
            .map_err(|source| JsonConnectError::Unprintable {
                service: service.to_owned(),
                source,
            })?;
        Self::with_schema(connector, Arc::new(schema)).await
    }

    /// Connects to the service `schema` describes, trusting `schema` (e.g. one read earlier with
    /// [`JsonClient::connect`]'s `introspect` call, or from a file).
    pub async fn with_schema(
        connector: &Connector,
        schema: Arc<ServiceSchema>,
    ) -> Result<Self, JsonConnectError> {
        let seed = JsonResponseSeed {
            schema: schema.clone(),
        };
        let (channel, server_hash) = connector
            .seeded_channel::<JsonRequest, _, _>(&schema.name, seed)
            .await?;
        if server_hash != schema.hash() {
            return Err(JsonConnectError::SchemaChanged {
                service: schema.name.clone(),
                described: schema.hash(),
                hosted: server_hash,
            });
        }
        Ok(JsonClient { schema, channel })
    }

    /// The service's schema.
    pub fn schema(&self) -> &Arc<ServiceSchema> {
        &self.schema
    }

    /// Calls `method` with `args` (a JSON object of named arguments; `null` or `{}` for none)
    /// and returns its result as JSON.
    pub async fn call(
        &self,
        ctx: context::Context,
        method: &str,
        args: &Value,
    ) -> Result<Value, JsonCallError> {
        let request = self.schema.request_from_json(method, args)?;
        let index = request.index();
        let response =
            self.channel
                .call(ctx, request)
                .await
                .map_err(|source| JsonCallError::Rpc {
                    service: self.schema.name.clone(),
                    method: method.to_owned(),
                    source,
                })?;
        if response.method != index {
            return Err(JsonCallError::WrongMethod {
                service: self.schema.name.clone(),
                method: method.to_owned(),
                answered: response.method,
            });
        }
        Ok(response.value)
    }
}
