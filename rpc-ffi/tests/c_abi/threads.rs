//! One handle, many C threads calling on it at once.

use tests::TestDir;

use crate::host::Host;

#[test]
fn threads_calling_on_one_handle_each_get_their_own_answers() {
    let dir = TestDir::new();
    let _server = dir.server().start();
    let mut host = Host::start(dir.path(), &dir.runtime_dir(), 10_000);
    // 16 threads, each 100 kv.set and kv.get of keys of its own, every answer checked in C.
    assert_eq!(host.send("threads 16 100"), "ok threads");
    // The handle is still usable from the main thread afterwards.
    assert_eq!(host.send(r#"kv.get {"key":"t15-99"}"#), r#"ok "v15-99""#);
    assert!(host.finish().success());
}
