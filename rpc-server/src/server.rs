//! [`Server`]: the services, the endpoints, the accept loops and shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use rpc_core::handshake::TOKEN_LEN;
use rpc_core::schema::{SchemaError, ServiceSchema};
use rpc_core::services::introspect::{Introspect, IntrospectClient};
use rpc_core::{Endpoint, EndpointFile, Refusal, ServeService, ServerLocation, Service, Token};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{self, Admission, Hosting, Shared};
use crate::introspect::Introspection;
use crate::limits::{DEFAULT_SOCKET_MODE, Limits, PeerCounts};
use crate::listener::{AcceptBackoff, BindError, Listen, Listener};
use crate::peer::{AccessPolicy, Peer};
use crate::service::{Hosted, HostedService};
use crate::socket_buffer;
use crate::socket_file::{self, FileError, OwnedFile};
use crate::stats::ServerStatus;

/// How a server listens, who may call it, and its limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Endpoints to listen on; empty means `[Listen::Auto]`.
    pub listen: Vec<Listen>,
    /// The server's name and runtime directory: where the `auto` socket and the endpoint file go.
    pub location: ServerLocation,
    /// Permissions of Unix socket files.
    pub socket_mode: u32,
    /// Which Unix peers may call besides the server's own uid and root.
    pub policy: AccessPolicy,
    /// Limits.
    pub limits: Limits,
}

