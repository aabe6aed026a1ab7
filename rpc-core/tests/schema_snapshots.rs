//! The wire compatibility guard: the built-in services' schemas, as committed in
//! `tests/schemas/`, must not change in a way that breaks existing clients.
//!
//! A client finds a method by its position and reads every value by its shape, so a method,
//! argument, field or variant that is reordered, renamed or retyped breaks every client built
//! before the change, silently. This test fails on such a change and says what broke. A change
//! that breaks nothing (a method added at the end, a doc comment) fails too, asking for the
//! snapshot to be updated, so the committed files always say what the wire carries:
//! `UPDATE_SCHEMAS=1 cargo test -p rpc-core --test schema_snapshots`.

use std::path::PathBuf;

use rpc_core::Service;
use rpc_core::schema::{ServiceSchema, breaking_changes};
use rpc_core::services::{echo, health, introspect, kv};

fn snapshot_path(service: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas")
        .join(format!("{service}.json"))
}

/// Why `current` may not replace the committed `snapshot`, if it may not.
fn check(snapshot: &ServiceSchema, current: &ServiceSchema) -> Result<(), String> {
    let broken = breaking_changes(snapshot, current);
    if !broken.is_empty() {
        return Err(format!(
            "the `{}` service changed in a way that breaks existing clients (they would send or \
             read the wrong bytes):\n  - {}\nKeep the old methods and types as they were and add \
             new methods at the end; only if every client is rebuilt with this change, update the \
             snapshot with UPDATE_SCHEMAS=1",
            current.name,
            broken.join("\n  - ")
        ));
    }
    if snapshot != current {
        return Err(format!(
            "the `{}` service changed without breaking clients (a method added at the end, or a \
             doc comment): update the snapshot with UPDATE_SCHEMAS=1 cargo test -p rpc-core \
             --test schema_snapshots",
            current.name
        ));
    }
    Ok(())
}

fn check_snapshot<C: Service>() {
    let current = C::schema().expect("the schema traces");
    let path = snapshot_path(C::NAME);
    let text = serde_json::to_string_pretty(&current).expect("a schema is JSON") + "\n";
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, text).expect("the snapshot is written");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "no snapshot at {} ({err}): create it with UPDATE_SCHEMAS=1",
            path.display()
        )
    });
    let snapshot: ServiceSchema = serde_json::from_str(&committed).expect("the snapshot parses");
    if let Err(why) = check(&snapshot, &current) {
        panic!("{why}");
    }
}

#[test]
fn built_in_schemas_match_their_snapshots() {
    check_snapshot::<echo::EchoClient>();
    check_snapshot::<kv::KvClient>();
    check_snapshot::<health::HealthClient>();
    check_snapshot::<introspect::IntrospectClient>();
}

#[test]
fn the_guard_fails_on_a_reordered_method_saying_it_breaks_clients() {
    let snapshot = kv::KvClient::schema().expect("kv traces");
    let mut reordered = snapshot.clone();
    reordered.methods.swap(0, 1);
    let why = check(&snapshot, &reordered).expect_err("a reordered method is refused");
    assert!(why.contains("breaks existing clients"), "{why}");
    assert!(why.contains("method 0 `get` is now `set`"), "{why}");

    let mut retyped = snapshot.clone();
    retyped.methods[3].args[0].ty = rpc_core::schema::Type::Bytes;
    let why = check(&snapshot, &retyped).expect_err("a retyped argument is refused");
    assert!(why.contains("`prefix`"), "{why}");

    let mut renamed = snapshot.clone();
    renamed.methods[2].name = "remove".into();
    assert!(check(&snapshot, &renamed).is_err());

    let mut answers_once = snapshot.clone();
    let (watch, _) = snapshot.method("watch").expect("kv has watch");
    answers_once.methods[watch as usize].streaming = false;
    let why = check(&snapshot, &answers_once).expect_err("a stream turned into a call");
    assert!(why.contains("breaks existing clients"), "{why}");
    assert!(
        why.contains("`watch` answers once now, and streams its answers before"),
        "{why}"
    );

    let mut appended = snapshot.clone();
    appended.methods.push(snapshot.methods[0].clone());
    let why = check(&snapshot, &appended).expect_err("the snapshot must be updated");
    assert!(why.contains("without breaking clients"), "{why}");
}
