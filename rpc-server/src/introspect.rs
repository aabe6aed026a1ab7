//! The built-in `introspect` service: the schema of every service the server hosts, itself
//! included. [`crate::Server::bind`] hosts it on every server, whatever else it hosts.

use std::sync::Arc;

use rpc_core::schema::{SchemaHash, ServiceSchema};
use rpc_core::services::introspect::Introspect;
use rpc_core::tarpc::context::Context;

/// Answers `introspect` calls from the schemas fixed when the server was bound.
#[derive(Debug, Clone)]
pub(crate) struct Introspection {
    schemas: Arc<[ServiceSchema]>,
}

impl Introspection {
    /// Describes `schemas`, in this order.
    pub(crate) fn new(schemas: Vec<ServiceSchema>) -> Self {
        Introspection {
            schemas: schemas.into(),
        }
    }
}

impl Introspect for Introspection {
    async fn services(self, _: Context) -> Vec<ServiceSchema> {
        self.schemas.to_vec()
    }

    async fn describe(self, _: Context, service: String) -> Option<ServiceSchema> {
        self.schemas.iter().find(|s| s.name == service).cloned()
    }

    async fn hashes(self, _: Context) -> Vec<(String, SchemaHash)> {
        self.schemas
            .iter()
            .map(|schema| (schema.name.clone(), schema.hash()))
            .collect()
    }
}
