//! Settings a server binary makes for its whole process at start: what no library should change
//! behind its host's back, so `rpc-server` calls this and an embedding program chooses.

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
