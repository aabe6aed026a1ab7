//! What the examples share: the `notes` service's contract, as a crate of its own would hold it
//! in a real project (both the daemon and its clients depend on it).

pub mod notes;
