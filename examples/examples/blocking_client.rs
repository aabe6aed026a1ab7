//! Call a server from a program with no async runtime, as a desktop app's UI thread would.
//!
//! `cargo run -p examples --example blocking_client`
//!
//! With `RPC_ENDPOINT` set, or an `rpc-server` running under the default name, it calls that
//! server. Otherwise it first starts one on a background thread, standing in for the daemon that
//! a real app would talk to.

use std::time::Duration;

use rpc_client::{BlockingClient, Connector, Target};
use rpc_core::ServerLocation;
use rpc_core::location::DEFAULT_NAME;
use rpc_core::services::health::HealthClient;
use rpc_core::services::kv::KvClient;

fn main() -> anyhow::Result<()> {
    // What the app writes: a connector, a blocking client per service, plain calls.
    let (connector, _daemon) = match Connector::from_env(DEFAULT_NAME) {
        Ok(connector) if BlockingClient::<HealthClient>::connect(connector.clone()).is_ok() => {
            (connector, None)
        }
        _ => {
            let daemon = StandInDaemon::start()?;
            (daemon.connector(), Some(daemon))
        }
    };
    let connector = connector.connect_timeout(Duration::from_secs(2));

    let kv = BlockingClient::<KvClient>::connect(connector.clone())?;
    kv.call(async |kv, ctx| kv.set(ctx, "theme".into(), "dark".into()).await)??;
    let theme = kv.call(async |kv, ctx| kv.get(ctx, "theme".into()).await)?;
    println!("theme = {theme:?}");

    let health = BlockingClient::<HealthClient>::connect(connector)?;
    let info = health.call(async |h, ctx| h.info(ctx).await)?;
    println!(
        "server {} (pid {}) has served {} calls",
        info.version, info.pid, info.calls_served
    );
    Ok(())
}

/// A server on a background thread with its own runtime; stops when dropped.
struct StandInDaemon {
    location: ServerLocation,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl StandInDaemon {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let location = ServerLocation::new(Some(dir.path().to_owned()), DEFAULT_NAME)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let mut server = rpc_server::Server::new(rpc_server::ServerConfig::new(location.clone()));
        rpc_server::add_builtin_services(&mut server);
        // Bind inside the runtime (the listener needs its reactor) before the client looks.
        let bound = runtime.block_on(async { server.bind() })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(bound.run_until(async {
                let _ = stopped.await;
            }));
        });
        Ok(StandInDaemon {
            location,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }

    fn connector(&self) -> Connector {
        Connector::new(Target::Name(self.location.clone()))
    }
}

impl Drop for StandInDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
