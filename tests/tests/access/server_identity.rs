//! Who serves: a client talks over a Unix socket only to a server run by its own uid or root,
//! unless told to expect another, and a refused server stops the client rather than being
//! routed around. The tests run as root and make a throwaway user (see [`tests::other_user`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use rpc_client::{ConnectError, Connector};
use rpc_core::services::echo::EchoClient;
use tests::binaries::server_binary;
use tests::other_user::{OtherUser, binary_anyone_can_run};
use tests::{ServerProcess, TestDir, assert_serves_calls, run_client, run_client_in};

/// A test directory every user can reach, the other user, and an `rpc-server` it may run.
struct Setup {
    dir: TestDir,
    user: OtherUser,
    server: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = TestDir::new();
        // tempfile makes its directories 0700.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("the test directory can be opened up");
        let user = OtherUser::create();
        let server = binary_anyone_can_run(server_binary(), dir.path());
        Setup { dir, user, server }
    }

    /// Starts `rpc-server` as the other user, in a runtime directory of its own (0700).
    fn start_server_as_other_user(&self) -> ServerProcess {
        let runtime_dir = self.dir.runtime_dir();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&runtime_dir)
            .expect("the runtime directory can be created");
        std::os::unix::fs::chown(&runtime_dir, Some(self.user.uid()), Some(self.user.gid()))
            .expect("the runtime directory can be given to the other user");
        let server = self
            .dir
            .server()
            .launched_by(self.user.launcher(&self.server))
            .start();
        let socket = server.endpoint().unix_path().expect("a unix endpoint");
        assert_eq!(
            fs::symlink_metadata(socket).expect("socket").uid(),
            self.user.uid(),
            "the server does not run as the other user"
        );
        server
    }
}

/// How many connections the server let through its handshake.
fn accepted_connections(server: &ServerProcess) -> usize {
    server.stderr().matches("connection accepted").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_client_refuses_a_server_run_by_another_uid_unless_told_to_expect_it() {
    let setup = Setup::new();
    let server = setup.start_server_as_other_user();
    let uid = setup.user.uid().to_string();
    let endpoint = server.endpoint().to_string();

    // Named by endpoint: the server's credentials are read after connecting.
    let refused = run_client(["--endpoint", &endpoint, "call", "echo.ping"], &[]);
    assert!(
        !refused.status.success(),
        "a root client called a server run by uid {uid}: {}",
        refused.stdout
    );
    for words in [
        format!("runs as uid {uid}"),
        "this client's uid 0".to_owned(),
        format!("--expect-uid {uid}"),
    ] {
        assert!(
            refused.stderr.contains(&words),
            "the refusal does not say `{words}`: {}",
            refused.stderr
        );
    }
    let expecting = ["--expect-uid", &uid, "--endpoint", &endpoint];
    let answer = run_client(expecting.iter().chain(&["call", "echo.ping"]), &[]);
    assert_eq!(answer.json(), serde_json::Value::Null, "with --expect-uid");

    // Found by name: the socket file's owner is checked before connecting.
    let runtime_dir = server.runtime_dir();
    let refused = run_client_in(runtime_dir, &["call", "echo.ping"], &[]);
    assert!(!refused.status.success(), "by name: {}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains(&format!("its file is owned by uid {uid}"))
            && refused.stderr.contains("was not connected to"),
        "the refusal does not name the socket file's owner: {}",
        refused.stderr
    );
    let answer = run_client_in(
        runtime_dir,
        &["--expect-uid", &uid, "call", "echo.ping"],
        &[],
    );
    assert_eq!(answer.json(), serde_json::Value::Null, "by name, expected");

    // The refused clients sent nothing: only the two expecting ones got through a handshake,
    // each twice (one connection reads the schema from `introspect`, one calls `echo`).
    assert_eq!(
        accepted_connections(&server),
        4,
        "stderr:\n{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_reports_the_unexpected_server_and_serves_once_it_is_expected() {
    let setup = Setup::new();
    let server = setup.start_server_as_other_user();
    let uid = setup.user.uid();

    let by_endpoint = Connector::endpoint(server.endpoint().clone()).expect("no token needed");
    let err = by_endpoint
        .connect::<EchoClient>()
        .await
        .expect_err("a server run by another uid is refused");
    assert!(
        matches!(
            err,
            ConnectError::UnexpectedServer { server_uid, client_uid: 0, expected_uid: None, .. }
                if server_uid == uid
        ),
        "{err:?}"
    );
    assert!(!err.try_next(), "a refused server is never passed over");

    let err = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect_err("a socket file of another uid is refused");
    assert!(
        matches!(err, ConnectError::ForeignSocketFile { owner, .. } if owner == uid),
        "{err:?}"
    );
    assert!(
        !err.try_next(),
        "a refused socket file is never passed over"
    );

    assert_serves_calls(&by_endpoint.expect_server_uid(uid)).await;
    assert_serves_calls(&server.connector().expect_server_uid(uid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_socket_stops_the_client_instead_of_falling_back_to_the_servers_tcp_endpoint() {
    let setup = Setup::new();
    // The real server listens on TCP only, so its endpoint file lists a TCP endpoint and token.
    let server = setup.dir.server().listen("tcp:127.0.0.1:0").start();
    let location = server.location();
    // Another user's socket under the server's name, where a client by name looks first.
    let planted = std::os::unix::net::UnixListener::bind(location.socket_path())
        .expect("a socket can be planted");
    std::os::unix::fs::chown(
        location.socket_path(),
        Some(setup.user.uid()),
        Some(setup.user.gid()),
    )
    .expect("the planted socket can be given to the other user");

    let err = server
        .connector()
        .connect::<EchoClient>()
        .await
        .expect_err("the planted socket is refused, and the client stops there");
    assert!(
        matches!(err, ConnectError::ForeignSocketFile { owner, .. } if owner == setup.user.uid()),
        "{err:?}"
    );
    planted.set_nonblocking(true).expect("nonblocking");
    assert_eq!(
        planted.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the client connected to the planted socket"
    );
    assert_eq!(
        accepted_connections(&server),
        0,
        "the client went on to the tcp endpoint; stderr:\n{}",
        server.stderr()
    );
}
