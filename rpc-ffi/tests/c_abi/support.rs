//! Finding the library this build made, and compiling C programs against it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `rpc-ffi/`, where `include/`, `tests/c/` and (one up) `examples/` are.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `librpc_ffi.so` built with this test binary.
///
/// Cargo builds the library's cdylib before the tests that use the crate, into
/// `target/<profile>/deps/`, and copies it to `target/<profile>/`, beside `deps/`, where this
/// test executable lives. Both `cargo test -p rpc-ffi` and `cargo test --workspace` write the
/// one in `deps/`, looked at first; only `cargo build` refreshes the copy beside it.
pub fn library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable has a path");
        let deps = exe.parent().expect("the test executable is in target/<profile>/deps");
        let profile = deps.parent().expect("deps is in target/<profile>");
        [deps, profile]
            .iter()
            .map(|dir| dir.join("librpc_ffi.so"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "librpc_ffi.so is neither in {} nor in {}: build it with `cargo build -p rpc-ffi`",
                    deps.display(),
                    profile.display()
                )
            })
    })
}

/// Compiles the C program `source` into `out_dir`, linked against [`library`] (found at run
/// time through an rpath, so it runs without `LD_LIBRARY_PATH`), warnings as errors.
pub fn compile_c(source: &Path, out_dir: &Path) -> PathBuf {
    let lib_dir = library().parent().expect("the library is in a directory");
    let name = source.file_stem().expect("a C file has a name");
    let program = out_dir.join(name);
    let output = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(source)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-L")
        .arg(lib_dir)
        .arg("-lrpc_ffi")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lpthread")
        .arg("-o")
        .arg(&program)
        .output()
        .expect("cc runs");
    assert!(
        output.status.success(),
        "cc failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    program
}

/// A command running a program [`compile_c`] made, loading [`library`] through its rpath.
///
/// Without `LD_LIBRARY_PATH`: `cargo test` sets it to `target/<profile>` and `deps/`, and it
/// takes precedence over the rpath, but `target/<profile>/librpc_ffi.so` is only refreshed by
/// `cargo build`, so under `cargo test` it may be a stale copy.
pub fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_remove("LD_LIBRARY_PATH");
    command
}

/// A C program from `rpc-ffi/tests/c/`, compiled into `out_dir`.
pub fn test_program(name: &str, out_dir: &Path) -> PathBuf {
    compile_c(&crate_dir().join("tests").join("c").join(name), out_dir)
}

/// Compiles the C program `name` from `rpc-ffi/tests/c/` into `out_dir`, runs it with `arg`, and
/// returns its cases: each line "CASE REST" as CASE → REST. The program must exit with success
/// after printing "done" last.
pub fn run_cases(name: &str, out_dir: &Path, arg: impl AsRef<OsStr>) -> HashMap<String, String> {
    let program = test_program(name, out_dir);
    let output = command(&program)
        .arg(arg)
        .output()
        .unwrap_or_else(|err| panic!("{name} does not run: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} exited with {:?}:\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.ends_with("done\n"),
        "{name} stopped early:\n{stdout}"
    );
    stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(case, rest)| (case.to_owned(), rest.to_owned()))
        .collect()
}
