//! A throwaway system user, for tests of what a server lets another user do (the tests run as
//! root). Created with `useradd`, removed with `userdel` when dropped, however the test ends.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `useradd` and `userdel` lock `/etc/passwd`; tests in one process take turns, and retry while
/// another process holds the lock.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Attempts at `useradd`/`userdel` before a test gives up.
const ATTEMPTS: usize = 20;

/// A system user with no home directory, deleted when dropped.
#[derive(Debug)]
pub struct OtherUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl OtherUser {
    /// Creates a user called `rpctest-<pid>-<n>`. Panics if `useradd` keeps failing.
    pub fn create() -> OtherUser {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let _turn = ACCOUNTS.lock().unwrap_or_else(|err| err.into_inner());
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let name = format!(
                "rpctest-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let output = run(Command::new("useradd").args(["-M", "-r", "-s", "/bin/false", &name]));
            if output.status.success() {
                let (uid, gid) = ids_of(&name);
                return OtherUser { name, uid, gid };
            }
            // 9: the name is taken (a leftover of a crashed run); anything else: the lock.
            last = String::from_utf8_lossy(&output.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("useradd kept failing: {last}");
    }

    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The user's primary gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The words that run `program` as this user: `setpriv` with its uid, its primary gid and
    /// no other groups, which then execs `program` (so its pid is the program's).
    pub fn launcher(&self, program: impl AsRef<OsStr>) -> Vec<OsString> {
        vec![
            "setpriv".into(),
            format!("--reuid={}", self.uid).into(),
            format!("--regid={}", self.gid).into(),
            "--clear-groups".into(),
            "--".into(),
            program.as_ref().to_owned(),
        ]
    }

    /// A command that runs `program` as this user (see [`OtherUser::launcher`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let launcher = self.launcher(program);
        let mut command = Command::new(&launcher[0]);
        command
            .args(&launcher[1..])
            .env_remove(rpc_client::RPC_ENDPOINT)
            .env_remove(rpc_client::RPC_TOKEN)
            .stdin(Stdio::null());
        command
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _turn = ACCOUNTS.lock().unwrap_or_else(|err| err.into_inner());
        for _ in 0..ATTEMPTS {
            let output = run(Command::new("userdel").arg(&self.name));
            // 6: no such user, nothing left to do.
            if output.status.success() || output.status.code() == Some(6) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not delete the test user {}", self.name);
    }
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"))
}

/// The uid and gid of `name`, from `/etc/passwd`.
fn ids_of(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd is readable");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .unwrap_or_else(|| panic!("{name} is not in /etc/passwd after useradd"))
}

/// `binary` if every user may run it where it is; otherwise a copy in `dir` (mode 0755), which
/// must itself be reachable by every user.
pub fn binary_anyone_can_run(binary: &Path, dir: &Path) -> PathBuf {
    let others_may = |path: &Path, bits: u32| {
        std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & bits == bits)
    };
    let reachable = binary
        .ancestors()
        .skip(1)
        .all(|ancestor| others_may(ancestor, 0o001));
    if reachable && others_may(binary, 0o005) {
        return binary.to_owned();
    }
    let copy = dir.join(binary.file_name().expect("the binary has a file name"));
    std::fs::copy(binary, &copy).expect("the binary can be copied");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        .expect("the copy can be made executable");
    copy
}
