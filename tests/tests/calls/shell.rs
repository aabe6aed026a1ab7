//! `rpc-client` from the shell, on services it has no code for: `list`, `describe` and `call`
//! guided by the schemas the server describes, arguments from stdin, exit codes, completions.

use std::time::Duration;

use rpc_core::tarpc::context::Context;
use rpc_server::{Server, ServerConfig};
use tests::binaries::notes_daemon_binary;
use tests::{ServerProcess, TestDir, run_client, run_client_in, run_client_with_stdin};

/// `notes_daemon` (the example daemon of a service of one's own), started in `dir`.
fn notes_daemon(dir: &TestDir) -> ServerProcess {
    dir.server()
        .name("notes")
        .launched_by(vec![notes_daemon_binary().into()])
        .start()
}

fn notes(dir: &TestDir, args: &[&str]) -> tests::ClientOutput {
    let mut all = vec!["--name", "notes"];
    all.extend(args);
    run_client_in(&dir.runtime_dir(), &all, &[])
}

fn exit_code(out: &tests::ClientOutput) -> Option<i32> {
    out.status.code()
}

#[test]
fn list_and_describe_show_a_service_the_client_has_no_code_for() {
    let dir = TestDir::new();
    let _daemon = notes_daemon(&dir);

    let list = notes(&dir, &["list"]);
    assert!(list.status.success(), "{}", list.stderr);
    for line in [
        "notes.add(title: string, body: string) -> Note",
        "notes.list(filter: Option<Filter>) -> Vec<Note>",
        "notes.get(id: u64) -> Result<Note, NotesError>",
        "introspect.describe(service: string) -> Option<ServiceSchema>",
    ] {
        assert!(
            list.stdout.contains(line),
            "no `{line}` in:\n{}",
            list.stdout
        );
    }
    assert!(
        !list.stdout.contains("health"),
        "notes_daemon hosts no health"
    );

    let describe = notes(&dir, &["describe", "notes"]);
    assert!(describe.status.success(), "{}", describe.stderr);
    for text in [
        "service notes {",
        "add(title: string, body: string) -> Note",
        "struct Note {",
        "enum Filter {",
        "enum NotesError {",
        "Adds a note; returns it with its new id.",
    ] {
        assert!(
            describe.stdout.contains(text),
            "no `{text}` in:\n{}",
            describe.stdout
        );
    }

    let json = notes(&dir, &["describe", "notes", "--json"]).json();
    assert_eq!(json["name"], "notes");
    assert_eq!(json["methods"][0]["name"], "add");
    assert!(json["types"]["Note"].is_object(), "{json}");

    // The hashes `introspect.hashes` answers are those `list` shows.
    let hashes = notes(&dir, &["call", "introspect.hashes"]).json();
    let notes_hash = hashes
        .as_array()
        .and_then(|pairs| pairs.iter().find(|pair| pair[0] == "notes"))
        .and_then(|pair| pair[1].as_u64())
        .unwrap_or_else(|| panic!("no hash for notes in {hashes}"));
    assert!(
        list.stdout
            .contains(&format!("notes  (schema {notes_hash:016x})")),
        "{}",
        list.stdout
    );

    let unknown = notes(&dir, &["describe", "nope"]);
    assert_eq!(exit_code(&unknown), Some(2), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("notes, introspect"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn call_any_method_with_json_and_get_json_back() {
    let dir = TestDir::new();
    let _daemon = notes_daemon(&dir);

    let added = notes(&dir, &["call", "notes.add", r#"{"title":"t","body":"b"}"#]).json();
    assert_eq!(
        added,
        serde_json::json!({"id": 1, "title": "t", "body": "b"})
    );
    let listed = notes(&dir, &["call", "notes.list"]).json();
    assert_eq!(listed, serde_json::json!([added]));
    let filtered = notes(
        &dir,
        &["call", "notes.list", r#"{"filter":{"TitleContains":"x"}}"#],
    )
    .json();
    assert_eq!(filtered, serde_json::json!([]));
    let got = notes(&dir, &["call", "notes.get", r#"{"id":1}"#]).json();
    assert_eq!(got, added);

    // A method returning Err: exit 1, the error as JSON on stderr.
    let missing = notes(&dir, &["call", "notes.get", r#"{"id":7}"#]);
    assert_eq!(exit_code(&missing), Some(1), "{}", missing.stderr);
    assert!(
        missing.stderr.contains(r#"{"NotFound":{"id":7}}"#),
        "{}",
        missing.stderr
    );
}

#[test]
fn bad_arguments_exit_2_naming_the_field_and_the_expected_type() {
    let dir = TestDir::new();
    let _daemon = notes_daemon(&dir);

    for (args, expected) in [
        (
            r#"{"title":3,"body":"b"}"#,
            "argument `title`: expected a string",
        ),
        (r#"{"title":"t"}"#, "missing argument `body`"),
        (r#"{"title":"t","body":"b","x":1}"#, "unknown argument `x`"),
        (r#"{"title":"t""#, "not JSON"),
    ] {
        let out = notes(&dir, &["call", "notes.add", args]);
        assert_eq!(exit_code(&out), Some(2), "{args}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args}: {}", out.stderr);
    }
    let out = notes(&dir, &["call", "notes.get", r#"{"id":-1}"#]);
    assert_eq!(exit_code(&out), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("argument `id`"), "{}", out.stderr);
    assert!(out.stderr.contains("u64"), "{}", out.stderr);

    let out = notes(&dir, &["call", "notes.ad", "{}"]);
    assert_eq!(exit_code(&out), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("add, list, get"), "{}", out.stderr);

    let out = notes(&dir, &["call", "nope.add", "{}"]);
    assert_eq!(exit_code(&out), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown service `nope`"),
        "{}",
        out.stderr
    );
}

#[test]
fn arguments_come_from_stdin_with_a_dash() {
    let dir = TestDir::new();
    let _server = dir.server().start();
    let runtime_dir = dir.runtime_dir();

    let set = run_client_with_stdin(
        &runtime_dir,
        &["call", "kv.set", "-"],
        r#"{"key":"k","value":"from stdin"}"#,
    );
    assert!(set.status.success(), "{}", set.stderr);
    let get = run_client_with_stdin(&runtime_dir, &["call", "kv.get", "-"], r#"{"key":"k"}"#);
    assert_eq!(get.json(), "from stdin");
    assert_eq!(
        get.stdout.lines().count(),
        1,
        "one line when not on a terminal"
    );
    let pretty = run_client_with_stdin(
        &runtime_dir,
        &["--json=pretty", "call", "kv.list", "-"],
        r#"{"prefix":""}"#,
    );
    assert_eq!(pretty.stdout, "[\n  \"k\"\n]\n");
}

#[test]
fn exit_codes_tell_unreachable_from_failed() {
    let dir = TestDir::new();
    let out = run_client_in(&dir.runtime_dir(), &["call", "echo.ping"], &[]);
    assert_eq!(exit_code(&out), Some(3), "nobody listens: {}", out.stderr);

    let out = run_client(["call", "echo.ping", "{"], &[]);
    assert_eq!(exit_code(&out), Some(2), "{}", out.stderr);
    let out = run_client(["frobnicate"], &[]);
    assert_eq!(exit_code(&out), Some(2), "{}", out.stderr);
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef rpc-client"),
        ("fish", "complete -c rpc-client"),
    ] {
        let out = run_client(["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell}:\n{}", out.stdout);
        assert!(
            out.stdout.contains("describe"),
            "{shell} completes subcommands"
        );
    }
}

/// A `health` service that is not the built-in one: what a server of another version could
/// host under the same name.
#[rpc_core::service(name = "health")]
trait OtherHealth {
    /// Not the built-in `info`.
    async fn info() -> u8;
}

#[derive(Clone)]
struct OtherHealthImpl;

impl OtherHealth for OtherHealthImpl {
    async fn info(self, _: Context) -> u8 {
        7
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_warns_when_the_servers_schema_is_not_its_own() {
    let dir = TestDir::new();
    let mut server = Server::new(ServerConfig::new(dir.location()));
    server.add(|_| OtherHealthImpl.serve());
    let bound = server.bind().expect("binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run_until(async {
        let _ = stopped.await;
    }));

    let runtime_dir = dir.runtime_dir();
    let out = tokio::task::spawn_blocking(move || run_client_in(&runtime_dir, &["health"], &[]))
        .await
        .expect("rpc-client ran");
    assert!(
        out.stderr.contains("warning")
            && out
                .stderr
                .contains("not the one this client was built with"),
        "{}",
        out.stderr
    );
    // The JSON path reads the server's own schema, so it is right where the typed one is not.
    let runtime_dir = dir.runtime_dir();
    let out = tokio::task::spawn_blocking(move || {
        run_client_in(&runtime_dir, &["call", "health.info"], &[])
    })
    .await
    .expect("rpc-client ran");
    assert_eq!(out.json(), 7);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops")
        .expect("the server task ends");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly_with_no_panic() {
    let dir = TestDir::new();
    let _server = dir.server().start();
    // 64 KiB of JSON, far more than a pipe whose reader has already gone takes.
    let payload = format!("{{\"bytes\":[{}]}}", vec!["7"; 32 * 1024].join(","));
    let mut child = std::process::Command::new(tests::binaries::client_binary())
        .args(["--runtime-dir"])
        .arg(dir.runtime_dir())
        .args(["call", "echo.echo", &payload])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rpc-client starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("rpc-client ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
