//! A client type misspelt in `connect` is a compile error, not a wrong name sent at run time.

/// Keeps notes.
#[rpc_core::service]
pub trait Notes {
    /// Adds a note; returns its id.
    async fn add(title: String) -> u64;
}

async fn connect(connector: rpc_client::Connector) {
    let _notes = connector.connect::<NotesClent>().await;
}

fn main() {
    drop(connect);
}
