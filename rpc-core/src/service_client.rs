//! [`ServiceClient`]: what a generated tarpc client needs so `rpc-client` can connect it by name.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A tarpc-generated client tied to the name its service is hosted under.
///
/// `rpc-client` uses [`ServiceClient::NAME`] in the handshake and [`ServiceClient::from_channel`]
/// to wrap the connected channel. Implement it with [`service_client!`](crate::service_client)
/// next to the `#[tarpc::service]` trait.
pub trait ServiceClient: Sized {
    /// The name the service is hosted under (sent in the handshake).
    const NAME: &'static str;
    /// The generated request enum.
    type Request: Serialize + tarpc::RequestName + Send + 'static;
    /// The generated response enum.
    type Response: DeserializeOwned + Send + 'static;
    /// Wraps a connected channel.
    fn from_channel(channel: tarpc::client::Channel<Self::Request, Self::Response>) -> Self;
}

/// Implements [`ServiceClient`] for a generated client:
/// `service_client!(KvClient, KvRequest, KvResponse, "kv");`
#[macro_export]
macro_rules! service_client {
    ($client:ident, $request:ident, $response:ident, $name:expr) => {
        impl $crate::ServiceClient for $client {
            const NAME: &'static str = $name;
            type Request = $request;
            type Response = $response;
            fn from_channel(channel: $crate::tarpc::client::Channel<$request, $response>) -> Self {
                $client::from(channel)
            }
        }
    };
}
