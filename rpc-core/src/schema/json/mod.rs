//! JSON to wire and back, guided by a [`ServiceSchema`](super::ServiceSchema). For now only the
//! test service the schema tests share.

#[cfg(test)]
pub(super) mod tests;