impl ServerConfig {
    /// Defaults for a server at `location`: listen `auto`, mode 0600, own uid only, default limits.
    pub fn new(location: ServerLocation) -> Self {
        ServerConfig {
            listen: Vec::new(),
            location,
            socket_mode: DEFAULT_SOCKET_MODE,
            policy: AccessPolicy::default(),
            limits: Limits::default(),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No service was added.
    #[error("no services to host: add at least one with Server::add")]
    NoServices,
    /// Two services share a name.
    #[error(
        "two services are named `{0}`: each name must be unique (`introspect` is the server's own)"
    )]
    DuplicateService(String),
    /// A service's schema could not be traced: a bug in its types, which the message names,
    /// with the fix.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// An endpoint could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The endpoint file could not be written.
    #[error("cannot write the endpoint file")]
    EndpointFile(#[source] FileError),
    /// The OS random source failed while making the TCP token.
    #[error("cannot generate the tcp token")]
    Token(#[source] std::io::Error),
    /// Waiting for the shutdown signal failed.
    #[error("cannot install signal handlers")]
    Signal(#[source] std::io::Error),
}

/// A server being assembled: add services, then [`Server::bind`].
pub struct Server {
    config: ServerConfig,
    services: Vec<HostedEntry>,
    status: Arc<ServerStatus>,
}

/// One service added to a [`Server`]: its name, how to serve a connection, and its schema.
struct HostedEntry {
    name: &'static str,
    service: Arc<dyn HostedService>,
    schema: Result<ServiceSchema, SchemaError>,
}

impl Server {
    /// A server with `config` and no services yet.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            config,
            services: Vec::new(),
            status: Arc::new(ServerStatus::new()),
        }
    }

    /// Hosts a service under its name (`S::Service::NAME`, bound to it by
    /// `#[rpc_core::service]`).
    ///
    /// `factory` runs once per accepted connection with the calling [`Peer`] (so an
    /// implementation can see who called) and returns what serves that connection, the
    /// implementation's `.serve()`:
    ///
    /// ```no_run
    /// use rpc_core::tarpc::context::Context;
    /// use rpc_server::{Peer, Server, ServerConfig};
    ///
    /// /// Greets callers.
    /// #[rpc_core::service]
    /// pub trait Greeter {
    ///     /// A greeting for `name`.
    ///     async fn greet(name: String) -> String;
    /// }
    ///
    /// #[derive(Clone)]
    /// struct MyGreeter {
    ///     caller: Peer,
    /// }
    ///
    /// impl Greeter for MyGreeter {
    ///     async fn greet(self, _: Context, name: String) -> String {
    ///         format!("hello {name}, via {}", self.caller.endpoint)
    ///     }
    /// }
    ///
    /// # fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut server = Server::new(config);
    /// server.add(|peer| MyGreeter { caller: peer.clone() }.serve());
    /// let bound = server.bind()?;
    /// # Ok(()) }
    /// ```
    ///
    /// The service's schema is traced here, once per process. Errors are reported by
    /// [`Server::bind`], which this cannot fail before: a second service of the same name
    /// ([`ServeError::DuplicateService`]; services are never replaced) and a schema that cannot
    /// be traced ([`ServeError::Schema`], a bug in the service's types).
    pub fn add<F, S>(&mut self, factory: F) -> &mut Self
    where
        F: Fn(&Peer) -> S + Send + Sync + 'static,
        S: ServeService,
    {
        self.services.push(HostedEntry {
            name: S::Service::NAME,
            service: Arc::new(Hosted { factory }),
            schema: S::Service::schema(),
        });
        self
    }

    /// The schemas of the services added so far, in the order they were added; a service whose
    /// schema could not be traced is left out (and fails [`Server::bind`]).
    pub(crate) fn schemas(&self) -> impl Iterator<Item = &ServiceSchema> {
        self.services
            .iter()
            .filter_map(|entry| entry.schema.as_ref().ok())
    }

    /// The server's live status (what the `health` service reports).
    pub fn status(&self) -> Arc<ServerStatus> {
        self.status.clone()
    }

    /// Binds every endpoint and writes the endpoint file. The server accepts nothing until
    /// [`BoundServer::run_until`].
    ///
    /// Also hosts the built-in `introspect` service, which answers with the schema of every
    /// hosted service (itself included), so that clients without a service's types can describe
    /// and call it.
    ///
    /// Fails before binding anything if no service was added, two share a name (`introspect`
    /// included), or a service's schema could not be traced.
    pub fn bind(mut self) -> Result<BoundServer, ServeError> {
        if self.services.is_empty() {
            return Err(ServeError::NoServices);
        }
        // Every server describes what it hosts, itself included, whatever else it hosts.
        let introspect_schema = IntrospectClient::schema()?;
        let mut schemas: Vec<ServiceSchema> = self.schemas().cloned().collect();
        schemas.push(introspect_schema);
        let described = Introspection::new(schemas.clone());
        self.add(move |_| described.clone().serve());
        let Server {
            config,
            services,
            status,
        } = self;
        let mut by_name = BTreeMap::new();
        for HostedEntry {
            name,
            service,
            schema,
        } in services
        {
            let schema_hash = schema?.hash();
            let hosting = Hosting {
                service,
                schema_hash,
            };
            if by_name.insert(name.to_owned(), hosting).is_some() {
                return Err(ServeError::DuplicateService(name.to_owned()));
            }
        }
        let listen = if config.listen.is_empty() {
            vec![Listen::Auto]
        } else {
            config.listen.clone()
        };
        let socket_path = config.location.socket_path();
        let mut listeners = listen
            .iter()
            .map(|l| Listener::bind(l, &socket_path, config.socket_mode))
            .collect::<Result<Vec<_>, _>>()?;
        listeners.sort_by_key(|l| l.endpoint().is_tcp());
        let endpoints: Vec<Endpoint> = listeners.iter().map(|l| l.endpoint().clone()).collect();

        let token = if endpoints.iter().any(Endpoint::is_tcp) {
            let mut bytes = [0u8; TOKEN_LEN];
            getrandom::fill(&mut bytes).map_err(|e| ServeError::Token(std::io::Error::other(e)))?;
            Some(Token::from_bytes(bytes))
        } else {
            None
        };
        let endpoint_file = EndpointFile {
            pid: std::process::id(),
            endpoints: endpoints.clone(),
            token: token.clone(),
        };
        let endpoint_file = socket_file::write_private_file(
            &config.location.endpoint_file_path(),
            &endpoint_file.to_json(),
        )
        .map_err(ServeError::EndpointFile)?;
        status.set_bound(endpoints.clone(), by_name.keys().cloned().collect());

        let shared = Arc::new(Shared {
            services: by_name,
            limits: config.limits.clone(),
            policy: config.policy.clone(),
            server_uid: rustix::process::getuid().as_raw(),
            token,
            status,
            shutdown: CancellationToken::new(),
        });
        Ok(BoundServer {
            listeners,
            endpoints,
            shared,
            endpoint_file,
            schemas,
        })
    }
}

/// A server whose endpoints are bound and whose endpoint file is written.
pub struct BoundServer {
    listeners: Vec<Listener>,
    endpoints: Vec<Endpoint>,
    shared: Arc<Shared>,
    endpoint_file: OwnedFile,
    /// Every hosted service's schema, in the order the services were added.
    schemas: Vec<ServiceSchema>,
}

impl BoundServer {
    /// Every endpoint listened on, Unix sockets first, TCP ports resolved.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Writes the readiness lines to `out`, one `listening on <endpoint>` per endpoint, and
    /// flushes: what `rpc-server` prints on stdout once it serves, and what tests and scripts
    /// wait for. Install the shutdown signals first, so a SIGTERM sent as soon as the lines
    /// appear stops the server cleanly.
    pub fn announce(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        for endpoint in &self.endpoints {
            writeln!(out, "listening on {endpoint}")?;
        }
        out.flush()
    }

