//! `echo`: a liveness probe and a byte echo, the service the benchmark measures.

use serde_bytes::ByteBuf;

use super::ServiceDescription;

/// The name the echo service is hosted under.
pub const NAME: &str = "echo";

/// How `rpc-client list` describes this service.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: NAME,
    methods: &[("ping", "{}"), ("echo", r#"{"bytes":[1,2,3]}"#)],
};

/// Answers pings and sends bytes back unchanged.
#[tarpc::service]
pub trait Echo {
    /// Does nothing and returns: a round trip with no payload.
    async fn ping();
    /// Returns `bytes` unchanged. `ByteBuf` travels as one byte string, not byte by byte.
    async fn echo(bytes: ByteBuf) -> ByteBuf;
}

crate::service_client!(EchoClient, EchoRequest, EchoResponse, NAME);
