//! C strings in and out: borrowed `const char *` arguments read as UTF-8, and strings handed to
//! the caller as `CString::into_raw`, which only `rpc_free` takes back.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use crate::status::{Failure, RPC_ERR_INVALID_ARGUMENT};

/// The UTF-8 text at `ptr`; `what` names the argument in the error.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub(crate) unsafe fn required<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: the caller's contract, passed on.
    unsafe { optional(ptr, what) }?
        .ok_or_else(|| Failure::new(RPC_ERR_INVALID_ARGUMENT, format!("{what} is NULL")))
}

/// As [`required`], with NULL read as `None`.
///
/// # Safety
///
/// As [`required`].
pub(crate) unsafe fn optional<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the caller vouches for the NUL terminator and the lifetime.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map(Some).map_err(|err| {
        Failure::new(
            RPC_ERR_INVALID_ARGUMENT,
            format!(
                "{what} is not UTF-8 (invalid byte at offset {})",
                err.valid_up_to()
            ),
        )
    })
}

/// Sets `*out` to NULL, so an out-pointer holds NULL unless something is written there later.
///
/// # Safety
///
/// `out` is NULL (then nothing is written) or valid for a write of one pointer.
pub(crate) unsafe fn clear(out: *mut *mut c_char) {
    if !out.is_null() {
        // SAFETY: not NULL, and the caller vouches that it is writable.
        unsafe { out.write(ptr::null_mut()) };
    }
}

/// Hands `text` to the caller through `out` as a new C string (freed with `rpc_free`). With
/// `out` NULL nothing is allocated.
///
/// # Safety
///
/// As [`clear`].
pub(crate) unsafe fn put(out: *mut *mut c_char, text: &str) {
    if out.is_null() {
        return;
    }
    // JSON and escaped messages hold no NUL; should one slip in, it ends up as `\0` text rather
    // than cutting the string short.
    let owned = CString::new(text)
        .unwrap_or_else(|_| CString::new(text.replace('\0', "\\0")).unwrap_or_default());
    // SAFETY: not NULL, and the caller vouches that it is writable.
    unsafe { out.write(owned.into_raw()) };
}

/// Frees a string made by [`put`]; NULL is ignored.
///
/// # Safety
///
/// `s` is NULL or a pointer [`put`] handed out and that has not been freed yet.
pub(crate) unsafe fn free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw` in `put` and is freed only once.
        drop(unsafe { CString::from_raw(s) });
    }
}
