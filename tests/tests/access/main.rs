//! Access: who may connect, and what a refused client is told. One test binary for these
//! modules, since linking a binary is most of what `cargo test` costs.
//!
//! - [`tokens`]: TCP peers need the token from the endpoint file; Unix peers need none.
//! - [`other_users`]: another user against the socket's mode and the allow lists, and a file
//!   it planted in the runtime directory.
//! - [`handshake`]: refusals that name the problem (an unknown service, a newer version).
//! - [`server_identity`]: the client's side: a server run by another uid, or a socket file
//!   another uid owns, is refused unless expected, and never routed around.
//!
//! A new test of who is let in, or of what a refusal says, goes here.

mod handshake;
mod other_users;
mod server_identity;
mod tokens;
