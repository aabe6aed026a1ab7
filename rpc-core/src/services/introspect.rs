//! `introspect`: the schema of every service a server hosts, so that a client built without a
//! service's types (`rpc-client describe`, `rpc-client call`) can still call it.

use crate::schema::{SchemaHash, Shape, Type, TypeDef};

pub use crate::schema::ServiceSchema;

/// The name the introspection service is hosted under.
pub const NAME: &str = <IntrospectClient as crate::Service>::NAME;

/// Describes the services a server hosts. A schema is untrusted input to the client that reads
/// it: see [`crate::schema`].
#[crate::service(name = "introspect", trace = [Type, TypeDef, Shape])]
pub trait Introspect {
    /// Every hosted service's schema, in the order they were added.
    async fn services() -> Vec<ServiceSchema>;
    /// One service's schema, if hosted.
    async fn describe(service: String) -> Option<ServiceSchema>;
    /// Every hosted service's name and schema hash, in the order they were added: what a
    /// client that keeps schemas checks them against without fetching them again.
    async fn hashes() -> Vec<(String, SchemaHash)>;
}
