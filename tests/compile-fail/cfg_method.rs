//! A method compiled in or out by `#[cfg]` does not compile: a method's position is its number
//! on the wire, so builds with and without it would disagree about every method after it.

/// Keeps notes.
#[rpc_core::service(name = "notes")]
pub trait Notes {
    /// Adds a note; returns its id.
    #[cfg(feature = "extra")]
    async fn add(title: String) -> u64;
    /// Every title.
    async fn titles() -> Vec<String>;
}

fn main() {}
