//! Rate limiting for warnings a peer can trigger, so a hostile peer cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rpc_core::limits::WARNINGS_PER_SECOND;

/// Lets at most [`WARNINGS_PER_SECOND`] warnings through per wall-clock second.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    second: AtomicU64,
    in_second: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    /// A limiter with nothing logged yet.
    pub(crate) const fn new() -> Self {
        LogLimit {
            second: AtomicU64::new(0),
            in_second: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed_since_last)` if this warning may be logged, `None` if it must be dropped.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.in_second.store(0, Ordering::Relaxed);
        }
        if self.in_second.fetch_add(1, Ordering::Relaxed) < WARNINGS_PER_SECOND {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_at_the_limit_and_the_rest_counted() {
        let limit = LogLimit::default();
        let allowed = (0..WARNINGS_PER_SECOND * 3)
            .filter(|_| limit.allow().is_some())
            .count() as u64;
        // The burst may straddle a second boundary, letting at most one more window through.
        assert!((WARNINGS_PER_SECOND..=WARNINGS_PER_SECOND * 2).contains(&allowed));
    }
}
