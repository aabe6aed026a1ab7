//! Another user on the same machine: what the socket's mode and the allow lists let it do, and
//! what a file it planted in the runtime directory gets. The tests run as root and make a
//! throwaway user (see [`tests::other_user`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tests::binaries::client_binary;
use tests::other_user::{OtherUser, binary_anyone_can_run};
use tests::resources::Baseline;
use tests::{ClientOutput, ServerCommand, ServerProcess, TestDir};

/// A test directory the other user can reach, its runtime directory made (mode 0755, owned by
/// root, which the server accepts) before any server starts, the other user, and an
/// `rpc-client` it may run.
struct Setup {
    dir: TestDir,
    user: OtherUser,
    client: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = TestDir::new();
        // tempfile makes its directories 0700.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("the test directory can be opened up");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(dir.runtime_dir())
            .expect("the runtime directory can be created");
        fs::set_permissions(dir.runtime_dir(), fs::Permissions::from_mode(0o755))
            .expect("the runtime directory is 0755 whatever the umask");
        let user = OtherUser::create();
        let client = binary_anyone_can_run(client_binary(), dir.path());
        Setup { dir, user, client }
    }

    fn server(&self) -> ServerCommand {
        self.dir.server()
    }

    /// Runs `rpc-client call echo.ping` against `server`'s socket as the other user.
    fn ping_as_other_user(&self, server: &ServerProcess) -> ClientOutput {
        let socket = server.endpoint().unix_path().expect("a unix endpoint");
        let output = self
            .user
            .command(&self.client)
            .arg("--endpoint")
            .arg(format!("unix:{}", socket.display()))
            .args(["call", "echo.ping"])
            .output()
            .expect("setpriv runs");
        ClientOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_user_cannot_connect_to_the_default_0600_socket_and_is_told_permission_denied() {
    let setup = Setup::new();
    let server = setup.server().start();
    let baseline = Baseline::after_warm_up(&server).await;

    let output = setup.ping_as_other_user(&server);
    assert!(
        !output.status.success(),
        "uid {} called through a 0600 socket: {}",
        setup.user.uid(),
        output.stdout
    );
    let socket = server.endpoint().unix_path().expect("a unix endpoint");
    assert!(
        output.stderr.to_lowercase().contains("permission denied")
            && output.stderr.contains(&socket.display().to_string()),
        "the error does not say permission denied at {}: {}",
        socket.display(),
        output.stderr
    );
    assert!(
        !server
            .stderr()
            .contains(&format!("peer_uid={}", setup.user.uid())),
        "the other user reached the server through a 0600 socket; stderr:\n{}",
        server.stderr()
    );
    baseline
        .assert_restored(&server, "another user's failed connect")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_user_reaching_a_0666_socket_is_refused_as_peer_not_allowed_naming_its_uid() {
    let setup = Setup::new();
    let server = setup.server().arg("--socket-mode").arg("0666").start();
    let baseline = Baseline::after_warm_up(&server).await;

    let output = setup.ping_as_other_user(&server);
    assert!(
        !output.status.success(),
        "uid {} was served without being allowed: {}",
        setup.user.uid(),
        output.stdout
    );
    let uid = setup.user.uid();
    assert!(
        output.stderr.contains("peer not allowed") && output.stderr.contains(&format!("uid {uid}")),
        "the error does not say uid {uid} is not allowed: {}",
        output.stderr
    );
    assert!(
        output.stderr.contains(&format!("--allow-uid {uid}")),
        "the error does not say how to allow uid {uid}: {}",
        output.stderr
    );
    tests::wait_for(tests::EXIT_TIMEOUT, "the refusal to be logged", || {
        server.stderr().contains(&format!("peer_uid={uid}"))
    });
    baseline
        .assert_restored(&server, "another user's refused connection")
        .await;
}

/// Starts a server with a 0666 socket and `allow` (e.g. `--allow-uid N`), and checks that the
/// other user's ping is answered.
async fn assert_allowed_other_user_is_served(setup: &Setup, allow: &[String]) {
    let server = setup
        .server()
        .arg("--socket-mode")
        .arg("0666")
        .arg(&allow[0])
        .arg(&allow[1])
        .start();
    let baseline = Baseline::after_warm_up(&server).await;

    let output = setup.ping_as_other_user(&server);
    assert_eq!(
        output.json(),
        serde_json::Value::Null,
        "echo.ping as uid {} with {allow:?}",
        setup.user.uid()
    );
    baseline
        .assert_restored(&server, "another user's allowed call")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_user_allowed_by_uid_is_served() {
    let setup = Setup::new();
    let allow = ["--allow-uid".to_owned(), setup.user.uid().to_string()];
    assert_allowed_other_user_is_served(&setup, &allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_user_allowed_by_its_primary_gid_is_served() {
    let setup = Setup::new();
    assert_ne!(
        setup.user.gid(),
        0,
        "the other user must not be in root's group"
    );
    let allow = ["--allow-gid".to_owned(), setup.user.gid().to_string()];
    assert_allowed_other_user_is_served(&setup, &allow).await;
}

fn owner_of(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path)
        .unwrap_or_else(|err| panic!("{} is missing: {err}", path.display()));
    (meta.uid(), meta.gid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regular_file_of_another_user_at_the_endpoint_file_path_is_refused_and_left_intact() {
    let setup = Setup::new();
    let location = setup.dir.location();
    let endpoint_file = location.endpoint_file_path();
    fs::write(&endpoint_file, b"precious").expect("write");
    std::os::unix::fs::chown(
        &endpoint_file,
        Some(setup.user.uid()),
        Some(setup.user.gid()),
    )
    .expect("chown");
    let mode = fs::metadata(&endpoint_file)
        .expect("exists")
        .permissions()
        .mode();

    let exit = setup.server().run_to_exit();
    assert!(
        !exit.status.success(),
        "the server started over another user's file; stdout: {}",
        exit.stdout
    );
    assert!(
        exit.stderr.contains("refusing to replace the regular file")
            && exit.stderr.contains(&endpoint_file.display().to_string()),
        "stderr does not say which file it refused to replace: {}",
        exit.stderr
    );
    assert_eq!(fs::read(&endpoint_file).expect("still there"), b"precious");
    assert_eq!(
        owner_of(&endpoint_file),
        (setup.user.uid(), setup.user.gid()),
        "owner changed"
    );
    assert_eq!(
        fs::metadata(&endpoint_file)
            .expect("exists")
            .permissions()
            .mode(),
        mode,
        "mode changed"
    );
    assert!(
        !location.socket_path().exists(),
        "the socket bound before the refusal is left behind"
    );

    // The runtime directory is still usable by a server of another name.
    let server = setup.server().name("other").start();
    let baseline = Baseline::after_warm_up(&server).await;
    baseline
        .assert_restored(&server, "a refused start next to it")
        .await;
    assert_eq!(fs::read(&endpoint_file).expect("still there"), b"precious");
}
