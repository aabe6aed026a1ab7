//! The protocol spoken by hand, for tests that must send what no well-behaved client sends, or
//! must see exactly what the server answers and when it hangs up.

use std::io;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use rpc_core::handshake::{HandshakeCodec, MAGIC, PROTOCOL_VERSION};
use rpc_core::schema::SchemaHash;
use rpc_core::serde::Serialize;
use rpc_core::serde::de::DeserializeOwned;
use rpc_core::services::echo::{EchoRequest, EchoResponse};
use rpc_core::services::kv::{KvRequest, KvResponse};
use rpc_core::tarpc::{self, Response, context};
use rpc_core::transport::{Link, WireTransport};
use rpc_core::wire::ClientMessage;
use rpc_core::wire::WireFormat;
use rpc_core::{FrameLimit, Hello, HelloReply, LocalStream, WireCodec};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::{Decoder, Framed, FramedRead};

use crate::ServerProcess;

/// How long a test waits for the server to close a connection it is expected to close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `hello` on a fresh connection and reads the server's reply. Returns the reply and the
/// bare stream, ready for the service's frames when the reply is `Accepted`.
pub async fn handshake<S>(stream: S, hello: Hello) -> (HelloReply, S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(stream, HandshakeCodec::<HelloReply, Hello>::new());
    framed.send(hello).await.expect("the hello is sent");
    read_reply(framed.into_parts().io).await
}

/// Reads the server's handshake reply off `stream`, whose hello has been sent (by [`handshake`],
/// or by hand); returns it and the bare stream. The server sends nothing after its reply unasked.
pub async fn read_reply<S: AsyncRead + Unpin>(stream: S) -> (HelloReply, S) {
    let mut framed = FramedRead::new(stream, HandshakeCodec::<HelloReply, Hello>::new());
    let reply = framed
        .next()
        .await
        .expect("the server answers the hello before closing")
        .expect("the reply is a valid handshake frame");
    let parts = framed.into_parts();
    assert!(
        parts.read_buf.is_empty(),
        "the server sent {} bytes after its handshake reply, unasked",
        parts.read_buf.len()
    );
    (reply, parts.io)
}

/// Opens a bare connection to `server`'s Unix socket, sending nothing.
pub async fn connect(server: &ServerProcess) -> UnixStream {
    let path = server
        .endpoint()
        .unix_path()
        .expect("the server listens on a unix socket");
    UnixStream::connect(path)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", path.display()))
}

/// A connection to `server` past an accepted handshake for `service`, ready for its frames.
pub async fn accepted(server: &ServerProcess, service: &str) -> UnixStream {
    let (reply, stream) = handshake(connect(server).await, Hello::new(service, None)).await;
    assert!(
        matches!(reply, HelloReply::Accepted { .. }),
        "a handshake for {service} got {reply:?}"
    );
    stream
}

/// A raw client's connection to `kv`, past its handshake: any [`ClientMessage`] out (grants and
/// cancels the client library would never send included), tarpc's `Response`s in.
pub async fn raw_kv(
    server: &ServerProcess,
) -> WireTransport<LocalStream, Response<KvResponse>, ClientMessage<KvRequest>> {
    let stream = LocalStream::unix(accepted(server, "kv").await).expect("a unix stream");
    WireTransport::new(
        stream,
        BytesMut::new(),
        WireCodec::new(FrameLimit::default()),
    )
}

/// `kv.watch(prefix)` as request `id`, due in an hour (a stream's deadline bounds only its
/// opening).
pub fn kv_watch(id: u64, prefix: &str) -> ClientMessage<KvRequest> {
    let mut context = context::current();
    context.deadline = std::time::Instant::now() + Duration::from_secs(3600);
    ClientMessage::Request(tarpc::Request {
        context,
        id,
        message: KvRequest::Watch {
            prefix: prefix.into(),
        },
    })
}

/// Credit of `bytes` for stream `id`.
pub fn grant(id: u64, bytes: u64) -> ClientMessage<KvRequest> {
    ClientMessage::Grant {
        request_id: id,
        bytes,
    }
}

