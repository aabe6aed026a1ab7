//! [`Connector`]: from a [`Target`] to a connected tarpc client.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rpc_core::handshake::{HandshakeCodec, HandshakeError};
use rpc_core::lane::{LaneError, ShmSize};
use rpc_core::schema::SchemaHash;
use rpc_core::stream::DEFAULT_SOCKET_BUFFER;
use rpc_core::transport::Link;
use rpc_core::wire::{ClientFrame, MessageSeed, ResponseSeed};
use rpc_core::{
    Endpoint, FrameLimit, Hello, HelloReply, LocalStream, ServerLocation, Service, Token,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::{RequestName, Response};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::codec::Framed;

use crate::channel::{Channel, StreamLimits};
use crate::error::ConnectError;
use crate::reconnect::ReconnectingChannel;
use crate::server_check::ServerCheck;
use crate::target::Target;

/// A generated client `C` connected by [`Connector::connect`]: `Client<KvClient>` is
/// `KvClient<Channel<KvRequest, KvResponse>>`. Name it where a client is stored, e.g. in a
/// struct field.
pub type Client<C> =
    <C as Service>::With<Channel<<C as Service>::Request, <C as Service>::Response>>;

/// A generated client `C` over a [`ReconnectingChannel`], as [`Connector::reconnecting`] returns
/// it: `Reconnecting<KvClient>` is `KvClient<ReconnectingChannel<KvRequest, KvResponse>>`.
pub type Reconnecting<C> =
    <C as Service>::With<ReconnectingChannel<<C as Service>::Request, <C as Service>::Response>>;

pub use rpc_core::limits::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STREAM_WINDOW, MAX_STREAM_CREDIT};

/// Connects generated clients to a server, each to the service its type names.
///
/// ```no_run
/// use rpc_client::Connector;
/// use rpc_core::services::kv::KvClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let kv = Connector::from_env("rpc")?.connect::<KvClient>().await?;
/// kv.set(tarpc::context::current(), "greeting".into(), "hello".into()).await??;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connector {
    target: Target,
    connect_timeout: Duration,
    /// When set, no connection attempt runs past it (see [`Connector::until`]).
    deadline: Option<Instant>,
    max_frame: FrameLimit,
    socket_buffer: usize,
    server_check: ServerCheck,
    /// The credit each stream opens with (see [`Connector::stream_window`]).
    stream_window: u64,
    /// The shared-memory regions offered on Unix connections (see [`Connector::shm_size`]).
    shm_size: ShmSize,
}

/// A stream window [`Connector::stream_window`] cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a stream window of {bytes} bytes is out of range: it must be from 1 byte to {max} bytes \
     (rpc_core::limits::MAX_STREAM_CREDIT, the most credit a server holds for a stream); the \
     default is {default} bytes",
    max = MAX_STREAM_CREDIT,
    default = DEFAULT_STREAM_WINDOW
)]
pub struct StreamWindowError {
    /// The window asked for.
    pub bytes: u64,
}

impl Connector {
    /// A connector for `target` with default settings.
    pub fn new(target: Target) -> Self {
        Connector {
            target,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            deadline: None,
            max_frame: FrameLimit::default(),
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            server_check: ServerCheck::default(),
            stream_window: DEFAULT_STREAM_WINDOW,
            shm_size: ShmSize::default(),
        }
    }

    /// `RPC_ENDPOINT` when set, else the server called `name` in the default runtime directory.
    pub fn from_env(name: &str) -> Result<Self, ConnectError> {
        let location = ServerLocation::new(None, name).map_err(|err| ConnectError::BadEnv {
            var: "server name",
            reason: err.to_string(),
        })?;
        Ok(Connector::new(Target::from_env_or(location)?))
    }

    /// Exactly `endpoint` (a TCP one takes its token from `RPC_TOKEN`, or use
    /// [`Connector::new`] with [`Target::Endpoint`]).
    pub fn endpoint(endpoint: Endpoint) -> Result<Self, ConnectError> {
        Ok(Connector::new(Target::endpoint(endpoint)?))
    }

