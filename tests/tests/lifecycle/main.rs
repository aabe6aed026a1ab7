//! Lifecycle: the files a server owns, where it listens, and how it stops. One test binary for
//! these modules, since linking a binary is most of what `cargo test` costs.
//!
//! - [`socket_files`]: the modes of the socket and endpoint file, and what the server does
//!   about files already at their paths.
//! - [`fallback`]: `auto` listening on a Unix socket, or on TCP loopback when the path is too
//!   long.
//! - [`shutdown`]: SIGTERM removes the files and delivers responses in flight.
//! - [`endpoint_file_limit`]: how large an endpoint file a client reads.
//! - [`runtime_dir`]: an existing runtime directory other users can write to is refused.
//! - [`systemd`]: socket activation and readiness, watchdog and stopping notifications.
//!
//! A new test of starting, listening or stopping goes here.

mod endpoint_file_limit;
mod fallback;
mod runtime_dir;
mod shutdown;
mod socket_files;
mod systemd;
