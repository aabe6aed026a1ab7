//! A C ABI for calling the services of an `rpc-server` with JSON, from C, Python (ctypes) or any
//! language that can call C. The header is `include/rpc.h`, generated from this crate by
//! cbindgen (a test fails when the committed one is stale).
//!
//! ```c
//! char *error = NULL, *result = NULL;
//! rpc_conn *conn = rpc_connect("rpc", NULL, 0, &error);      /* the server named rpc */
//! if (!conn) { fprintf(stderr, "%s\n", error); rpc_free(error); return 1; }
//! int status = rpc_call(conn, "kv.get", "{\"key\":\"greeting\"}", 0, &result, &error);
//! if (status == RPC_OK) puts(result); else fprintf(stderr, "%d: %s\n", status, error);
//! rpc_free(result);
//! rpc_free(error);
//! rpc_close(conn);
//! ```
//!
//! What it guarantees:
//! - Calls are made with [`rpc_client::JsonClient`]: arguments are checked against the schema
//!   the server describes before anything is sent, and the bytes sent are a compiled client's.
//! - One handle may be called from any number of threads at once. Each call blocks its own
//!   thread, on the handle's current-thread tokio runtime, for at most its timeout.
//! - A handle survives its server's restarts: a call that finds the connection broken connects
//!   again within its timeout; a call in flight when it broke fails with
//!   [`RPC_ERR_INTERRUPTED`].
//! - No panic crosses into C ([`RPC_ERR_INTERNAL`] instead), and no write raises SIGPIPE (every
//!   socket write is a `sendmsg` with `MSG_NOSIGNAL`), so a C host keeps its own signal setup.
//! - Messages are one line; text from the server in them is escaped
//!   ([`rpc_core::untrusted::Untrusted`]).

// An FFI crate dereferences the caller's pointers: that needs `unsafe`, which the workspace
// denies elsewhere. Each unsafe block says why it holds (`// SAFETY:`).
#![allow(unsafe_code)]

mod boundary;
mod conn;
mod status;
mod strings;
mod target;
mod timeout;

use std::ffi::{c_char, c_int};
use std::ptr;

pub use conn::Conn;
pub use status::{
    RPC_ERR_BAD_REQUEST, RPC_ERR_INTERNAL, RPC_ERR_INTERRUPTED, RPC_ERR_INVALID_ARGUMENT,
    RPC_ERR_PROTOCOL, RPC_ERR_SERVER, RPC_ERR_TIMEOUT, RPC_ERR_UNREACHABLE, RPC_OK,
};
pub use timeout::{RPC_DEFAULT_CALL_TIMEOUT_MS, RPC_DEFAULT_CONNECT_TIMEOUT_MS};

use status::Failure;

/// Connects to a server and returns a handle for calling it, or NULL on failure.
///
/// `target` is a server name (e.g. `"rpc"`, `rpc-server`'s default), found in `runtime_dir`
/// (NULL: `$XDG_RUNTIME_DIR`, else `/tmp/rpc-<uid>`), or an endpoint: `"unix:/path.sock"` or
/// `"tcp:127.0.0.1:PORT"` (a TCP endpoint takes its token from the `RPC_TOKEN` environment
/// variable). It connects once now, so a mistyped target or an absent server fails here.
/// `timeout_ms` bounds connecting and the handshake (0: `RPC_DEFAULT_CONNECT_TIMEOUT_MS`).
///
/// On failure returns NULL and, if `error` is not NULL, sets `*error` to a one-line message
/// (free it with `rpc_free`). On success `*error` is set to NULL. Blocks the calling thread for
/// at most about `timeout_ms`.
///
/// # Safety
///
/// `target` is a NUL-terminated string; `runtime_dir` is NULL or one; `error` is NULL or
/// points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rpc_connect(
    target: *const c_char,
    runtime_dir: *const c_char,
    timeout_ms: u32,
    error: *mut *mut c_char,
) -> *mut Conn {
    // SAFETY: `error` is NULL or writable, the caller's contract.
    unsafe { strings::clear(error) };
    let connected = boundary::catch(|| {
        // SAFETY: the strings are the caller's, valid for this call.
        let target = unsafe { strings::required(target, "target") }?;
        // SAFETY: as above.
        let runtime_dir = unsafe { strings::optional(runtime_dir, "runtime_dir") }?;
        let timeout = timeout::or_default(timeout_ms, RPC_DEFAULT_CONNECT_TIMEOUT_MS);
        Conn::connect(target, runtime_dir, timeout)
    });
    match connected {
        Ok(conn) => Box::into_raw(Box::new(conn)),
        Err(failure) => {
            // SAFETY: as for `clear` above.
            unsafe { strings::put(error, &failure.message) };
            ptr::null_mut()
        }
    }
}