    /// Sets the time allowed to connect and complete the handshake.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// This connector, with each connection attempt (connecting and the handshake) also cut
    /// short at `deadline`: how a client that reconnects within a call's deadline keeps one
    /// attempt, at a server that accepts but does not answer (stopped with SIGSTOP, say), from
    /// outlasting the call. Such an attempt fails with [`ConnectError::Timeout`].
    pub fn until(&self, deadline: Instant) -> Connector {
        Connector {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// Sets the largest frame this client sends or accepts. The server announces its own limit in
    /// the handshake and a connection honours the smaller of the two, so a request over either
    /// fails alone, before it is sent.
    pub fn max_frame(mut self, limit: FrameLimit) -> Self {
        self.max_frame = limit;
        self
    }

    /// Sets the size of the shared-memory regions this client offers on Unix connections (on
    /// Linux): [`rpc_core::lane::DEFAULT_SHM_SIZE`] (4 MiB) by default, [`ShmSize::OFF`] for
    /// none. The server answers the smaller of this and its own `--shm-size`. With the lane, byte
    /// and string fields of 32 KiB or more travel through a region mapped by both processes
    /// instead of through the socket, when they fit; see [`rpc_core::lane`].
    pub fn shm_size(mut self, size: ShmSize) -> Self {
        self.shm_size = size;
        self
    }

    /// Sets the kernel buffer size for Unix connections (0 keeps the kernel's default).
    pub fn socket_buffer(mut self, bytes: usize) -> Self {
        self.socket_buffer = bytes;
        self
    }

    /// Sets how far each stream opened on this connector's connections may run ahead of its
    /// consumer: the credit, in bytes of answers (frame bodies), granted to the server when the
    /// stream opens and granted back as the consumer takes answers (once half of it is taken).
    /// A consumer that stops taking holds at most this much (plus one answer) in flight, and the
    /// server waits. Larger windows keep a fast consumer fed across the round trip of a grant;
    /// smaller ones bound memory per stream. Default [`DEFAULT_STREAM_WINDOW`] (256 KiB).
    ///
    /// From 1 byte (the server then sends one answer per grant) to [`MAX_STREAM_CREDIT`]
    /// (64 MiB, the most credit a server holds for a stream); a value outside that is refused,
    /// never clamped.
    pub fn stream_window(mut self, bytes: u64) -> Result<Self, StreamWindowError> {
        if !(1..=MAX_STREAM_CREDIT).contains(&bytes) {
            return Err(StreamWindowError { bytes });
        }
        self.stream_window = bytes;
        Ok(self)
    }

    /// Also accepts a server over a Unix socket that runs as `uid` (a system daemon's, say).
    /// By default only a server run by this process's own uid or by root is talked to; any
    /// other is refused with [`ConnectError::UnexpectedServer`] before anything is sent, and a
    /// socket found by name whose file another uid owns with [`ConnectError::ForeignSocketFile`].
    pub fn expect_server_uid(mut self, uid: u32) -> Self {
        self.server_check.expected = Some(uid);
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Connects a generated client, e.g. `KvClient`, to its service. Needs a tokio runtime.
    /// The client calls through a [`Channel`]: `Client<KvClient>` is
    /// `KvClient<Channel<KvRequest, KvResponse>>`.
    ///
    /// The server announces the hash of the service's schema in the handshake; if it is not the
    /// hash of `C`'s schema (the server runs another version of the service), a warning is
    /// logged (`tracing`, target `rpc_client`): calls may then fail to decode, or be misread.
    pub async fn connect<C: Service>(&self) -> Result<Client<C>, ConnectError> {
        self.checked_channel(C::NAME, schema_hash::<C>())
            .await
            .map(C::from_stub)
    }

    /// [`Connector::channel`], warning when the server's schema hash for `service` is not
    /// `expected` (the hash of the schema the client was built with, if known).
    pub(crate) async fn checked_channel<Req, Resp>(
        &self,
        service: &str,
        expected: Option<SchemaHash>,
    ) -> Result<Channel<Req, Resp>, ConnectError>
    where
        Req: Serialize + RequestName + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        let (link, server_schema) = self.link(service).await?;
        if let Some(ours) = expected {
            warn_if_schema_differs(service, ours, server_schema);
        }
        let streams = self.stream_limits(&link);
        Ok(Channel::new(link.transport(), streams))
    }

    /// Connects a [`Channel`] to the service named `service`, for requests and responses
    /// not tied to a generated client.
    pub async fn channel<Req, Resp>(
        &self,
        service: &str,
    ) -> Result<Channel<Req, Resp>, ConnectError>
    where
        Req: Serialize + RequestName + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        let (link, _) = self.link(service).await?;
        let streams = self.stream_limits(&link);
        Ok(Channel::new(
            link.transport::<Response<Resp>, ClientFrame<Req>>(),
            streams,
        ))
    }

    /// Connects a [`Channel`] to the service named `service` whose answers `seed` decodes: for
    /// answers whose type is known only at run time, e.g. a JSON client guided by the schema the
    /// server describes its service with ([`crate::JsonClient`]). `Resp`, what the seed makes, is
    /// inferred: `connector.channel_with_seed::<Req, _, _>("notes", seed)`. With
    /// `PhantomData<Resp>` it is [`Connector::channel`].
    pub async fn channel_with_seed<Req, Resp, D>(
        &self,
        service: &str,
        seed: D,
    ) -> Result<Channel<Req, Resp, D>, ConnectError>
    where
        Req: Serialize + RequestName + Send + 'static,
        Resp: Send + 'static,
        D: MessageSeed<Resp> + Send + 'static,
    {
        self.seeded_channel(service, seed)
            .await
            .map(|(channel, _)| channel)
    }

    /// [`Connector::channel_with_seed`], also returning the hash of the service's schema the
    /// server announced.
    pub(crate) async fn seeded_channel<Req, Resp, D>(
        &self,
        service: &str,
        seed: D,
    ) -> Result<(Channel<Req, Resp, D>, SchemaHash), ConnectError>
    where
        Req: Serialize + RequestName + Send + 'static,
        Resp: Send + 'static,
        D: MessageSeed<Resp> + Send + 'static,
    {
        let (link, schema_hash) = self.link(service).await?;
        let streams = self.stream_limits(&link);
        let transport = link.transport_with_seed(ResponseSeed::new(seed));
        Ok((Channel::with_seed(transport, streams), schema_hash))
    }

    /// The flow control of streams on `link`: this connector's window, and the frame limit the
    /// connection honours (how far past its credit one answer may take the server).
    fn stream_limits(&self, link: &Link) -> StreamLimits {
        StreamLimits {
            window: self.stream_window,
            frame_limit: link.limit(),
        }
    }

    /// The time allowed to connect and complete the handshake from now: the connect timeout, or
    /// less when the deadline set by [`Connector::until`] comes sooner.
    pub fn timeout(&self) -> Duration {
        match self.deadline {
            Some(deadline) => self
                .connect_timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            None => self.connect_timeout,
        }
    }

    /// Connects to `service`, trying each endpoint of the target in turn, and completes the
    /// handshake. Returns the connection and the hash of the service's schema on the server.
    async fn link(&self, service: &str) -> Result<(Link, SchemaHash), ConnectError> {
        let mut attempts = Vec::new();
        for (endpoint, token) in self.target.candidates()? {
            match self.open(&endpoint, token, service).await {
                Ok((framed, server_max_frame, schema_hash, shm)) => {
                    let limit = self.max_frame.min(server_max_frame);
                    let link = Link::from_handshake(framed, limit).with_shm(shm);
                    return Ok((link, schema_hash));
                }
                Err(err) if err.try_next() => {
                    tracing::debug!(%endpoint, error = %err, "endpoint failed; trying the next");
                    attempts.push(err);
                }
                Err(err) => return Err(err),
            }
        }
        match attempts.len() {
            1 => Err(attempts.remove(0)),
            _ => Err(ConnectError::AllFailed { attempts }),
        }
    }

    /// A generated client, e.g. `KvClient`, over a stub that reconnects on its own when the
    /// server goes away: `Reconnecting<KvClient>` is
    /// `KvClient<ReconnectingChannel<KvRequest, KvResponse>>`. It connects now, so a server that
    /// is not there fails here. A call in flight when a connection breaks fails with
    /// [`CallInterrupted`](crate::CallInterrupted); see [`ReconnectingChannel`].
    pub async fn reconnecting<C: Service>(&self) -> Result<Reconnecting<C>, ConnectError> {
        ReconnectingChannel::connect(self.clone(), C::NAME, schema_hash::<C>(), None)
            .await
            .map(C::from_stub)
    }

    /// As [`Connector::reconnecting`], and a call in flight when its connection broke is sent
    /// again, once, if `idempotent` says it is safe to run twice:
    /// `connector.reconnecting_with_retry::<KvClient>(|r| matches!(r, KvRequest::Get { .. }))`.
    pub async fn reconnecting_with_retry<C: Service>(
        &self,
        idempotent: fn(&C::Request) -> bool,
    ) -> Result<Reconnecting<C>, ConnectError> {
        ReconnectingChannel::connect(self.clone(), C::NAME, schema_hash::<C>(), Some(idempotent))
            .await
            .map(C::from_stub)
    }

    /// Connects to one endpoint and completes the handshake, within the connect timeout. Returns
    /// the connection, and the frame limit, schema hash and shared-memory size the server
    /// announced.
    async fn open(
        &self,
        endpoint: &Endpoint,
        token: Option<Token>,
        service: &str,
    ) -> Result<(HandshakeStream, FrameLimit, SchemaHash, ShmSize), ConnectError> {
        if endpoint.is_tcp() && token.is_none() {
            return Err(ConnectError::MissingToken {
                endpoint: endpoint.clone(),
            });
        }
        let attempt = async {
            // Who serves, checked before anything is sent (server_check.rs).
            if let Target::Name(_) = self.target {
                self.server_check.socket_file(endpoint)?;
            }
            let stream = connect_socket(endpoint).await?;
            self.server_check.peer(endpoint, &stream)?;
            match stream.tune(self.socket_buffer) {
                Ok(Some(granted)) if granted < self.socket_buffer => tracing::debug!(
                    granted,
                    asked = self.socket_buffer,
                    "the kernel capped the socket buffers (net.core.wmem_max, net.core.rmem_max)"
                ),
                Ok(_) => {}
                Err(err) => tracing::debug!(error = %err, "could not tune socket buffers"),
            }
            let mut framed = Framed::new(stream, HandshakeCodec::<HelloReply, Hello>::new());
            let handshake_error = |source| ConnectError::Handshake {
                endpoint: endpoint.clone(),
                source,
            };
            // The lane's regions travel as descriptors: offered on Unix sockets only.
            let offer = if endpoint.is_tcp() {
                ShmSize::OFF
            } else {
                self.shm_size
            };
            framed
                .send(Hello::new(service, token).with_shm(offer))
                .await
                .map_err(handshake_error)?;
            match framed.next().await {
                Some(Ok(HelloReply::Accepted { shm, .. })) if shm > offer => Err(handshake_error(HandshakeError::Codec(
                    LaneError::Protocol(format!(
                        "the server answered a shared-memory size of {shm} bytes to an offer of {offer}"
                    ))
                    .into(),
                ))),
                Some(Ok(HelloReply::Accepted {
                    max_frame,
                    schema_hash,
                    shm,
                    ..
                })) => Ok((framed, max_frame, schema_hash, shm)),
                Some(Ok(HelloReply::Refused(refusal))) => Err(ConnectError::Refused {
                    endpoint: endpoint.clone(),
                    refusal,
                }),
                Some(Err(err)) => Err(handshake_error(err)),
                None => Err(handshake_error(
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "server closed the connection without answering the handshake",
                    )
                    .into(),
                )),
            }
        };
        let timeout = self.timeout();
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::Timeout {
                    endpoint: endpoint.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            })
    }
}

