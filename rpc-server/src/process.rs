//! Settings a server binary makes for its whole process at start: what no library should change
//! behind its host's back, so `rpc-server` calls these and an embedding program chooses.

/// Raises this process's soft limit on open files to its hard limit, so the connection limit,
/// not the default 1024 descriptors, is what bounds connections. Returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %err, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`), before any
/// connection is served. Returns whether it worked.
///
/// mimalloc asks for huge pages on the memory it maps, so the first byte written into a fresh
/// buffer can make a whole 2 MiB page resident. With them off, memory is resident only as it is
/// written, so the transport can give a large field room for 2 MiB before its bytes arrive
/// ([`rpc_core::transport::field_room`]) at no cost for a peer that stalls, and read fields of up
/// to that size with no copy.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn disable_transparent_huge_pages() -> bool {
    match rustix::thread::disable_transparent_huge_pages(true) {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(error = %err, "could not turn transparent huge pages off");
            false
        }
    }
}

/// Transparent huge pages are a Linux switch (`prctl`); elsewhere there is none to turn off, so
/// this does nothing and returns false.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn disable_transparent_huge_pages() -> bool {
    false
}

/// Reports every panic through `tracing`, as one error record (message escaped, with its thread
/// and location), instead of the default hook's raw line on stderr: a handler's panic message
/// may quote what a peer sent. The call whose handler panicked fails with an error and the
/// server goes on (see the call loop); this only decides how the panic is reported.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a panic without a message)");
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            location = %info.location().map_or_else(String::new, ToString::to_string),
            panic = %rpc_core::Untrusted(message),
            "a thread panicked",
        );
    }));
}
