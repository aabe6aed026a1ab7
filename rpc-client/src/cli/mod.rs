//! The commands of `rpc-client` (the binary's own module: the library knows nothing of it).
//!
//! Each command connects, does its one thing, prints to stdout, and returns a [`Failure`] that
//! carries its exit code. `watch`, which prints until a stream ends, has its own file.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use rpc_client::{ConnectError, Connector, JsonCallError, JsonClient, JsonConnectError, Target};
use rpc_core::lane::ShmSize;
use rpc_core::schema::{ServiceSchema, Type};
use rpc_core::services::health::HealthClient;
use rpc_core::services::introspect::IntrospectClient;
use rpc_core::untrusted::{EscapingWriter, Untrusted, escape_json};
use rpc_core::{Endpoint, FrameLimit, ServerLocation, location::DEFAULT_NAME};
use serde::Serialize;
use serde_json::Value;

mod watch;

pub use watch::{WATCH_HELP, watch};

/// Prints the library's warnings (a server whose schema is not this client's, say) on stderr,
/// as `rpc-client: warning: ...`, escaped; `RUST_LOG` shows more.
pub fn show_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(|| EscapingWriter::new(std::io::stderr(), false))
        .event_format(Warning)
        .init();
}

/// Formats an event as one line: `rpc-client: warning: message (field=value ...)`.
struct Warning;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Warning
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            other => other.as_str(),
        };
        write!(writer, "rpc-client: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "Exit codes: 0 ok (for watch: the stream ended); 1 the call or stream failed, returned an error, or the server refused; 2 bad usage or arguments (nothing was sent); 3 the server could not be reached; 130 watch was stopped by Ctrl-C.";

/// What every command needs: where the server is, and how to print.
pub struct Settings {
    pub endpoint: Option<Endpoint>,
    pub name: Option<String>,
    pub runtime_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub max_frame: Option<FrameLimit>,
    pub shm_size: Option<ShmSize>,
    pub expect_uid: Option<u32>,
    pub output: Output,
}

/// How results are printed.
pub struct Output {
    /// Indented JSON, or one line.
    pub pretty: bool,
    /// `list` and `describe` print schemas as JSON instead of text.
    pub schemas_as_json: bool,
}

/// A command that did not succeed: its exit code and the error to print, if any.
pub struct Failure {
    code: u8,
    error: Option<anyhow::Error>,
}

impl Failure {
    /// 1: the call failed, returned an error, or the server refused.
    fn call(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: Some(error.into()),
        }
    }

    /// 2: bad usage or arguments; nothing was sent.
    fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: Some(error.into()),
        }
    }

    /// 130 (128 + SIGINT, as a shell reports a command Ctrl-C killed), and nothing to print:
    /// the user stopped the command, which did nothing wrong.
    fn interrupted() -> Self {
        Failure {
            code: 130,
            error: None,
        }
    }

    /// Prints the error (escaped: it may quote the server) and returns the exit code.
    pub fn report(self) -> ExitCode {
        if let Some(error) = self.error {
            eprintln!("rpc-client: {}", Untrusted(&format!("{error:#}")));
        }
        ExitCode::from(self.code)
    }
}

impl From<ConnectError> for Failure {
    fn from(err: ConnectError) -> Self {
        let code = connect_exit_code(&err);
        Failure {
            code,
            error: Some(err.into()),
        }
    }
}

impl From<JsonCallError> for Failure {
    /// 2 for arguments (or a method of the other kind) refused before anything was sent, the
    /// connection's code when reconnecting failed, 1 otherwise.
    fn from(err: JsonCallError) -> Self {
        match err {
            JsonCallError::Args(_) => Failure::usage(err),
            JsonCallError::Unreachable { source, .. } => source.into(),
            _ => Failure::call(err),
        }
    }
}

impl From<JsonConnectError> for Failure {
    fn from(err: JsonConnectError) -> Self {
        match err {
            JsonConnectError::Connect(err) => err.into(),
            JsonConnectError::UnknownService { .. } => Failure::usage(err),
            JsonConnectError::Describe(_)
            | JsonConnectError::SchemaChanged { .. }
            | JsonConnectError::Unprintable { .. } => Failure::call(err),
        }
    }
}

