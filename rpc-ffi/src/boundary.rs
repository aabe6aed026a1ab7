//! No panic crosses into C: unwinding out of an `extern "C"` function aborts the host process,
//! so every entry point runs its body through [`catch`], and a panic becomes
//! [`RPC_ERR_INTERNAL`] with its message.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{Failure, RPC_ERR_INTERNAL};

/// Runs `body`, turning a panic into a [`Failure`].
///
/// `AssertUnwindSafe`: after a caught panic the caller only gets an error; the state a panic
/// could leave half-changed is the connection's map of clients, whose lock ignores poisoning
/// and whose entries are whole clients, so the next call sees either the old one or none.
pub(crate) fn catch<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        Err(Failure::new(
            RPC_ERR_INTERNAL,
            format!("rpc-ffi panicked (a bug): {}", panic_message(&*panic)),
        ))
    })
}

/// The text a panic was raised with, if it was text.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
