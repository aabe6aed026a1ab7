//! The built-in services: the traits `rpc-server` hosts and `rpc-client` calls.
//!
//! Each module holds one `#[rpc_core::service]` trait, the name it is hosted under, and the types
//! it sends. Implementations live in `rpc-server`; this crate only defines the contract.

pub mod echo;
pub mod health;
pub mod introspect;
pub mod kv;

/// A built-in service as the CLI and `rpc-client list` know it: its name and its methods.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDescription {
    /// The name it is hosted under.
    pub name: &'static str,
    /// Its methods, each with the JSON arguments it takes.
    pub methods: &'static [(&'static str, &'static str)],
}

/// Every built-in service the CLI can call by its examples (`introspect` is not among them: it
/// has no JSON-friendly arguments to show).
pub const BUILT_IN: &[ServiceDescription] =
    &[echo::DESCRIPTION, kv::DESCRIPTION, health::DESCRIPTION];

#[cfg(test)]
mod tests;