/// Calls `method` (`"service.method"`, e.g. `"kv.get"`) with `args_json`, a JSON object of
/// named arguments (`"{}"` for none), and returns `RPC_OK` (0) or one of the `RPC_ERR_` codes.
///
/// On `RPC_OK`, `*result_json` is set to the method's return value as JSON, in the
/// conventions documented on `rpc_core::schema::JsonRequest` (a struct is an object, an enum
/// `"Variant"` or `{"Variant": ...}`, an `Option` `null` or the value; a `Result` is
/// `{"Ok": ...}` or `{"Err": ...}`, and an `Err` is still `RPC_OK`). On any other code,
/// `*error` is set to a one-line message. Whichever of the two is not written is set to NULL;
/// either pointer may itself be NULL, and then nothing is written there. Free both strings
/// with `rpc_free`.
///
/// `timeout_ms` (0: `RPC_DEFAULT_CALL_TIMEOUT_MS`) bounds the whole call, including connecting
/// again when the connection broke since the last call (the server was restarted); the server
/// drops the call at the same deadline. Blocks the calling thread until the answer or the
/// deadline.
///
/// Thread safety: calls on one handle may be made from any number of threads at once.
///
/// # Safety
///
/// `conn` is NULL or a handle from `rpc_connect` not yet closed; `method` and `args_json` are
/// NULL or NUL-terminated strings; `result_json` and `error` are NULL or point to writable
/// storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rpc_call(
    conn: *mut Conn,
    method: *const c_char,
    args_json: *const c_char,
    timeout_ms: u32,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: both are NULL or writable, the caller's contract.
    unsafe {
        strings::clear(result_json);
        strings::clear(error);
    }
    let answer = boundary::catch(|| {
        // SAFETY: NULL or a live handle from `rpc_connect`, only read through a shared
        // reference (its state is behind a lock), as the caller's contract says.
        let conn = unsafe { conn.as_ref() }
            .ok_or_else(|| Failure::new(RPC_ERR_INVALID_ARGUMENT, "conn is NULL"))?;
        // SAFETY: the strings are the caller's, valid for this call.
        let method = unsafe { strings::required(method, "method") }?;
        // SAFETY: as above.
        let args = unsafe { strings::required(args_json, "args_json") }?;
        let (service, method_name) = split_method(method)?;
        let args: serde_json::Value = serde_json::from_str(args).map_err(|err| {
            Failure::new(
                RPC_ERR_BAD_REQUEST,
                format!("the arguments for {method} are not JSON: {err}"),
            )
        })?;
        let timeout = timeout::or_default(timeout_ms, RPC_DEFAULT_CALL_TIMEOUT_MS);
        let value = conn.call(service, method_name, &args, timeout)?;
        serde_json::to_string(&value).map_err(|err| {
            Failure::new(RPC_ERR_INTERNAL, format!("cannot write the result: {err}"))
        })
    });
    match answer {
        Ok(json) => {
            // SAFETY: as for `clear` above.
            unsafe { strings::put(result_json, &json) };
            RPC_OK
        }
        Err(failure) => {
            // SAFETY: as for `clear` above.
            unsafe { strings::put(error, &failure.message) };
            failure.code
        }
    }
}

/// Frees a string this library returned (`*result_json`, `*error`). NULL is ignored.
///
/// # Safety
///
/// `s` is NULL or a string from this library not yet freed; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rpc_free(s: *mut c_char) {
    let _ = boundary::catch(|| {
        // SAFETY: the caller's contract.
        unsafe { strings::free(s) };
        Ok(())
    });
}

/// Closes a handle: its connections and its runtime. NULL is ignored.
///
/// Only when no call on the handle is running, and never twice: the handle is freed.
///
/// # Safety
///
/// `conn` is NULL or a handle from `rpc_connect` not yet closed, on which no call is running
/// or will be made.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rpc_close(conn: *mut Conn) {
    if conn.is_null() {
        return;
    }
    let _ = boundary::catch(|| {
        // SAFETY: from `Box::into_raw` in `rpc_connect`, closed once, no call running.
        drop(unsafe { Box::from_raw(conn) });
        Ok(())
    });
}

/// `"service.method"` split at its last dot (service names may hold dots, method names not).
fn split_method(text: &str) -> Result<(&str, &str), Failure> {
    match text.rsplit_once('.') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() => {
            Ok((service, method))
        }
        _ => Err(Failure::new(
            RPC_ERR_INVALID_ARGUMENT,
            format!("method `{text}` is not SERVICE.METHOD, e.g. kv.get"),
        )),
    }
}
