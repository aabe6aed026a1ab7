//! [`ClientFrame`]: a client's request, cancel or grant, encoded to exactly the bytes the
//! derived `Serialize` of [`ClientMessage`] (tarpc's, for requests and cancels) produces under
//! this crate's format, only faster: tarpc writes a trace id as sixteen
//! one-byte elements, about an eighth of a 64-byte call's client instructions; here it is one
//! 16-byte write.

use std::time::{Duration, Instant};

use serde::ser::{SerializeStruct, SerializeStructVariant};
use serde::{Serialize, Serializer};
use tarpc::{Request, context, trace};

use super::ClientMessage;

/// A client's message to the server, serialized as [`ClientMessage<Req>`] is under this crate's
/// wire format (bincode, fixed-width little-endian integers), so a server decodes it as one.
///
/// With another serde format the trace id's encoding would differ (a 128-bit integer instead of
/// sixteen bytes): this type is for [`crate::WireTransport`] only.
///
/// The deadline goes on the wire as the time left (tarpc's encoding), measured once, when the
/// frame is made: a large frame is serialized again each time the socket takes more of it, and
/// every pass must produce the same bytes.
#[derive(Debug)]
pub struct ClientFrame<Req> {
    message: ClientMessage<Req>,
    time_left: Duration,
}

impl<Req> ClientFrame<Req> {
    /// The frame for `message`, its deadline measured from now.
    pub fn new(message: ClientMessage<Req>) -> Self {
        let time_left = match &message {
            ClientMessage::Request(request) => request
                .context
                .deadline
                .saturating_duration_since(Instant::now()),
            _ => Duration::ZERO,
        };
        ClientFrame { message, time_left }
    }
}

impl<Req: Serialize> Serialize for ClientFrame<Req> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.message {
            ClientMessage::Request(request) => serializer.serialize_newtype_variant(
                "ClientMessage",
                0,
                "Request",
                &RequestFields(request, self.time_left),
            ),
            ClientMessage::Cancel {
                trace_context,
                request_id,
            } => {
                let mut cancel =
                    serializer.serialize_struct_variant("ClientMessage", 1, "Cancel", 2)?;
                cancel.serialize_field("trace_context", &TraceFields(trace_context))?;
                cancel.serialize_field("request_id", request_id)?;
                cancel.end()
            }
            ClientMessage::Grant { request_id, bytes } => {
                let mut grant =
                    serializer.serialize_struct_variant("ClientMessage", 2, "Grant", 2)?;
                grant.serialize_field("request_id", request_id)?;
                grant.serialize_field("bytes", bytes)?;
                grant.end()
            }
        }
    }
}

/// `tarpc::Request`'s fields, in its order, with the deadline's time left.
struct RequestFields<'a, Req>(&'a Request<Req>, Duration);

impl<Req: Serialize> Serialize for RequestFields<'_, Req> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut request = serializer.serialize_struct("Request", 3)?;
        request.serialize_field("context", &ContextFields(&self.0.context, self.1))?;
        request.serialize_field("id", &self.0.id)?;
        request.serialize_field("message", &self.0.message)?;
        request.end()
    }
}

/// `tarpc::context::Context`'s fields: the deadline as the time left (tarpc's encoding, which
/// saturates at zero), then the trace context.
struct ContextFields<'a>(&'a context::Context, Duration);

impl Serialize for ContextFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut context = serializer.serialize_struct("Context", 2)?;
        context.serialize_field("deadline", &self.1)?;
        context.serialize_field("trace_context", &TraceFields(&self.0.trace_context))?;
        context.end()
    }
}

/// `tarpc::trace::Context`'s fields. tarpc encodes the trace id as its sixteen little-endian
/// bytes, one element at a time; bincode writes a `u128` as the same sixteen bytes at once.
struct TraceFields<'a>(&'a trace::Context);

impl Serialize for TraceFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut trace = serializer.serialize_struct("Context", 3)?;
        trace.serialize_field("trace_id", &u128::from(self.0.trace_id))?;
        trace.serialize_field("span_id", &u64::from(self.0.span_id))?;
        trace.serialize_field("sampling_decision", &self.0.sampling_decision)?;
        trace.end()
    }
}

#[cfg(test)]
mod tests {
    use bincode::Options as _;
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::wire::WireFormat;
    use crate::{FrameLimit, services::echo::EchoRequest};

    fn bincode_of<T: Serialize>(value: &T) -> Vec<u8> {
        WireFormat::new(FrameLimit::default())
            .options()
            .serialize(value)
            .expect("encodes")
    }

    /// The same messages every time for the same deadline.
    fn messages(deadline: Instant) -> Vec<ClientMessage<EchoRequest>> {
        let mut out = Vec::new();
        for (i, sampled) in [(0u64, false), (7, true), (u64::MAX, false)] {
            let mut context = context::current();
            context.deadline = deadline;
            context.trace_context = trace::Context {
                trace_id: trace::TraceId::from(
                    0x0123_4567_89ab_cdef_fedc_ba98_7654_3210 ^ i as u128,
                ),
                span_id: trace::SpanId::from(0x1122_3344_5566_7788 ^ i),
                sampling_decision: if sampled {
                    trace::SamplingDecision::Sampled
                } else {
                    trace::SamplingDecision::Unsampled
                },
            };
            out.push(ClientMessage::Request(Request {
                context,
                id: i,
                message: EchoRequest::Echo {
                    bytes: ByteBuf::from(vec![i as u8; (i % 300) as usize]),
                },
            }));
            out.push(ClientMessage::Request(Request {
                context,
                id: i ^ 1,
                message: EchoRequest::Delay { ms: i },
            }));
            out.push(ClientMessage::Cancel {
                trace_context: context.trace_context,
                request_id: i,
            });
            out.push(ClientMessage::Grant {
                request_id: i,
                bytes: i.wrapping_mul(3),
            });
        }
        out
    }

    #[test]
    fn a_client_frame_encodes_to_the_derived_bytes() {
        // A passed deadline encodes as zero time left on both paths, so the bytes can match.
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        let theirs = messages(past);
        for (ours, theirs) in messages(past).into_iter().zip(&theirs) {
            assert_eq!(bincode_of(&ClientFrame::new(ours)), bincode_of(theirs));
        }
    }

    #[test]
    fn a_client_frame_with_time_left_decodes_as_the_message() {
        let deadline = Instant::now() + Duration::from_secs(10);
        for message in messages(deadline) {
            let bytes = bincode_of(&ClientFrame::new(message));
            let decoded = message_again(&bytes);
            if let ClientMessage::Request(request) = decoded {
                let left = request
                    .context
                    .deadline
                    .saturating_duration_since(Instant::now());
                assert!(
                    left > Duration::from_secs(9) && left <= Duration::from_secs(10),
                    "{left:?} left of 10 s"
                );
            }
        }
    }

    /// Decodes with the derived `Deserialize` (tarpc's, for requests and cancels).
    fn message_again(bytes: &[u8]) -> ClientMessage<EchoRequest> {
        WireFormat::new(FrameLimit::default())
            .decode(bytes)
            .expect("tarpc decodes it")
    }
}
