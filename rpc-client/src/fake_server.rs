//! A scripted server for this crate's tests of clients that connect by endpoint
//! (`ReconnectingChannel`, `BlockingClient`): a Unix socket path of the test's own, and the
//! server's side of the real handshake, after which the test reads requests and writes answers
//! as it likes.

use std::path::PathBuf;

use futures::{SinkExt, StreamExt};
use rpc_core::handshake::HandshakeCodec;
use rpc_core::schema::SchemaHash;
use rpc_core::transport::Link;
use rpc_core::wire::ClientMessage;
use rpc_core::{FrameLimit, Hello, HelloReply, LocalStream, WireTransport};
use tarpc::Response;
use tokio::net::UnixListener;
use tokio_util::codec::Framed;

/// A Unix socket path of this test's own (`name` tells the tests apart), removed when dropped.
pub(crate) struct SocketPath(pub(crate) PathBuf);

impl SocketPath {
    /// The path, free: a file left there by an earlier run is removed.
    pub(crate) fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rpc-client-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Accepts one connection on `listener` and completes its handshake, as a server hosting
/// `service` would (the default frame limit, a zero schema hash); returns the server's end of
/// the connection.
pub(crate) async fn accept<Req, Resp>(
    listener: &UnixListener,
    service: &str,
) -> WireTransport<LocalStream, ClientMessage<Req>, Response<Resp>> {
    let (stream, _) = listener.accept().await.expect("the client connects");
    let stream = LocalStream::unix(stream).expect("a unix stream");
    let mut framed = Framed::new(stream, HandshakeCodec::<Hello, HelloReply>::new());
    let hello = framed
        .next()
        .await
        .expect("a hello")
        .expect("a valid hello");
    assert_eq!(hello.service, service);
    let max_frame = FrameLimit::default();
    let accepted = HelloReply::Accepted {
        server_version: "0.0.0-test".into(),
        max_frame,
        schema_hash: SchemaHash(0),
        shm: rpc_core::lane::ShmSize::OFF,
    };
    framed.send(accepted).await.expect("the acceptance is sent");
    Link::from_handshake(framed, max_frame).transport()
}
