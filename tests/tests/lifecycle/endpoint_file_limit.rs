//! The endpoint file's size limit, at limit-1, limit and limit+1: a file over it is refused as too
//! large, not cut short and reported as broken JSON.

use rpc_client::{ConnectError, read_endpoint_file};
use rpc_core::EndpointFile;
use rpc_core::limits::MAX_ENDPOINT_FILE_LEN;
use tests::TestDir;

/// A valid endpoint file padded with trailing spaces (still valid JSON) to `len` bytes.
fn padded_endpoint_file(len: u64) -> String {
    let file = EndpointFile {
        pid: 1,
        endpoints: vec!["unix:/run/rpc.sock".parse().expect("an endpoint")],
        token: None,
    };
    let mut text = file.to_json();
    let len = usize::try_from(len).expect("small");
    assert!(text.len() <= len);
    text.extend(std::iter::repeat_n(' ', len - text.len()));
    text
}

#[test]
fn endpoint_files_up_to_the_limit_are_read_and_one_byte_over_is_refused_as_too_large() {
    let dir = TestDir::new();
    let path = dir.path().join("rpc.endpoint");
    for len in [MAX_ENDPOINT_FILE_LEN - 1, MAX_ENDPOINT_FILE_LEN] {
        std::fs::write(&path, padded_endpoint_file(len)).expect("written");
        let file = read_endpoint_file(&path)
            .unwrap_or_else(|err| panic!("{len} bytes: {err}"))
            .expect("the file exists");
        assert_eq!(file.pid, 1);
    }
    std::fs::write(&path, padded_endpoint_file(MAX_ENDPOINT_FILE_LEN + 1)).expect("written");
    match read_endpoint_file(&path) {
        Err(err @ ConnectError::EndpointFile { .. }) => assert!(
            err.to_string()
                .contains(&format!("larger than {MAX_ENDPOINT_FILE_LEN} bytes")),
            "{err}"
        ),
        other => panic!("a file one byte over the limit gave {other:?}"),
    }
}
