//! [`ServiceClient`]: what a generated tarpc client needs so `rpc-client` can connect it by name.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A tarpc-generated client tied to the name its service is hosted under.
///
/// `rpc-client` uses [`ServiceClient::NAME`] in the handshake and [`ServiceClient::from_stub`]
/// to wrap the connection in the generated client. Implement it with
/// [`service_client!`](crate::service_client) next to the `#[tarpc::service]` trait.
pub trait ServiceClient {
    /// The name the service is hosted under (sent in the handshake).
    const NAME: &'static str;
    /// The generated request enum.
    type Request: Serialize + tarpc::RequestName + Send + 'static;
    /// The generated response enum.
    type Response: DeserializeOwned + Send + 'static;
    /// The generated client over the stub `S`, e.g. `KvClient<S>`.
    type With<S>;
    /// Wraps a stub (a connection) in the generated client.
    fn from_stub<S>(stub: S) -> Self::With<S>
    where
        S: tarpc::client::stub::Stub<Req = Self::Request, Resp = Self::Response>;
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
            type With<S> = $client<S>;
            fn from_stub<S>(stub: S) -> $client<S>
            where
                S: $crate::tarpc::client::stub::Stub<Req = $request, Resp = $response>,
            {
                $client::from(stub)
            }
        }
    };
}
