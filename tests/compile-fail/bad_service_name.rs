//! A service name the server and the CLI could not show as it is does not compile.

/// Keeps notes.
#[rpc_core::service(name = "bad name!")]
pub trait Notes {
    /// Adds a note; returns its id.
    async fn add(title: String) -> u64;
}

fn main() {}