/// Reads until the server closes the connection, for at most [`CLOSE_TIMEOUT`], and returns
/// everything it sent. A reset counts as closed: a server that closes a connection with input
/// still unread makes the kernel reset it. Panics if the connection stays open.
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return,
                Err(err) => panic!("reading from the server failed: {err}"),
            }
        }
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, read_all).await.is_err() {
        panic!("the server kept the connection open for {CLOSE_TIMEOUT:?}");
    }
    received
}

/// Decodes the handshake reply at the start of `bytes` (e.g. what [`read_until_closed`] got).
pub fn decode_reply(bytes: &[u8]) -> HelloReply {
    let mut src = BytesMut::from(bytes);
    HandshakeCodec::<HelloReply, Hello>::new()
        .decode(&mut src)
        .expect("the server's bytes are a valid handshake reply")
        .unwrap_or_else(|| panic!("{} bytes are not a complete reply frame", bytes.len()))
}

/// Bytes in the body of the hello [`hello_frame`] makes for a service name of `service_len`
/// bytes: magic, version, the name as a bincode string (u64 length, bytes), an absent token, and
/// no shared-memory lane (a `u64` 0).
pub const fn hello_body_len(service_len: usize) -> usize {
    MAGIC.len() + 2 + 8 + service_len + 1 + 8
}

/// A complete handshake frame with a tokenless hello for `service`, built byte by byte so it can
/// exceed what the handshake codec would ever send.
pub fn hello_frame(service: &str) -> Vec<u8> {
    let body_len = hello_body_len(service.len());
    let mut frame = BytesMut::with_capacity(4 + body_len);
    frame.put_u32(u32::try_from(body_len).expect("a test hello fits a u32 length"));
    frame.put_slice(&MAGIC);
    frame.put_u16(PROTOCOL_VERSION);
    frame.put_u64_le(service.len() as u64);
    frame.put_slice(service.as_bytes());
    frame.put_u8(0);
    frame.put_u64_le(0);
    assert_eq!(frame.len(), 4 + body_len);
    frame.to_vec()
}

/// A complete `echo.echo` request frame, as a tarpc client would send it after the handshake.
pub fn echo_request_frame(id: u64, payload: Vec<u8>) -> Vec<u8> {
    echo_service_frame(
        id,
        context::current(),
        EchoRequest::Echo {
            bytes: ByteBuf::from(payload),
        },
    )
}

/// A complete request frame of the `echo` service with the given context (and so deadline).
pub fn echo_service_frame(id: u64, context: context::Context, message: EchoRequest) -> Vec<u8> {
    let request = ClientMessage::Request(tarpc::Request {
        context,
        id,
        message,
    });
    let mut frame = BytesMut::new();
    WireFormat::new(FrameLimit::new(u32::MAX as usize).expect("in range"))
        .encode_frame(&request, &mut frame)
        .expect("the request encodes");
    frame.to_vec()
}

/// A complete `kv.get` request frame, as a tarpc client would send it after the handshake.
pub fn kv_get_request_frame(id: u64, key: &str) -> Vec<u8> {
    let request = ClientMessage::Request(tarpc::Request {
        context: context::current(),
        id,
        message: KvRequest::Get {
            key: key.to_owned(),
        },
    });
    let mut frame = BytesMut::new();
    WireFormat::new(FrameLimit::new(u32::MAX as usize).expect("in range"))
        .encode_frame(&request, &mut frame)
        .expect("the request encodes");
    frame.to_vec()
}

