//! Only a generated client names a service: any other type in `connect` is a compile error.

/// A note: data, not a service.
pub struct Note {
    pub title: String,
}

fn main() {
    let _ = rpc_client::Connector::connect::<Note>;
}
