//! [`Connector`]: from a [`Target`] to a connected tarpc client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rpc_core::handshake::HandshakeCodec;
use rpc_core::stream::DEFAULT_SOCKET_BUFFER;
use rpc_core::transport::Link;
use rpc_core::wire::ClientFrame;
use rpc_core::{
    Endpoint, FrameLimit, Hello, HelloReply, LocalStream, ServerLocation, ServiceClient, Token,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::{RequestName, Response};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::codec::Framed;

use crate::channel::Channel;
use crate::error::ConnectError;
use crate::reconnect::ReconnectingChannel;
use crate::target::Target;

/// A generated client `C` connected by [`Connector::connect`]: `Client<KvClient>` is
/// `KvClient<Channel<KvRequest, KvResponse>>`. Name it where a client is stored, e.g. in a
/// struct field.
pub type Client<C> = <C as ServiceClient>::With<
    Channel<<C as ServiceClient>::Request, <C as ServiceClient>::Response>,
>;

pub use rpc_core::limits::DEFAULT_CONNECT_TIMEOUT;

/// Connects generated tarpc clients to a server.
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
    max_frame: FrameLimit,
    socket_buffer: usize,
}

impl Connector {
    /// A connector for `target` with default settings.
    pub fn new(target: Target) -> Self {
        Connector {
            target,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_frame: FrameLimit::default(),
            socket_buffer: DEFAULT_SOCKET_BUFFER,
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

    /// Sets the largest frame this client sends or accepts. The server announces its own limit in
    /// the handshake and a connection honours the smaller of the two, so a request over either
    /// fails alone, before it is sent.
    pub fn max_frame(mut self, limit: FrameLimit) -> Self {
        self.max_frame = limit;
        self
    }

    /// Sets the kernel buffer size for Unix connections (0 keeps the kernel's default).
    pub fn socket_buffer(mut self, bytes: usize) -> Self {
        self.socket_buffer = bytes;
        self
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Connects a generated client, e.g. `KvClient`, to its service. Needs a tokio runtime.
    /// The client calls through a [`Channel`]: `Client<KvClient>` is
    /// `KvClient<Channel<KvRequest, KvResponse>>`.
    pub async fn connect<C: ServiceClient>(&self) -> Result<Client<C>, ConnectError> {
        self.channel(C::NAME).await.map(C::from_stub)
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
        let mut attempts = Vec::new();
        for (endpoint, token) in self.target.candidates()? {
            match self.open(&endpoint, token, service).await {
                Ok((framed, server_max_frame)) => {
                    let limit = self.max_frame.min(server_max_frame);
                    let link = Link::from_handshake(framed, limit);
                    return Ok(Channel::new(
                        link.transport::<Response<Resp>, ClientFrame<Req>>(),
                    ));
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

    /// A stub that reconnects on its own when the server goes away, for a generated client:
    /// `KvClient::from(connector.reconnecting::<KvRequest, KvResponse>("kv").await?)`.
    /// See [`ReconnectingChannel`] for what happens to calls when a connection breaks.
    pub async fn reconnecting<Req, Resp>(
        &self,
        service: &str,
    ) -> Result<ReconnectingChannel<Req, Resp>, ConnectError>
    where
        Req: Serialize + DeserializeOwned + RequestName + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        ReconnectingChannel::connect(self.clone(), service).await
    }

    /// Connects to one endpoint and completes the handshake, within the connect timeout. Returns
    /// the connection and the frame limit the server announced.
    async fn open(
        &self,
        endpoint: &Endpoint,
        token: Option<Token>,
        service: &str,
    ) -> Result<(HandshakeStream, FrameLimit), ConnectError> {
        if endpoint.is_tcp() && token.is_none() {
            return Err(ConnectError::MissingToken {
                endpoint: endpoint.clone(),
            });
        }
        let attempt = async {
            let stream = connect_socket(endpoint).await?;
            if let Err(err) = stream.tune(self.socket_buffer) {
                tracing::debug!(error = %err, "could not tune socket buffers");
            }
            let mut framed = Framed::new(stream, HandshakeCodec::<HelloReply, Hello>::new());
            let handshake_error = |source| ConnectError::Handshake {
                endpoint: endpoint.clone(),
                source,
            };
            framed
                .send(Hello::new(service, token))
                .await
                .map_err(handshake_error)?;
            match framed.next().await {
                Some(Ok(HelloReply::Accepted { max_frame, .. })) => Ok((framed, max_frame)),
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
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::Timeout {
                    endpoint: endpoint.clone(),
                    timeout_ms: self.connect_timeout.as_millis() as u64,
                })
            })
    }
}

/// A connection still framed for its handshake.
type HandshakeStream = Framed<LocalStream, HandshakeCodec<HelloReply, Hello>>;

async fn connect_socket(endpoint: &Endpoint) -> Result<LocalStream, ConnectError> {
    let result = match endpoint {
        Endpoint::Unix(path) => UnixStream::connect(path).await.and_then(LocalStream::unix),
        Endpoint::Tcp(addr) => TcpStream::connect(addr).await.map(LocalStream::Tcp),
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

impl Connector {
    /// Connects a [`Channel`] to the service named `service` whose answers `seed` decodes: for
    /// answers whose type is known only at run time, e.g. a JSON client guided by the schema the
    /// server describes its service with. `Resp`, what the seed makes, is inferred:
    /// `connector.channel_with_seed::<Req, _, _>("notes", seed)`. With `PhantomData<Resp>` it
    /// is [`Connector::channel`].
    pub async fn channel_with_seed<Req, Resp, D>(
        &self,
        service: &str,
        seed: D,
    ) -> Result<Channel<Req, Resp, D>, ConnectError>
    where
        Req: Serialize + RequestName + Send + 'static,
        Resp: Send + 'static,
        D: rpc_core::wire::MessageSeed<Resp> + Send + 'static,
    {
        let mut attempts = Vec::new();
        for (endpoint, token) in self.target.candidates()? {
            match self.open(&endpoint, token, service).await {
                Ok((framed, server_max_frame)) => {
                    let limit = self.max_frame.min(server_max_frame);
                    let seed = rpc_core::wire::ResponseSeed::new(seed);
                    let transport = Link::from_handshake(framed, limit).transport_with_seed(seed);
                    return Ok(Channel::with_seed(transport));
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
}
