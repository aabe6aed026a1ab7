//! [`StreamEvent`]: one answer of a stream, as it travels.

use serde::{Deserialize, Serialize};

/// One answer of a streaming method: what the method's response variant carries on the wire.
///
/// A [`Subscription`](super::Subscription) yields `Item` and `Lagged`; `End` ends it (the
/// subscription yields `None`) and is never yielded itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamEvent<T> {
    /// The next item.
    Item(T),
    /// The source moved on past `missed` items this subscriber had not taken yet (a broadcast
    /// that does not wait for slow subscribers): they are lost, and said so.
    Lagged {
        /// How many items were skipped.
        missed: u64,
    },
    /// The stream is over: nothing follows.
    End,
}

impl<T> StreamEvent<T> {
    /// The item, if this is one.
    pub fn into_item(self) -> Option<T> {
        match self {
            StreamEvent::Item(item) => Some(item),
            _ => None,
        }
    }
}
