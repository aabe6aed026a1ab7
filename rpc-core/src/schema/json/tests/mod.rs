//! Tests of JSON to wire and back.

pub(in crate::schema) mod notes;
