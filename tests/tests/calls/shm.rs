//! The shared-memory lane end to end: a library client's large echo over a Unix socket really
//! goes through the regions (the server maps them), and with the lane off on either side none
//! is made.

use rpc_core::lane::ShmSize;
use rpc_core::services::echo::EchoClient;
use serde_bytes::ByteBuf;
use tarpc::context;
use tests::raw_lane::{LIBRARY_REGION_NAME, echo_payload, mapped_regions};
use tests::resources::SETTLE_TIMEOUT;
use tests::{ServerProcess, TestDir};

/// An echo of 1 MiB: well over the 32 KiB from which a field takes the lane.
const PAYLOAD: usize = 1 << 20;

/// Echoes [`PAYLOAD`] bytes through `connector` and checks the answer.
async fn echo_a_mebibyte(connector: rpc_client::Connector) -> rpc_client::Client<EchoClient> {
    let echo = connector
        .connect::<EchoClient>()
        .await
        .expect("echo connects over unix");
    let payload = echo_payload(7, PAYLOAD);
    let echoed = echo
        .echo(context::current(), ByteBuf::from(payload.clone()))
        .await
        .expect("echo.echo is answered");
    assert!(echoed[..] == payload[..], "the echo came back other bytes");
    echo
}

/// The server's lane mappings: the regions of its own (writable) and of its clients (read-only).
fn server_regions(server: &ServerProcess) -> (usize, usize) {
    let maps = mapped_regions(server.pid(), LIBRARY_REGION_NAME);
    let writable = maps
        .iter()
        .filter(|line| line.split_whitespace().nth(1) == Some("rw-s"))
        .count();
    (writable, maps.len() - writable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_echo_over_unix_goes_through_both_regions_which_go_with_the_connection() {
    let dir = TestDir::new();
    let server = dir.server().start();
    assert_eq!(server_regions(&server), (0, 0), "regions before any call");

    let echo = echo_a_mebibyte(server.connector()).await;
    assert_eq!(
        server_regions(&server),
        (1, 1),
        "the server maps its own region and the client's after a 1 MiB echo"
    );
    drop(echo);
    tests::wait_for(
        SETTLE_TIMEOUT,
        "the server to unmap both regions once the client is gone",
        || server_regions(&server) == (0, 0),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_offers_no_lane_gets_its_echo_through_the_socket() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let _echo = echo_a_mebibyte(server.connector().shm_size(ShmSize::OFF)).await;
    assert_eq!(server_regions(&server), (0, 0), "a region without a lane");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_with_shm_size_0_gets_every_echo_through_the_socket() {
    let dir = TestDir::new();
    let server = dir.server().arg("--shm-size").arg("0").start();
    let _echo = echo_a_mebibyte(server.connector()).await;
    assert_eq!(server_regions(&server), (0, 0), "a region without a lane");
}
