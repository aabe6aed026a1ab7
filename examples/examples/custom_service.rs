//! Define your own service, serve it with rpc-server's library, call it with rpc-client's.
//!
//! `cargo run -p examples --example custom_service`
//!
//! The trait lives in a module both sides share (in a real project: a small crate, like
//! `rpc-core`). One declaration gives both sides everything: the server trait, the client
//! `GreeterClient`, and the name `greeter` they find each other by. The server's handler sees who
//! called: the kernel-verified uid and pid of the peer.

/// The contract: what a shared crate would hold.
mod shared {
    /// Greets callers. Hosted as `greeter`: the trait's name in snake_case, unless
    /// `#[rpc_core::service(name = "...")]` says otherwise.
    #[rpc_core::service]
    pub trait Greeter {
        /// A greeting for `name`, saying who the server thinks called.
        async fn greet(name: String) -> String;
    }
}

use rpc_client::{Connector, Target};
use rpc_core::ServerLocation;
use rpc_core::tarpc::context::{self, Context};
use rpc_server::{Peer, Server, ServerConfig};
use shared::{Greeter, GreeterClient};

/// The server side: one value per connection, built from the calling peer.
#[derive(Clone)]
struct GreeterService {
    caller: Peer,
}

impl Greeter for GreeterService {
    async fn greet(self, _: Context, name: String) -> String {
        match self.caller.credentials {
            Some(creds) => format!(
                "hello {name}, uid {} (pid {:?}) via {}",
                creds.uid, creds.pid, self.caller.endpoint
            ),
            None => format!("hello {name}, token holder via {}", self.caller.endpoint),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runtime_dir = tempfile::tempdir()?;
    let location = ServerLocation::new(Some(runtime_dir.path().to_owned()), "greeter")?;

    let mut server = Server::new(ServerConfig::new(location.clone()));
    server.add(|peer| {
        GreeterService {
            caller: peer.clone(),
        }
        .serve()
    });
    let bound = server.bind()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run_until(async {
        let _ = stopped.await;
    }));

    let client = Connector::new(Target::Name(location))
        .connect::<GreeterClient>()
        .await?;
    let greeting = client.greet(context::current(), "newcomer".into()).await?;
    println!("{greeting}");

    let _ = stop.send(());
    serving.await?;
    Ok(())
}
