//! [`child_context`]: the trace context a call hands on, with a span id of its own.

use std::cell::Cell;
use std::hash::BuildHasher;

use tarpc::trace::{Context, SpanId};

/// A context in `parent`'s trace, with a new span id: what tarpc's channels give each call they
/// send and each request they serve, so that a handler forwarding its context shows up under
/// the server's span rather than the client's. tarpc's own helper for this is private; this one
/// draws the id from a per-thread SplitMix64 sequence (seeded randomly), which costs a few
/// instructions instead of a cryptographic generator's hundreds. Span ids need to be distinct,
/// not secret.
pub fn child_context(parent: &Context) -> Context {
    Context {
        trace_id: parent.trace_id,
        span_id: SpanId::from(next_span_id()),
        sampling_decision: parent.sampling_decision,
    }
}

fn next_span_id() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()),
        );
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        // tarpc's span ids are never zero.
        (z ^ (z >> 31)).max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_sampling_and_gets_a_new_distinct_span() {
        let parent = tarpc::context::current().trace_context;
        let children: Vec<Context> = (0..1000).map(|_| child_context(&parent)).collect();
        let mut spans: Vec<u64> = children.iter().map(|c| u64::from(c.span_id)).collect();
        spans.sort_unstable();
        spans.dedup();
        assert_eq!(spans.len(), 1000, "span ids repeat");
        assert!(!spans.contains(&u64::from(parent.span_id)));
        assert!(!spans.contains(&0));
        for child in &children {
            assert_eq!(child.trace_id, parent.trace_id);
            assert_eq!(child.sampling_decision, parent.sampling_decision);
        }
    }
}
