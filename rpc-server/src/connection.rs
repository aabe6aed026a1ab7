//! One connection's life: limits, handshake, credentials, then its service.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use rpc_core::handshake::{HandshakeCodec, HandshakeError};
use rpc_core::lane::ShmSize;
use rpc_core::limits::{MAX_ECHOED_NAME, OVER_LIMIT_HELLO_WAIT, REFUSAL_WRITE_TIMEOUT};
use rpc_core::schema::SchemaHash;
use rpc_core::transport::Link;
use rpc_core::untrusted::{Untrusted, has_unsafe_chars};
use rpc_core::{Hello, HelloReply, LocalStream, Refusal, Token};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::limits::{Limits, PeerSlot};
use crate::log_limit::LogLimit;
use crate::peer::{AccessPolicy, Peer};
use crate::service::{HostedService, ServeContext};
use crate::stats::ServerStatus;

/// What every connection task shares.
pub(crate) struct Shared {
    pub services: BTreeMap<String, Hosting>,
    pub limits: Limits,
    pub policy: AccessPolicy,
    pub server_uid: u32,
    pub token: Option<Token>,
    pub status: Arc<ServerStatus>,
    pub shutdown: CancellationToken,
}

/// A hosted service: what serves its connections, and the hash of its schema (announced in
/// every handshake for it).
pub(crate) struct Hosting {
    pub service: Arc<dyn HostedService>,
    pub schema_hash: SchemaHash,
}

/// Whether a new connection fits the limits: it holds its places while it lives, or it is told
/// which limit it hit.
pub(crate) enum Admission {
    /// Within every limit.
    Admitted(OwnedSemaphorePermit, PeerSlot),
    /// Over a limit: refused with this reason once its hello arrives.
    Refused(Refusal),
}

/// Runs one accepted connection to its end.
pub(crate) async fn run(
    stream: LocalStream,
    peer: Peer,
    shared: Arc<Shared>,
    admission: Admission,
) {
    let _open = shared.status.connection_opened();
    let started = Instant::now();
    let mut framed = Framed::new(stream, HandshakeCodec::<Hello, HelloReply>::new());
    let _places = match admission {
        Admission::Admitted(permit, slot) => (permit, slot),
        Admission::Refused(refusal) => {
            // Read the hello first, so the refusal is not lost to a reset on a socket with unread
            // data, but wait only briefly: this connection holds no place.
            let _ = tokio::time::timeout(OVER_LIMIT_HELLO_WAIT, framed.next()).await;
            refuse(&mut framed, &peer, refusal).await;
            return;
        }
    };

    let hello = tokio::select! {
        hello = tokio::time::timeout(shared.limits.handshake_timeout, framed.next()) => hello,
        _ = shared.shutdown.cancelled() => {
            refuse(&mut framed, &peer, Refusal::ShuttingDown).await;
            return;
        }
    };
    let hello = match hello {
        Err(_) => {
            static SILENT: LogLimit = LogLimit::new();
            if let Some(suppressed) = SILENT.allow() {
                tracing::warn!(
                    connection = peer.connection_id,
                    timeout_ms = shared.limits.handshake_timeout.as_millis() as u64,
                    suppressed,
                    "closing connection: no handshake within the timeout"
                );
            }
            return;
        }
        Ok(None) => {
            tracing::debug!(
                connection = peer.connection_id,
                "peer left before its handshake"
            );
            return;
        }
        Ok(Some(Err(err))) => {
            let refusal = match err {
                HandshakeError::UnsupportedVersion(requested) => Refusal::UnsupportedVersion {
                    requested,
                    supported: rpc_core::handshake::PROTOCOL_VERSION,
                },
                other => Refusal::Malformed(rpc_core::error_chain(&other)),
            };
            refuse(&mut framed, &peer, refusal).await;
            return;
        }
        Ok(Some(Ok(hello))) => hello,
    };

    let (service, schema_hash) = match check(&hello, &peer, &shared) {
        Ok(hosting) => (hosting.service.clone(), hosting.schema_hash),
        Err(refusal) => {
            refuse(&mut framed, &peer, refusal).await;
            return;
        }
    };
    // The lane needs a Unix socket (its regions travel as descriptors); on TCP it is off.
    let shm = if peer.endpoint.is_tcp() {
        ShmSize::OFF
    } else {
        hello.shm.min(shared.limits.shm_size)
    };
    let accepted = HelloReply::Accepted {
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        max_frame: shared.limits.max_frame,
        schema_hash,
        shm,
    };
    if let Err(err) = framed.send(accepted).await {
        tracing::debug!(connection = peer.connection_id, error = %err, "peer left during handshake");
        return;
    }
    let creds = peer.credentials;
    tracing::info!(
        connection = peer.connection_id,
        endpoint = %peer.endpoint,
        service = %Untrusted(&hello.service),
        peer_uid = creds.map(|c| c.uid),
        peer_pid = creds.and_then(|c| c.pid),
        "connection accepted"
    );
    let link = Link::from_handshake(framed, shared.limits.max_frame).with_shm(shm);
    let ctx = ServeContext {
        max_in_flight: shared.limits.max_in_flight,
        max_streams: shared.limits.max_streams,
        read_timeout: shared.limits.read_timeout,
        shutdown: shared.shutdown.clone(),
        status: shared.status.clone(),
    };
    let connection_id = peer.connection_id;
    service.serve(link, peer, ctx).await;
    tracing::info!(
        connection = connection_id,
        duration_ms = started.elapsed().as_millis() as u64,
        "connection closed"
    );
}

