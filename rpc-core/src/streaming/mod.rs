//! Streams: methods that answer with many items, under flow control by credit.
//!
//! A service declares one by returning [`Streaming<T>`]:
//!
//! ```
//! use futures::StreamExt;
//! use rpc_core::Streaming;
//! use rpc_core::tarpc::context::Context;
//!
//! /// Counts.
//! #[rpc_core::service(name = "counter")]
//! pub trait Counter {
//!     /// The numbers from 0 up to `to`, one item each.
//!     async fn count(to: u64) -> Streaming<u64>;
//! }
//!
//! #[derive(Clone)]
//! struct Counting;
//!
//! impl Counter for Counting {
//!     async fn count(self, _: Context, to: u64) -> Streaming<u64> {
//!         Streaming::new(futures::stream::iter(0..to))
//!     }
//! }
//! # let _ = Counting.serve();
//! ```
//!
//! The client's method returns a [`Subscription<T>`], a `Stream` of [`StreamEvent<T>`] items:
//! `Item(value)`, or `Lagged { missed }` when a broadcast source dropped items this subscriber
//! was too slow to take. The subscription ends (`None`) after the server's last item; an error
//! (the connection lost, the server shutting down, a refusal) is its last item.
//!
//! On the wire (`docs/wire.md` in the repository, "Streams"), a stream is a request
//! like any other, answered by many `Response`s with its request id, each carrying one
//! [`StreamEvent`]; the last is `End` or an error. The client grants the server credit in bytes
//! ([`ClientMessage::Grant`](crate::wire::ClientMessage::Grant)): the server sends while its
//! credit for the stream is positive, subtracting each answer's frame body length, so a consumer
//! that stops reading holds at most its window (plus one item) in flight, and the producer waits.
//! Dropping the subscription sends a cancel, which drops the producer at once.

mod answer;
mod events;
mod subscription;

pub use answer::{Answer, StreamAnswer, Streaming};
pub use events::StreamEvent;
pub use subscription::{Answers, StreamStub, Subscription};