/// 3 when the server was not reached, 2 when this client's settings are unusable, 1 when the
/// server refused.
fn connect_exit_code(err: &ConnectError) -> u8 {
    match err {
        ConnectError::Refused { .. } => 1,
        ConnectError::MissingToken { .. } | ConnectError::BadEnv { .. } => 2,
        ConnectError::AllFailed { attempts }
            if attempts.iter().all(|e| connect_exit_code(e) == 1) =>
        {
            1
        }
        ConnectError::Handshake { .. } if !err.try_next() => 1,
        _ => 3,
    }
}

impl Settings {
    fn connector(&self) -> Result<Connector, Failure> {
        let target = match (&self.endpoint, &self.name) {
            (Some(endpoint), _) => Target::endpoint(endpoint.clone())?,
            (None, Some(name)) => Target::Name(
                ServerLocation::new(self.runtime_dir.clone(), name).map_err(Failure::usage)?,
            ),
            (None, None) => Target::from_env_or(
                ServerLocation::new(self.runtime_dir.clone(), DEFAULT_NAME)
                    .map_err(Failure::usage)?,
            )?,
        };
        let connector = Connector::new(target)
            .connect_timeout(self.timeout)
            .max_frame(self.max_frame.unwrap_or_default())
            .shm_size(self.shm_size.unwrap_or_default());
        Ok(match self.expect_uid {
            Some(uid) => connector.expect_server_uid(uid),
            None => connector,
        })
    }

    fn context(&self) -> rpc_core::tarpc::context::Context {
        let mut ctx = rpc_core::tarpc::context::current();
        ctx.deadline = Instant::now() + self.timeout;
        ctx
    }

    /// Runs `f` on a current-thread runtime.
    fn run<T>(&self, f: impl AsyncFnOnce(Connector) -> Result<T, Failure>) -> Result<T, Failure> {
        let connector = self.connector()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the tokio runtime")
            .map_err(Failure::call)?;
        runtime.block_on(f(connector))
    }

    /// Prints `value` as JSON. serde_json escapes C0 controls in strings; [`escape_json`]
    /// escapes the rest of what a server could use against a terminal (C1 controls, bidi
    /// overrides).
    fn print_json(&self, value: &impl Serialize) -> Result<(), Failure> {
        let text = if self.output.pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        };
        print_line(&escape_json(&text.map_err(Failure::call)?))
    }
}

/// Writes one line to stdout. A reader that has gone (`rpc-client call ... | head -c 10`) ends
/// the output quietly, as `watch` does, rather than with a panic and a backtrace.
fn print_line(line: &impl std::fmt::Display) -> Result<(), Failure> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::call(
            anyhow::Error::new(err).context("cannot write to stdout"),
        )),
        _ => Ok(()),
    }
}

/// What `call` and `watch` are given: `SERVICE.METHOD` (`example` shows one), and JSON
/// arguments, or `-` to read them from stdin. Checked before anything is sent.
fn method_and_args<'t>(
    settings: &Settings,
    target: &'t str,
    args: &str,
    example: &str,
) -> Result<(&'t str, &'t str, Value), Failure> {
    let (service, method) = target.rsplit_once('.').ok_or_else(|| {
        Failure::usage(anyhow!(
            "`{}` is not SERVICE.METHOD, e.g. {example}",
            Untrusted(target)
        ))
    })?;
    let text = if args == "-" {
        read_stdin(settings.max_frame.unwrap_or_default())?
    } else {
        args.to_owned()
    };
    let args: Value = serde_json::from_str(&text)
        .map_err(|err| Failure::usage(anyhow!("the arguments for {target} are not JSON: {err}")))?;
    Ok((service, method, args))
}

/// `call SERVICE.METHOD [JSON|-]`.
pub fn call(settings: &Settings, target: &str, args: &str) -> Result<(), Failure> {
    let (service, method, args) = method_and_args(settings, target, args, "kv.get")?;
    settings.run(async |connector| {
        let client = JsonClient::connect(&connector, service).await?;
        let result_type = client
            .schema()
            .await
            .method(method)
            .map(|(_, m)| m.result.clone());
        let value = client.call(settings.context(), method, &args).await?;
        // A method returning `Result`: print the `Ok` value, or fail with the `Err`.
        if let (Some(Type::Result { .. }), Value::Object(map)) = (&result_type, &value) {
            if let Some(ok) = map.get("Ok") {
                return settings.print_json(ok);
            }
            if let Some(err) = map.get("Err") {
                return Err(Failure::call(anyhow!(
                    "{target} returned an error: {}",
                    escape_json(&err.to_string())
                )));
            }
        }
        settings.print_json(&value)
    })
}