/// Decides whether `hello` may go on, and to which service.
fn check<'s>(hello: &Hello, peer: &Peer, shared: &'s Shared) -> Result<&'s Hosting, Refusal> {
    if peer.endpoint.is_tcp() {
        let expected = shared.token.as_ref();
        match (&hello.token, expected) {
            (None, _) => return Err(Refusal::MissingToken),
            (Some(given), Some(expected)) if given.matches(expected) => {}
            _ => return Err(Refusal::BadToken),
        }
    }
    if let Some(creds) = &peer.credentials {
        if !shared.policy.allows(creds, shared.server_uid) {
            return Err(Refusal::PeerNotAllowed {
                uid: creds.uid,
                gid: creds.gid,
            });
        }
    }
    // No service is named so; and a name that could forge a log line or drive a terminal is
    // refused for what it is rather than echoed back as an unknown service.
    if has_unsafe_chars(&hello.service) {
        return Err(Refusal::Malformed(
            "service name contains control characters".to_owned(),
        ));
    }
    shared
        .services
        .get(&hello.service)
        .ok_or_else(|| Refusal::UnknownService {
            requested: shorten(&hello.service),
            available: shared.services.keys().cloned().collect(),
        })
}

/// A connection still framed for its handshake.
type HandshakeStream = Framed<LocalStream, HandshakeCodec<Hello, HelloReply>>;

/// Tells the peer why it is refused, then lets the connection close.
async fn refuse(framed: &mut HandshakeStream, peer: &Peer, refusal: Refusal) {
    static REFUSALS: LogLimit = LogLimit::new();
    let creds = peer.credentials;
    if let Some(suppressed) = REFUSALS.allow() {
        tracing::warn!(
            connection = peer.connection_id,
            endpoint = %peer.endpoint,
            peer_uid = creds.map(|c| c.uid),
            peer_pid = creds.and_then(|c| c.pid),
            reason = %refusal,
            suppressed,
            "connection refused"
        );
    }
    let reply = framed.send(HelloReply::Refused(refusal));
    match tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, reply).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::debug!(connection = peer.connection_id, error = %err, "could not send the refusal")
        }
        Err(_) => tracing::debug!(
            connection = peer.connection_id,
            "peer did not read its refusal"
        ),
    }
}

/// A peer-supplied name cut to its first [`MAX_ECHOED_NAME`] characters, so a refusal always
/// fits its frame and a log line stays short.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(MAX_ECHOED_NAME) {
        Some((cut, _)) => name[..cut].to_owned(),
        None => name.to_owned(),
    }
}
