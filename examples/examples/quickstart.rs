//! Serve the built-in services and call them, in one program.
//!
//! `cargo run -p examples --example quickstart`
//!
//! A real deployment runs `rpc-server` as its own process; here both halves share a process so the
//! whole round trip fits on one screen. The server listens on a Unix socket in a temporary runtime
//! directory; the client finds it by name.

use rpc_client::{Connector, Target};
use rpc_core::ServerLocation;
use rpc_core::services::echo::EchoClient;
use rpc_core::services::kv::KvClient;
use rpc_core::tarpc::context;
use rpc_server::{Server, ServerConfig, add_builtin_services};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runtime_dir = tempfile::tempdir()?;
    let location = ServerLocation::new(Some(runtime_dir.path().to_owned()), "quickstart")?;

    // Serve: bind first (so the socket exists before anyone connects), then run in the background.
    let mut server = Server::new(ServerConfig::new(location.clone()));
    add_builtin_services(&mut server);
    let bound = server.bind()?;
    println!("listening on {}", bound.endpoints()[0]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run_until(async {
        let _ = stopped.await;
    }));

    // Call: find the server by name, connect typed clients, call.
    let connector = Connector::new(Target::Name(location));
    let kv = connector.connect::<KvClient>().await?;
    kv.set(context::current(), "greeting".into(), "hello".into())
        .await??;
    let value = kv.get(context::current(), "greeting".into()).await?;
    println!("kv.get(greeting) = {value:?}");
    assert_eq!(value.as_deref(), Some("hello"));

    let echo = connector.connect::<EchoClient>().await?;
    let bytes = echo
        .echo(
            context::current(),
            serde_bytes::ByteBuf::from(b"ping".to_vec()),
        )
        .await?;
    println!("echo.echo(ping) = {:?}", String::from_utf8_lossy(&bytes));

    // Shut down: the server finishes in-flight calls and removes its socket and endpoint file.
    let _ = stop.send(());
    serving.await?;
    Ok(())
}
