//! The kernel buffers each accepted connection asks for, and the one warning a server logs when
//! the kernel grants a Unix socket less than that (see
//! [`rpc_core::stream::DEFAULT_SOCKET_BUFFER`]).

use std::sync::atomic::{AtomicBool, Ordering};

use rpc_core::stream::{self, LocalStream};

/// Whether this process has said that the kernel caps its Unix socket buffers: said once, at
/// the first connection that finds it so, since the caps are the machine's and the same for
/// every connection after.
static CAPPED_SAID: AtomicBool = AtomicBool::new(false);

/// Asks the kernel for `asked`-byte buffers on `stream` ([`LocalStream::tune`]); warns, once
/// per process, if a Unix socket got less.
pub(crate) fn tune(stream: &LocalStream, asked: usize) {
    match stream.tune(asked) {
        Ok(Some(granted)) => {
            if let Some(raise) = capped(asked, granted)
                && !CAPPED_SAID.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    granted,
                    asked,
                    "the kernel caps Unix socket buffers below the size asked: large messages \
                     over Unix sockets take more round trips; `{raise}` raises the caps"
                );
            }
        }
        Ok(None) => {}
        Err(err) => tracing::debug!(error = %err, "could not tune socket buffers"),
    }
}

/// If the kernel granted fewer than the `asked` bytes (`granted`), the command that raises its
/// caps to `asked`.
fn capped(asked: usize, granted: usize) -> Option<String> {
    (granted < asked).then(|| stream::raise_buffer_caps(asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_granted_below_the_one_asked_is_said_with_the_sysctl_that_raises_it() {
        assert_eq!(capped(1 << 20, 1 << 20), None);
        assert_eq!(capped(1 << 20, 4 << 20), None);
        assert_eq!(
            capped(1 << 20, 212_992).as_deref(),
            Some("sysctl -w net.core.wmem_max=1048576 net.core.rmem_max=1048576")
        );
    }
}