    /// The token TCP clients must present, if any endpoint is TCP.
    pub fn token(&self) -> Option<&Token> {
        self.shared.token.as_ref()
    }

    /// Where the endpoint file was written.
    pub fn endpoint_file(&self) -> &std::path::Path {
        self.endpoint_file.path()
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    ///
    /// The handlers are installed when this is first polled; a program that announces readiness
    /// first should install [`ShutdownSignals`](crate::shutdown::ShutdownSignals) before
    /// announcing and call [`BoundServer::run_until`] with them, as the `rpc-server` binary does.
    pub async fn run(self) -> Result<(), ServeError> {
        let signals = crate::shutdown::ShutdownSignals::install().map_err(ServeError::Signal)?;
        self.run_until(signals.recv()).await;
        Ok(())
    }

    /// Serves until `shutdown` resolves; then stops accepting, gives in-flight calls the grace
    /// period to finish, and removes the socket and endpoint files it created.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let BoundServer {
            listeners,
            endpoints: _,
            shared,
            endpoint_file,
            schemas,
        } = self;
        for schema in &schemas {
            tracing::info!(
                service = %schema.name,
                methods = schema.methods.len(),
                schema = %schema.hash(),
                "hosting"
            );
        }
        let tracker = TaskTracker::new();
        let connections = Arc::new(Semaphore::new(shared.limits.max_connections));
        let peer_counts = Arc::new(PeerCounts::default());
        let mut accept_loops = Vec::new();
        for listener in listeners {
            tracing::info!(endpoint = %listener.endpoint(), "listening");
            let shared = shared.clone();
            let tracker = tracker.clone();
            let connections = connections.clone();
            let peer_counts = peer_counts.clone();
            accept_loops.push(tokio::spawn(accept_loop(
                listener,
                shared,
                tracker,
                connections,
                peer_counts,
            )));
        }

        tokio::select! {
            _ = shutdown => {}
            _ = rpc_core::timers::keep_timers_warm() => {}
        }
        shared.shutdown.cancel();
        // Each accept loop drops its listener, and so removes its socket file, as it ends.
        for accept in accept_loops {
            let _ = accept.await;
        }
        drop(endpoint_file);
        tracker.close();
        let grace = shared.limits.shutdown_grace;
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                open = tracker.len(),
                "grace period over; dropping connections still open"
            );
        }
        tracing::info!("server stopped");
    }
}

/// Accepts connections on one listener until shutdown; each connection runs in its own task.
async fn accept_loop(
    listener: Listener,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    connections: Arc<Semaphore>,
    peer_counts: Arc<PeerCounts>,
) {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut backoff = AcceptBackoff::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, credentials)) => {
                backoff.reset();
                socket_buffer::tune(&stream, shared.limits.socket_buffer);
                let peer = Peer {
                    connection_id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    endpoint: listener.endpoint().clone(),
                    credentials,
                };
                tracing::debug!(connection = peer.connection_id, endpoint = %peer.endpoint, "connection opened");
                let admission = admit(&peer, &shared, &connections, &peer_counts);
                tracker.spawn(connection::run(stream, peer, shared.clone(), admission));
            }
            Err(err) => {
                let delay = backoff.next();
                tracing::warn!(
                    endpoint = %listener.endpoint(),
                    error = %err,
                    retry_ms = delay.as_millis() as u64,
                    "accept failed; backing off"
                );
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Checks a new connection against the connection limits, taking its places if it fits.
fn admit(
    peer: &Peer,
    shared: &Shared,
    connections: &Arc<Semaphore>,
    peer_counts: &Arc<PeerCounts>,
) -> Admission {
    let limits = &shared.limits;
    let Ok(permit) = connections.clone().try_acquire_owned() else {
        return Admission::Refused(Refusal::TooManyConnections {
            limit: limits.max_connections,
        });
    };
    let uid = peer.credentials.map(|c| c.uid);
    match peer_counts.admit(uid, limits.max_connections_per_uid) {
        Some(slot) => Admission::Admitted(permit, slot),
        None => Admission::Refused(Refusal::TooManyForPeer {
            limit: limits.max_connections_per_uid,
        }),
    }
}
