//! The built-in services: the traits `rpc-server` hosts and `rpc-client` calls.
//!
//! Each module holds one `#[rpc_core::service]` trait, the name it is hosted under, and the types
//! it sends. Implementations live in `rpc-server`; this crate only defines the contract.

pub mod echo;
pub mod health;
pub mod introspect;
pub mod kv;

#[cfg(test)]
mod tests;