/// Rewrites the bincode length (a little-endian `u64`) just before the only occurrence of
/// `marker` in `frame` to `claimed`: a string, byte string or vector field whose contents are
/// `marker` then claims `claimed` elements, while the frame's own length prefix stays true.
pub fn claim_length(frame: &mut [u8], marker: &[u8], claimed: u64) {
    let starts: Vec<usize> = frame
        .windows(marker.len())
        .enumerate()
        .filter(|(_, window)| *window == marker)
        .map(|(start, _)| start)
        .collect();
    let [start] = starts[..] else {
        panic!(
            "the marker occurs {} times in the frame, not once",
            starts.len()
        );
    };
    assert!(start >= 4 + 8, "the marker has no length before it");
    let actual = u64::from_le_bytes(frame[start - 8..start].try_into().expect("eight bytes"));
    assert_eq!(
        actual,
        marker.len() as u64,
        "the eight bytes before the marker are not its bincode length"
    );
    frame[start - 8..start].copy_from_slice(&claimed.to_le_bytes());
}

/// Decodes the body of a response frame of the `echo` service.
pub fn decode_echo_response(body: &[u8]) -> Response<EchoResponse> {
    WireFormat::new(FrameLimit::new(u32::MAX as usize).expect("in range"))
        .decode(body)
        .expect("the body is an echo response")
}

/// A fake server's first steps: accepts one connection on `listener` and reads its hello,
/// returning the connection still framed for the handshake, so the fake can answer as it likes.
pub async fn accept_hello(
    listener: &UnixListener,
) -> Framed<LocalStream, HandshakeCodec<Hello, HelloReply>> {
    accept_any_hello(listener).await.1
}

/// A fake server's first steps for a connection to any service: accepts one connection on
/// `listener` and reads its hello, returning the hello and the connection still framed for the
/// handshake (see [`accept_hello`]).
pub async fn accept_any_hello(
    listener: &UnixListener,
) -> (
    Hello,
    Framed<LocalStream, HandshakeCodec<Hello, HelloReply>>,
) {
    let (stream, _) = listener.accept().await.expect("the client connects");
    let stream = LocalStream::unix(stream).expect("a unix stream");
    let mut framed = Framed::new(stream, HandshakeCodec::<Hello, HelloReply>::new());
    let hello = framed
        .next()
        .await
        .expect("the client says hello")
        .expect("the hello is valid");
    (hello, framed)
}

/// A fake server's side of a handshake it accepts: answers `Accepted` (the default frame limit,
/// `schema_hash`) on `framed`, whose hello has been read, and returns the connection as the
/// transport a server of `Req` and `Resp` speaks. For tests of what a client does with a hostile
/// server's answers.
pub async fn accept_as_fake_server<Req, Resp>(
    mut framed: Framed<LocalStream, HandshakeCodec<Hello, HelloReply>>,
    schema_hash: SchemaHash,
) -> WireTransport<LocalStream, ClientMessage<Req>, Response<Resp>> {
    let max_frame = FrameLimit::default();
    framed
        .send(HelloReply::Accepted {
            server_version: "0.0.0-fake".into(),
            max_frame,
            schema_hash,
            shm: rpc_core::lane::ShmSize::OFF,
        })
        .await
        .expect("the acceptance is sent");
    Link::from_handshake(framed, max_frame).transport()
}

/// A fake server's loop: answers each request on `transport` with `answer(request)` until the
/// client hangs up (cancels and grants are ignored). Returns how many it answered.
pub async fn answer_each<Req, Resp>(
    mut transport: WireTransport<LocalStream, ClientMessage<Req>, Response<Resp>>,
    mut answer: impl FnMut(Req) -> Resp,
) -> usize
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    let mut answered = 0;
    while let Some(Ok(message)) = transport.next().await {
        let ClientMessage::Request(request) = message else {
            continue;
        };
        let response = Response {
            request_id: request.id,
            message: Ok(answer(request.message)),
        };
        if transport.send(response).await.is_err() {
            break;
        }
        answered += 1;
    }
    answered
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Encoder;

    use super::*;

    #[test]
    fn hello_frame_is_what_the_handshake_codec_sends() {
        let mut encoded = BytesMut::new();
        HandshakeCodec::<HelloReply, Hello>::new()
            .encode(Hello::new("kv", None), &mut encoded)
            .expect("encodes");
        assert_eq!(hello_frame("kv"), encoded.to_vec());
    }
}
