//! Hosting tarpc services behind names: the type-erased service a connection is handed to after
//! its handshake names it.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;

use rpc_core::transport::Link;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::{RequestName, Response, ServerError, context};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{self, Dispatch};
use crate::guard::GuardedTransport;
use crate::peer::Peer;
use crate::stats::ServerStatus;

/// What a connection needs from the server once its service is chosen.
pub(crate) struct ServeContext {
    pub max_in_flight: usize,
    pub read_timeout: std::time::Duration,
    pub shutdown: CancellationToken,
    pub status: Arc<ServerStatus>,
}

/// A service the server can hand connections to, whatever its request and response types.
pub(crate) trait HostedService: Send + Sync + 'static {
    /// Serves one connection, its handshake done, until the peer leaves, the connection fails
    /// or shutdown has let its started calls finish.
    fn serve(
        &self,
        link: Link,
        peer: Peer,
        ctx: ServeContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Adapts a per-connection handler factory (see [`crate::Server::service`]) to [`HostedService`].
pub(crate) struct TarpcService<F, Req> {
    pub factory: F,
    pub request: PhantomData<fn(Req)>,
}

impl<F, H, Req, Resp, Fut> HostedService for TarpcService<F, Req>
where
    F: Fn(&Peer) -> H + Send + Sync + 'static,
    H: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
    Req: DeserializeOwned + RequestName + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    fn serve(
        &self,
        link: Link,
        peer: Peer,
        ctx: ServeContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let handler = (self.factory)(&peer);
        let transport = link.request_transport::<Req, Response<Resp>>();
        let transport = GuardedTransport::new(transport, ctx.shutdown, ctx.read_timeout);
        let status = ctx.status;
        let max_in_flight = ctx.max_in_flight;
        Box::pin(async move {
            let transport = pin!(transport);
            let new_call = move |request, registration| {
                dispatch::call(handler.clone(), status.clone(), request, registration)
            };
            Dispatch::new(transport, max_in_flight, new_call)
                .run(peer.connection_id)
                .await;
        })
    }
}

/// Turns a tarpc server (a `Serve` value, e.g. `MyImpl.serve()`) into the handler
/// [`crate::Server::service`] wants. A macro, so that the handler's future is seen as `Send`
/// where its concrete type is known (tarpc's `Serve::serve` is an `async fn` in a trait).
///
/// ```ignore
/// server.service(kv::NAME, |_peer| rpc_server::handler!(KvStore::default().serve()));
/// ```
#[macro_export]
macro_rules! handler {
    ($serve:expr) => {{
        let serve = $serve;
        move |ctx, request| ::tarpc::server::Serve::serve(serve, ctx, request)
    }};
}
