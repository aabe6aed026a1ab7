//! Many clients at once, each on its own connections, each getting its own answers.

use std::time::Duration;

use futures::StreamExt;
use rpc_core::services::echo::EchoClient;
use rpc_core::services::health::HealthClient;
use rpc_core::services::kv::KvClient;
use serde_bytes::ByteBuf;
use tarpc::context;
use tests::TestDir;

const CLIENTS: usize = 64;
const CALLS_PER_CLIENT: usize = 200;
/// Calls each client keeps in flight on each of its connections, so that answers to one
/// connection's concurrent calls must be matched to the right caller.
const IN_FLIGHT_PER_CONNECTION: usize = 8;
/// Generous for 38 400 calls on two cores, yet a hang fails the test instead of the suite.
const DEADLINE: Duration = Duration::from_secs(40);

/// A payload unique to (client, call), of varying length.
fn payload(client: usize, call: usize) -> Vec<u8> {
    let mut bytes = format!("client {client} call {call}:").into_bytes();
    bytes.extend((0..(client * 31 + call * 17) % 1500).map(|i| (i % 256) as u8));
    bytes
}

async fn run_client(connector: rpc_client::Connector, client: usize) {
    let echo = connector
        .connect::<EchoClient>()
        .await
        .expect("echo connects");
    let kv = connector.connect::<KvClient>().await.expect("kv connects");
    futures::stream::iter(0..CALLS_PER_CLIENT)
        .for_each_concurrent(IN_FLIGHT_PER_CONNECTION, |call| {
            let echo = &echo;
            let kv = &kv;
            async move {
                let sent = payload(client, call);
                let echoed = echo
                    .echo(context::current(), ByteBuf::from(sent.clone()))
                    .await
                    .unwrap_or_else(|err| panic!("client {client} call {call}: echo: {err}"));
                assert!(
                    echoed.as_slice() == sent.as_slice(),
                    "client {client} call {call}: echo returned another call's bytes"
                );

                let key = format!("client-{client}/key-{call}");
                let value = format!("value of client {client} call {call}");
                let replaced = kv
                    .set(context::current(), key.clone(), value.clone())
                    .await
                    .unwrap_or_else(|err| panic!("client {client} call {call}: set: {err}"))
                    .unwrap_or_else(|err| panic!("client {client} call {call}: set: {err}"));
                assert_eq!(
                    replaced, None,
                    "client {client} call {call}: key already set"
                );
                let got = kv
                    .get(context::current(), key)
                    .await
                    .unwrap_or_else(|err| panic!("client {client} call {call}: get: {err}"));
                assert_eq!(got, Some(value), "client {client} call {call}: get");
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_making_two_hundred_calls_each_all_get_their_own_answers() {
    let dir = TestDir::new();
    let server = dir.server().start();
    let connector = server.connector();

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| tokio::spawn(run_client(connector.clone(), client)))
        .collect();
    let all = futures::future::join_all(clients);
    let results = tokio::time::timeout(DEADLINE, all)
        .await
        .unwrap_or_else(|_| panic!("{CLIENTS} clients did not finish within {DEADLINE:?}"));
    for (client, result) in results.into_iter().enumerate() {
        if let Err(err) = result {
            std::panic::resume_unwind(
                err.try_into_panic()
                    .unwrap_or_else(|err| panic!("client {client} was cancelled: {err}")),
            );
        }
    }

    let health = connector
        .connect::<HealthClient>()
        .await
        .expect("health connects");
    let info = health
        .info(context::current())
        .await
        .expect("health.info is answered");
    assert_eq!(
        info.calls_served,
        (CLIENTS * CALLS_PER_CLIENT * 3) as u64,
        "every call is counted once"
    );
    let kv = connector.connect::<KvClient>().await.expect("kv connects");
    let keys = kv
        .list(context::current(), "client-".into())
        .await
        .expect("kv.list is answered");
    assert_eq!(
        keys.len(),
        CLIENTS * CALLS_PER_CLIENT,
        "every set key is stored"
    );
}
