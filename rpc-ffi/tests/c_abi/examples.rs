//! The examples a user copies, run as the README says, against a real server.

use std::path::PathBuf;
use std::process::Command;

use tests::TestDir;

use crate::support::{command, compile_c, crate_dir, library};

fn examples_dir() -> PathBuf {
    crate_dir()
        .parent()
        .expect("rpc-ffi is in the workspace")
        .join("examples")
}

#[test]
fn c_example_sets_and_gets_a_key() {
    let dir = TestDir::new();
    let _server = dir.server().start();
    let program = compile_c(&examples_dir().join("c").join("call.c"), dir.path());
    let output = command(&program)
        .arg("rpc")
        .arg(dir.runtime_dir())
        .output()
        .expect("the C example runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "\"hello from C\"\n"
    );
}

#[test]
fn python_example_sets_and_gets_a_key() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let output = Command::new("python3")
        .arg(examples_dir().join("python").join("call.py"))
        .arg(server.endpoint().to_string())
        .env("RPC_FFI_LIB", library())
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "\"hello from Python\"\n"
    );
}

#[test]
fn python_example_reports_an_absent_server() {
    let dir = TestDir::new();
    let output = Command::new("python3")
        .arg(examples_dir().join("python").join("call.py"))
        .arg("rpc")
        .arg(dir.runtime_dir())
        .env("RPC_FFI_LIB", library())
        .output()
        .expect("python3 runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("call.py: code -1: no server named `rpc`"),
        "{stderr}"
    );
}
