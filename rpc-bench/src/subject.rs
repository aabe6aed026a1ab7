//! What the bench measures: a [`Subject`] is one implementation (the framework, a baseline, or
//! the framework in another configuration) over one transport, and knows how to open a
//! connection to it.

use std::sync::Arc;

use anyhow::Context as _;
use rpc_client::{Client, Connector, Target};
use rpc_core::lane::ShmSize;
use rpc_core::services::echo::EchoClient;
use rpc_core::{Endpoint, Token};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::dedicated::Dedicated;
use crate::large_payload;
use crate::raw::RawConnection;
use crate::stock;

/// What is measured: which code path carries the echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Implementation {
    /// This framework: rpc-server and rpc-client, over the socket alone (the shared-memory lane
    /// off; see [`Subject::connector`]).
    Rpc,
    /// Length-prefixed echo with no RPC layer.
    Raw,
    /// Stock tarpc 0.38 serde transport, as its examples run it: multi-thread runtimes.
    Tarpc,
    /// Stock tarpc in its fastest configuration here: server and client each on a
    /// current-thread runtime, so no call crosses a thread.
    #[serde(rename = "tarpc-ct")]
    TarpcCt,
    /// This framework in its current-thread configuration: `rpc-server --threads 1` and a
    /// client on a current-thread runtime of its own, so no call crosses a thread.
    #[serde(rename = "rpc-ct")]
    RpcCt,
    /// Another build of rpc-server (`--compare-server`), called by this build's client: the B
    /// of an A/B comparison measured in the same run.
    #[serde(rename = "rpc-b")]
    RpcB,
    /// This framework with the shared-memory lane (`rpc_core::lane`): the server of `rpc`, over
    /// the same Unix socket, its client offering a region (see [`Subject::connector`]), so that
    /// fields of 32 KiB or more travel through shared memory. Unix sockets only: the lane is
    /// always off on TCP.
    #[serde(rename = "rpc-shm")]
    RpcShm,
}

impl Implementation {
    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Rpc => "rpc",
            Implementation::RpcCt => "rpc-ct",
            Implementation::Raw => "raw",
            Implementation::Tarpc => "tarpc",
            Implementation::TarpcCt => "tarpc-ct",
            Implementation::RpcB => "rpc-b",
            Implementation::RpcShm => "rpc-shm",
        }
    }
}

/// The socket kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Unix domain socket.
    Uds,
    /// TCP loopback.
    Tcp,
}

impl Transport {
    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Uds => "uds",
            Transport::Tcp => "tcp",
        }
    }
}

/// One implementation over one transport: how to open a connection to it.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The implementation.
    pub implementation: Implementation,
    /// The transport.
    pub transport: Transport,
    /// Its server's endpoint.
    pub endpoint: Endpoint,
    /// The token, for the rpc server over TCP.
    pub token: Option<Token>,
    /// The thread its connections are opened and driven on, if not the bench's own runtime.
    pub dedicated: Option<Arc<Dedicated>>,
}

/// An open connection to a subject, of the kind its implementation speaks.
pub(crate) enum Connection {
    /// An echo client.
    Echo(Echoer),
    /// A raw-echo connection.
    Raw(RawConnection),
}

/// An echo client: the framework's, or stock tarpc's (its own channel and dispatch task).
#[derive(Clone)]
pub(crate) enum Echoer {
    /// The framework's client.
    Rpc(Client<EchoClient>),
    /// Stock tarpc's client.
    Stock(EchoClient),
}

impl Echoer {
    /// One echo call.
    pub(crate) async fn echo(&self, bytes: ByteBuf) -> Result<ByteBuf, tarpc::client::RpcError> {
        match self {
            Echoer::Rpc(client) => client.echo(tarpc::context::current(), bytes).await,
            Echoer::Stock(client) => client.echo(tarpc::context::current(), bytes).await,
        }
    }
}

impl Subject {
    /// Runs the future `make` makes where this subject's connections live: its dedicated
    /// thread, or a worker of the bench's runtime (as an application's own tasks run, not on the
    /// thread blocked in `block_on`, which would add a cross-thread hop to every call).
    pub async fn run<F, T>(&self, make: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        match &self.dedicated {
            Some(thread) => thread.run(make).await,
            None => tokio::spawn(make())
                .await
                .context("a measuring task panicked"),
        }
    }

    /// The framework's client settings for this subject, for echoes of `payload` bytes:
    /// `rpc-shm` offers a region (the client's default, or room for a large payload), every
    /// other subject turns the lane off; the frame limit is the default, or room for a large
    /// payload (see `large_payload.rs`). The lane is on by default on Unix connections, so a
    /// subject meant to measure the socket path says so here.
    pub fn connector(&self, payload: usize) -> anyhow::Result<Connector> {
        let shm = match self.implementation {
            Implementation::RpcShm => large_payload::region(payload)?,
            _ => ShmSize::OFF,
        };
        Ok(Connector::new(Target::Endpoint {
            endpoint: self.endpoint.clone(),
            token: self.token.clone(),
        })
        .shm_size(shm)
        .max_frame(large_payload::frame_limit(payload)?))
    }

    /// A connection with the framework's client for `payload`-byte fields
    /// ([`Subject::connector`]), whose streams open with `stream_window` bytes of credit
    /// (`None`: the client's default).
    pub async fn connect_rpc(
        &self,
        payload: usize,
        stream_window: Option<u64>,
    ) -> anyhow::Result<Client<EchoClient>> {
        let mut connector = self.connector(payload)?;
        if let Some(bytes) = stream_window {
            connector = connector.stream_window(bytes)?;
        }
        Ok(connector.connect::<EchoClient>().await?)
    }

    /// A connection to this subject for echoes of `payload` bytes, with the client its
    /// implementation uses.
    pub(crate) async fn connect(&self, payload: usize) -> anyhow::Result<Connection> {
        Ok(match self.implementation {
            Implementation::Rpc
            | Implementation::RpcCt
            | Implementation::RpcB
            | Implementation::RpcShm => {
                Connection::Echo(Echoer::Rpc(self.connect_rpc(payload, None).await?))
            }
            Implementation::Tarpc | Implementation::TarpcCt => {
                Connection::Echo(Echoer::Stock(stock::connect(&self.endpoint).await?))
            }
            Implementation::Raw => Connection::Raw(RawConnection::connect(&self.endpoint).await?),
        })
    }
}
