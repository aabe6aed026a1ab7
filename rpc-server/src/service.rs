//! Hosting services behind their names: the type-erased service a connection is handed to after
//! its handshake names it.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;

use rpc_core::transport::Link;
use rpc_core::{ServeService, Service};
use tarpc::Response;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{self, Dispatch};
use crate::guard::GuardedTransport;
use crate::peer::Peer;
use crate::stats::ServerStatus;

/// What a connection needs from the server once its service is chosen.
pub(crate) struct ServeContext {
    pub max_in_flight: usize,
    pub max_streams: usize,
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

/// Adapts a per-connection factory of a [`ServeService`] (see [`crate::Server::add`]) to
/// [`HostedService`].
pub(crate) struct Hosted<F> {
    pub factory: F,
}

impl<F, S> HostedService for Hosted<F>
where
    F: Fn(&Peer) -> S + Send + Sync + 'static,
    S: ServeService,
{
    fn serve(
        &self,
        link: Link,
        peer: Peer,
        ctx: ServeContext,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let serve = (self.factory)(&peer);
        let transport = link.request_transport::<Request<S>, Response<ResponseOf<S>>>();
        let transport = GuardedTransport::new(transport, ctx.shutdown, ctx.read_timeout);
        let status = ctx.status;
        let max_in_flight = ctx.max_in_flight;
        let max_streams = ctx.max_streams;
        Box::pin(async move {
            let transport = pin!(transport);
            let new_call = move |request, registration| {
                let serve = serve.clone();
                let handler = move |ctx, request| serve.call(ctx, request);
                dispatch::call(handler, status.clone(), request, registration)
            };
            Dispatch::new(transport, max_in_flight, new_call)
                .max_streams(max_streams)
                .run(peer.connection_id)
                .await;
        })
    }
}

/// The request enum of the service `S` serves.
type Request<S> = <<S as ServeService>::Service as Service>::Request;

/// The response enum of the service `S` serves.
type ResponseOf<S> = <<S as ServeService>::Service as Service>::Response;
