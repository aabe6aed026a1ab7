//! The timeouts a caller passes as milliseconds, and what 0 means.

use std::time::Duration;

/// The time `rpc_connect` allows to connect and complete the handshake when given 0: 5000 ms,
/// `rpc_core::limits::DEFAULT_CONNECT_TIMEOUT` (a test keeps the two equal).
pub const RPC_DEFAULT_CONNECT_TIMEOUT_MS: u32 = 5_000;

/// The time `rpc_call` allows a call when given 0: 10000 ms, tarpc's default deadline. It
/// covers reconnecting (when the server went away since the last call) and the call itself.
pub const RPC_DEFAULT_CALL_TIMEOUT_MS: u32 = 10_000;

/// `ms` as a duration, or `default_ms` when `ms` is 0.
pub(crate) fn or_default(ms: u32, default_ms: u32) -> Duration {
    Duration::from_millis(u64::from(if ms == 0 { default_ms } else { ms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_connect_timeout_is_the_clients() {
        assert_eq!(
            or_default(0, RPC_DEFAULT_CONNECT_TIMEOUT_MS),
            rpc_core::limits::DEFAULT_CONNECT_TIMEOUT
        );
    }

    #[test]
    fn zero_means_the_default_and_anything_else_itself() {
        assert_eq!(or_default(0, 7), Duration::from_millis(7));
        assert_eq!(or_default(1, 7), Duration::from_millis(1));
    }
}