/// Reads JSON arguments from stdin, at most a frame's worth.
fn read_stdin(limit: FrameLimit) -> Result<String, Failure> {
    let mut text = String::new();
    let read = std::io::stdin()
        .lock()
        .take(limit.bytes() as u64 + 1)
        .read_to_string(&mut text)
        .context("cannot read the arguments from stdin")
        .map_err(Failure::usage)?;
    if read > limit.bytes() {
        return Err(Failure::usage(anyhow!(
            "the arguments on stdin are larger than the frame limit ({} bytes; see --max-frame)",
            limit.bytes()
        )));
    }
    Ok(text)
}

/// Every hosted service's schema, from the `introspect` service: their names first, then each
/// schema in a call of its own, so that no answer holds more than one schema (a server hosting
/// many services would otherwise need a frame limit large enough for all of them at once).
async fn schemas(
    settings: &Settings,
    connector: &Connector,
) -> Result<Vec<ServiceSchema>, Failure> {
    let introspect = connector.connect::<IntrospectClient>().await?;
    let read_error =
        |err| Failure::call(anyhow::Error::new(err).context("cannot read the server's schemas"));
    let hosted = introspect
        .hashes(settings.context())
        .await
        .map_err(read_error)?;
    let mut schemas = Vec::with_capacity(hosted.len());
    for (name, _) in hosted {
        let described = introspect
            .describe(settings.context(), name.clone())
            .await
            .map_err(read_error)?;
        // A service that went away between the two calls is left out.
        if let Some(schema) = described {
            // Names are printed as text: none may forge a line.
            schema.check_names().map_err(Failure::call)?;
            schemas.push(schema);
        }
    }
    Ok(schemas)
}

/// `list`: every service and its methods' signatures.
pub fn list(settings: &Settings) -> Result<(), Failure> {
    settings.run(async |connector| {
        let schemas = schemas(settings, &connector).await?;
        if settings.output.schemas_as_json {
            return settings.print_json(&schemas);
        }
        let mut text = String::new();
        for schema in &schemas {
            text.push_str(&format!("{}  (schema {})\n", schema.name, schema.hash()));
            for method in &schema.methods {
                text.push_str(&format!("  {}.{}\n", schema.name, method.signature()));
            }
        }
        print_lines(&text)
    })
}

/// Prints text that quotes the server (names from its schemas) a line at a time, each escaped.
fn print_lines(text: &str) -> Result<(), Failure> {
    text.lines()
        .try_for_each(|line| print_line(&Untrusted(line)))
}

/// `describe SERVICE`: its methods and types.
pub fn describe(settings: &Settings, service: &str) -> Result<(), Failure> {
    settings.run(async |connector| {
        let introspect = connector.connect::<IntrospectClient>().await?;
        let described = introspect
            .describe(settings.context(), service.to_owned())
            .await
            .context("cannot read the server's schemas")
            .map_err(Failure::call)?;
        let Some(schema) = described else {
            let hosted = schemas(settings, &connector).await?;
            return Err(Failure::usage(anyhow!(
                "unknown service `{}`: this server hosts {}",
                Untrusted(service),
                hosted
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        schema.check_names().map_err(Failure::call)?;
        if settings.output.schemas_as_json {
            return settings.print_json(&schema);
        }
        print_lines(&schema.to_idl())
    })
}

/// `health`: the `health` service's info. A server whose `health` is not the one this client
/// was built with gets a warning (from the connector) before the answer, or the error.
pub fn health(settings: &Settings) -> Result<(), Failure> {
    settings.run(async |connector| {
        let client = connector.connect::<HealthClient>().await?;
        let info = client
            .info(settings.context())
            .await
            .context("call to health.info failed")
            .map_err(Failure::call)?;
        settings.print_json(&info)
    })
}
