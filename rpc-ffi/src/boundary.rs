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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure_of(body: impl FnOnce() -> Result<(), Failure>) -> Failure {
        catch(body).expect_err("the body panicked")
    }

    #[test]
    fn a_result_passes_through_untouched() {
        assert_eq!(catch(|| Ok(7)).expect("no panic"), 7);
        let failure = catch(|| Err::<(), _>(Failure::new(1, "bad"))).expect_err("an error");
        assert_eq!((failure.code, failure.message.as_str()), (1, "bad"));
    }

    #[test]
    fn a_panic_becomes_the_internal_code_with_its_message() {
        let failure = failure_of(|| panic!("static text"));
        assert_eq!(failure.code, RPC_ERR_INTERNAL);
        assert_eq!(failure.message, "rpc-ffi panicked (a bug): static text");
        let failure = failure_of(|| panic!("formatted {}", 42));
        assert_eq!(failure.code, RPC_ERR_INTERNAL);
        assert!(
            failure.message.ends_with("formatted 42"),
            "{}",
            failure.message
        );
        let failure = failure_of(|| std::panic::panic_any(42_u32));
        assert_eq!(failure.code, RPC_ERR_INTERNAL);
        assert!(
            failure.message.ends_with("no message"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn a_panic_message_reaches_the_caller_escaped() {
        let failure = failure_of(|| panic!("line one\nline two \u{1b}[31mred"));
        assert_eq!(failure.code, RPC_ERR_INTERNAL);
        assert!(
            !failure.message.contains(['\n', '\u{1b}']),
            "{:?}",
            failure.message
        );
        assert!(failure.message.contains("line two"), "{}", failure.message);
    }
}
