//! `rpc-client`: call a server's services from the shell.
//!
//! `rpc-client call kv.set '{"key":"greeting","value":"hello"}'`, then
//! `rpc-client call kv.get '{"key":"greeting"}'` prints `"hello"`. `list` prints the services and
//! their methods, `health` the server's state. On failure: exit code 1 and one line on stderr.
//!
//! Whatever the server sent is printed with its control characters escaped
//! ([`rpc_core::untrusted`]): a hostile or broken server cannot drive the terminal or forge lines.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use rpc_client::{Connector, DEFAULT_CONNECT_TIMEOUT, Target};
use rpc_core::services::health::{HealthClient, ServerInfo};
use rpc_core::services::{BUILT_IN, ServiceDescription, echo, health, kv};
use rpc_core::untrusted::{Untrusted, escape_json};
use rpc_core::{Endpoint, FrameLimit, ServerLocation, location::DEFAULT_NAME};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tarpc::RequestName;
use tarpc::client::stub::Stub;

/// Call an rpc-server's services from the shell; results print as JSON.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Connect to exactly this endpoint (`unix:/path.sock` or `tcp:127.0.0.1:PORT`; a TCP one
    /// needs RPC_TOKEN). Default: $RPC_ENDPOINT, else the server found by --name.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "name")]
    endpoint: Option<Endpoint>,
    /// Find the server by name: its socket, then its endpoint file, in the runtime directory.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Runtime directory of the server [default: $XDG_RUNTIME_DIR, else /tmp/rpc-<uid>].
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Time allowed to connect and to get each answer, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_millis() as u64, value_parser = positive_ms)]
    timeout_ms: u64,
    /// Largest frame sent or accepted, in bytes, from 4096 to 4294967295 [default: 16 MiB]. The
    /// server's own limit applies too: a connection honours the smaller.
    #[arg(long, value_name = "BYTES")]
    max_frame: Option<FrameLimit>,
    /// Also talk to a server that runs as this uid over a Unix socket (by default only your own
    /// uid and root are trusted: a server run by anyone else is refused before anything is sent).
    #[arg(long, value_name = "UID")]
    expect_uid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call SERVICE.METHOD with JSON arguments (an object of named arguments; default `{}`).
    Call {
        /// e.g. `kv.get`.
        method: String,
        /// e.g. `{"key":"greeting"}`.
        #[arg(default_value = "{}")]
        args: String,
    },
    /// List the server's services and their methods.
    List,
    /// Print the server's health info as JSON.
    Health,
}

/// A timeout in milliseconds, at least 1: a 0 ms timeout could never connect, so it is refused
/// (clap names the flag) rather than tried.
fn positive_ms(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(ms) => Ok(ms),
        Err(_) => Err(format!("`{text}` is not a whole number of milliseconds")),
    }
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The error may quote the server (a refusal, a server error's detail): escaped.
            eprintln!("rpc-client: {}", Untrusted(&format!("{err:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let target = match (args.endpoint, args.name) {
        (Some(endpoint), _) => Target::endpoint(endpoint)?,
        (None, Some(name)) => Target::Name(ServerLocation::new(args.runtime_dir, &name)?),
        (None, None) => Target::from_env_or(ServerLocation::new(args.runtime_dir, DEFAULT_NAME)?)?,
    };
    let mut connector = Connector::new(target)
        .connect_timeout(timeout)
        .max_frame(args.max_frame.unwrap_or_default());
    if let Some(uid) = args.expect_uid {
        connector = connector.expect_server_uid(uid);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        match args.command {
            Command::Call { method, args } => {
                let result = call(&connector, &method, &args, timeout).await?;
                print_json(&result)
            }
            Command::Health => print_json(&server_info(&connector, timeout).await?),
            Command::List => {
                let info = server_info(&connector, timeout).await?;
                for service in &info.services {
                    match BUILT_IN.iter().find(|d| d.name == service) {
                        Some(description) => {
                            for (method, example) in description.methods {
                                println!("{service}.{method} {example}");
                            }
                        }
                        None => {
                            println!("{} (methods not known to this client)", Untrusted(service))
                        }
                    }
                }
                Ok(())
            }
        }
    })
}

/// Prints `value` as JSON. serde_json escapes C0 controls in strings; [`escape_json`] escapes
/// the rest of what a server could use against a terminal (C1 controls, bidi overrides).
fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", escape_json(&serde_json::to_string_pretty(value)?));
    Ok(())
}