/// A connection still framed for its handshake.
type HandshakeStream = Framed<LocalStream, HandshakeCodec<HelloReply, Hello>>;

async fn connect_socket(endpoint: &Endpoint) -> Result<LocalStream, ConnectError> {
    let result = match endpoint {
        Endpoint::Unix(path) => UnixStream::connect(path).await.and_then(LocalStream::unix),
        Endpoint::Tcp(addr) => TcpStream::connect(addr).await.and_then(LocalStream::tcp),
    };
    result.map_err(|source| {
        let reason = match source.kind() {
            std::io::ErrorKind::NotFound => "no such socket",
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            _ => {
                return ConnectError::Io {
                    endpoint: endpoint.clone(),
                    source,
                };
            }
        };
        ConnectError::NoServer {
            endpoint: endpoint.clone(),
            reason: reason.to_owned(),
        }
    })
}

/// The hash of `C`'s schema, if it traces (a service whose schema does not trace cannot be
/// hosted either, so there is nothing to compare).
pub(crate) fn schema_hash<C: Service>() -> Option<SchemaHash> {
    C::schema().ok().map(|schema| schema.hash())
}

/// Logs a warning when the server's schema for `service` is not the client's: the server runs
/// another version of the service, and calls may fail to decode or be misread.
fn warn_if_schema_differs(service: &str, ours: SchemaHash, server_schema: SchemaHash) {
    if ours != server_schema {
        tracing::warn!(
            service,
            client_schema = %ours,
            server_schema = %server_schema,
            "the server's `{service}` service is not the one this client was built with: calls may \
             fail to decode or be misread; build the client against the server's version (see \
             `rpc-client describe {service}`)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector() -> Connector {
        let endpoint = Endpoint::Unix("/nonexistent/rpc.sock".into());
        Connector::endpoint(endpoint).expect("a Unix endpoint needs no token")
    }

    #[test]
    fn a_stream_window_is_taken_from_one_byte_to_the_most_credit_a_server_holds() {
        for bytes in [
            1,
            2,
            DEFAULT_STREAM_WINDOW,
            MAX_STREAM_CREDIT - 1,
            MAX_STREAM_CREDIT,
        ] {
            let connector = connector().stream_window(bytes).expect("in range");
            assert_eq!(connector.stream_window, bytes);
        }
        assert_eq!(connector().stream_window, DEFAULT_STREAM_WINDOW);
    }

    #[test]
    fn a_stream_window_out_of_range_is_refused_not_clamped() {
        for bytes in [0, MAX_STREAM_CREDIT + 1, u64::MAX] {
            let err = connector().stream_window(bytes).expect_err("out of range");
            assert_eq!(err, StreamWindowError { bytes });
            let message = err.to_string();
            assert!(message.contains(&bytes.to_string()), "{message}");
            assert!(
                message.contains(&MAX_STREAM_CREDIT.to_string()),
                "{message}"
            );
        }
    }
}
