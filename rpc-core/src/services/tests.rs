//! The built-in services' declarations: their names, which clients already send, and their
//! schemas, which must trace.

use super::*;
use crate::Service;
use crate::schema::Type;

#[test]
fn built_in_names_are_bound_to_their_clients() {
    // These names are on the wire: a change would strand every client built before it.
    assert_eq!(echo::NAME, "echo");
    assert_eq!(kv::NAME, "kv");
    assert_eq!(health::NAME, "health");
    assert_eq!(introspect::NAME, "introspect");
    assert_eq!(<echo::EchoClient as Service>::NAME, "echo");
    assert_eq!(<kv::KvClient as Service>::NAME, "kv");
    assert_eq!(<health::HealthClient as Service>::NAME, "health");
}

#[test]
fn built_in_schemas_trace_and_list_the_methods_in_wire_order() {
    let echo = echo::EchoClient::schema().expect("echo traces");
    assert_eq!(echo.method_names(), ["ping", "echo", "delay", "stream"]);
    assert_eq!(echo.methods[1].args[0].ty, Type::Bytes);
    assert_eq!(echo.methods[0].result, Type::Unit);

    let kv = kv::KvClient::schema().expect("kv traces");
    assert_eq!(kv.method_names(), ["get", "set", "delete", "list", "watch"]);
    assert!(kv.methods[4].streaming, "watch streams");
    assert!(kv.methods[..4].iter().all(|m| !m.streaming));
    assert!(kv.types.contains_key("KvEvent"));
    assert_eq!(kv.methods[0].doc, "The value at `key`, if any.");
    assert!(kv.types.contains_key("KvError"));

    let health = health::HealthClient::schema().expect("health traces, from its sample");
    assert_eq!(health.methods[0].result, Type::Named("ServerInfo".into()));

    let introspect = introspect::IntrospectClient::schema().expect("introspect traces");
    assert_eq!(
        introspect.method_names(),
        ["services", "describe", "hashes"]
    );
    for name in ["ServiceSchema", "MethodSchema", "Type", "TypeDef", "Shape"] {
        assert!(introspect.types.contains_key(name), "{name}");
    }
}

#[test]
fn a_schema_is_traced_once_and_the_same_each_time() {
    let first = kv::KvClient::schema().expect("kv traces");
    let second = kv::KvClient::schema().expect("kv traces");
    assert_eq!(first, second);
    assert_eq!(first.name, "kv");
}