async fn server_info(connector: &Connector, timeout: Duration) -> anyhow::Result<ServerInfo> {
    let client = connector.connect::<HealthClient>().await?;
    Ok(client.info(deadline(timeout)).await?)
}

fn deadline(timeout: Duration) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = std::time::Instant::now() + timeout;
    ctx
}

/// Calls `service.method` with JSON arguments and returns the JSON result.
async fn call(
    connector: &Connector,
    target: &str,
    args: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let (service, method) = target
        .split_once('.')
        .ok_or_else(|| anyhow!("`{target}` is not SERVICE.METHOD, e.g. kv.get"))?;
    let description = BUILT_IN.iter().find(|d| d.name == service).ok_or_else(|| {
        let known: Vec<_> = BUILT_IN.iter().map(|d| d.name).collect();
        anyhow!(
            "unknown service `{service}`: this client can call {}",
            known.join(", ")
        )
    })?;
    if !description.methods.iter().any(|(m, _)| *m == method) {
        bail!(
            "unknown method `{target}`: {service} has {}",
            description
                .methods
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let args: Value = serde_json::from_str(args)
        .with_context(|| format!("arguments for {target} are not JSON"))?;
    let call = Call {
        connector,
        description,
        method,
        args,
        timeout,
    };
    match service {
        echo::NAME => call.run::<echo::EchoRequest, echo::EchoResponse>().await,
        kv::NAME => call.run::<kv::KvRequest, kv::KvResponse>().await,
        health::NAME => {
            call.run::<health::HealthRequest, health::HealthResponse>()
                .await
        }
        _ => unreachable!("every built-in service is matched above"),
    }
}

/// One CLI call, before the service's request and response types are chosen.
struct Call<'a> {
    connector: &'a Connector,
    description: &'a ServiceDescription,
    method: &'a str,
    args: Value,
    timeout: Duration,
}

impl Call<'_> {
    /// Builds the generated request enum from JSON (`{"Get": {"key": ...}}`), sends it, and
    /// unwraps the generated response enum (and a `Result`, whose `Err` becomes the error).
    async fn run<Req, Resp>(self) -> anyhow::Result<Value>
    where
        Req: Serialize + DeserializeOwned + RequestName + Send + 'static,
        Resp: Serialize + DeserializeOwned + Send + 'static,
    {
        let Call {
            connector,
            description,
            method,
            args,
            timeout,
        } = self;
        let variant = camel_case(method);
        let request: Req = serde_json::from_value(serde_json::json!({ variant.clone(): args }))
            .with_context(|| {
                let example = description
                    .methods
                    .iter()
                    .find(|(m, _)| *m == method)
                    .map_or("{}", |(_, e)| e);
                format!(
                    "bad arguments for {}.{method} (expected e.g. {example})",
                    description.name
                )
            })?;
        let channel = connector.channel::<Req, Resp>(description.name).await?;
        let response = channel
            .call(deadline(timeout), request)
            .await
            .with_context(|| format!("call to {}.{method} failed", description.name))?;
        let mut value = serde_json::to_value(response)?;
        let mut result = value.get_mut(&variant).map(Value::take).ok_or_else(|| {
            anyhow!(
                "server answered {}.{method} with another method's response",
                description.name
            )
        })?;
        if let Value::Object(map) = &mut result {
            if map.len() == 1 {
                if let Some(ok) = map.remove("Ok") {
                    return Ok(ok);
                }
                if let Some(err) = map.remove("Err") {
                    bail!("{}.{method} failed: {err}", description.name);
                }
            }
        }
        Ok(result)
    }
}

fn camel_case(method: &str) -> String {
    method
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}
