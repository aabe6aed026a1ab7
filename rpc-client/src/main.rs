//! `rpc-client`: call any service of an rpc-server from the shell, with JSON.
//!
//! ```text
//! rpc-client list                                  # every service, with its methods' signatures
//! rpc-client describe kv                           # one service's methods and types
//! rpc-client call kv.set '{"key":"greeting","value":"hello"}'
//! echo '{"key":"greeting"}' | rpc-client call kv.get -
//! rpc-client watch kv.watch '{"prefix":"config/"}'   # one event a line, until Ctrl-C
//! rpc-client completions bash > ~/.local/share/bash-completion/completions/rpc-client
//! ```
//!
//! Exit codes: 0 the call succeeded (for `watch`: the stream ended); 1 the call or stream failed,
//! returned an error, or the server refused the connection; 2 bad usage or arguments (nothing
//! was sent); 3 the server could not be reached; 130 `watch` was stopped by Ctrl-C. Errors go to
//! stderr, one line each.
//!
//! Whatever the server sent is printed with its control characters escaped
//! ([`rpc_core::untrusted`]): a hostile or broken server cannot drive the terminal or forge lines.

mod cli;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use rpc_client::DEFAULT_CONNECT_TIMEOUT;
use rpc_core::lane::ShmSize;
use rpc_core::{Endpoint, FrameLimit};

use cli::Output;

/// Call an rpc-server's services from the shell; results print as JSON.
#[derive(Debug, Parser)]
#[command(version, about, after_help = cli::EXIT_CODES)]
struct Args {
    /// Connect to exactly this endpoint (`unix:/path.sock` or `tcp:127.0.0.1:PORT`; a TCP one
    /// needs RPC_TOKEN). Default: $RPC_ENDPOINT, else the server found by --name.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "name", global = true)]
    endpoint: Option<Endpoint>,
    /// Find the server by name: its socket, then its endpoint file, in the runtime directory
    /// [default: rpc].
    #[arg(long, value_name = "NAME", global = true)]
    name: Option<String>,
    /// Runtime directory of the server [default: $XDG_RUNTIME_DIR, else /tmp/rpc-<uid>].
    #[arg(long, value_name = "DIR", global = true)]
    runtime_dir: Option<PathBuf>,
    /// Time allowed to connect and to get each answer, in milliseconds (at least 1); for
    /// `watch`, to open the stream, which then lasts until it ends.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_millis() as u64, value_parser = positive_ms, global = true)]
    timeout_ms: u64,
    /// Largest frame sent or accepted, in bytes, from 4096 to 4294967295 [default: 16 MiB]. The
    /// server's own limit applies too: a connection honours the smaller.
    #[arg(long, value_name = "BYTES", global = true)]
    max_frame: Option<FrameLimit>,
    /// Size of each shared-memory region offered on a Unix connection, in bytes: 0 (no
    /// shared-memory lane), or from 65536 to 1073741824 [default: 4 MiB]. The server's own
    /// `--shm-size` may make it smaller.
    #[arg(long, value_name = "BYTES", global = true)]
    shm_size: Option<ShmSize>,
    /// Also talk to a server that runs as this uid over a Unix socket (by default only your own
    /// uid and root are trusted: a server run by anyone else is refused before anything is sent).
    #[arg(long, value_name = "UID", global = true)]
    expect_uid: Option<u32>,
    /// Print JSON: results always are; with `list` and `describe`, the schemas too (their
    /// machine form). `--json=pretty` indents, `--json=short` prints one line [default: pretty
    /// on a terminal, short otherwise]. `watch` always prints one line per event.
    #[arg(long, value_name = "STYLE", num_args = 0..=1, require_equals = true, default_missing_value = "auto", global = true)]
    json: Option<JsonStyle>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call SERVICE.METHOD with JSON arguments: an object of named arguments (default `{}`),
    /// or `-` to read them from stdin.
    Call {
        /// e.g. `kv.get`.
        method: String,
        /// e.g. `{"key":"greeting"}`, or `-` for stdin.
        #[arg(default_value = "{}")]
        args: String,
    },
    /// Open the streaming method SERVICE.METHOD with JSON arguments (as `call` takes them) and
    /// print each event as it arrives, one JSON object per line, until the stream ends (exit 0)
    /// or Ctrl-C (exit 130).
    #[command(after_help = cli::WATCH_HELP)]
    Watch {
        /// e.g. `kv.watch`: a method `describe` shows as `-> stream T`.
        method: String,
        /// e.g. `{"prefix":"config/"}`, or `-` for stdin.
        #[arg(default_value = "{}")]
        args: String,
    },
    /// List every hosted service with its methods' signatures.
    List,
    /// Print one service's methods and the types they use.
    Describe {
        /// The service, e.g. `kv`.
        service: String,
    },
    /// Print the server's health info as JSON (needs the `health` service).
    Health,
    /// Print a completion script for a shell.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
}

/// How JSON is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum JsonStyle {
    /// Pretty on a terminal, short otherwise.
    Auto,
    /// Indented, one field per line.
    Pretty,
    /// One line.
    Short,
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

fn main() -> ExitCode {
    let args = Args::parse();
    cli::show_warnings();
    if let Command::Completions { shell } = args.command {
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "rpc-client",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let pretty = match args.json {
        Some(JsonStyle::Pretty) => true,
        Some(JsonStyle::Short) => false,
        Some(JsonStyle::Auto) | None => std::io::stdout().is_terminal(),
    };
    let settings = cli::Settings {
        endpoint: args.endpoint,
        name: args.name,
        runtime_dir: args.runtime_dir,
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        max_frame: args.max_frame,
        shm_size: args.shm_size,
        expect_uid: args.expect_uid,
        output: Output {
            pretty,
            schemas_as_json: args.json.is_some(),
        },
    };
    let outcome = match args.command {
        Command::Call { method, args } => cli::call(&settings, &method, &args),
        Command::Watch { method, args } => cli::watch(&settings, &method, &args),
        Command::List => cli::list(&settings),
        Command::Describe { service } => cli::describe(&settings, &service),
        Command::Health => cli::health(&settings),
        Command::Completions { .. } => unreachable!("handled above"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn watch_takes_a_method_and_json_arguments_as_call_does() {
        let args = Args::try_parse_from(["rpc-client", "watch", "kv.watch", r#"{"prefix":"a"}"#])
            .expect("parses");
        let Command::Watch { method, args } = args.command else {
            panic!("watch");
        };
        assert_eq!(
            (method.as_str(), args.as_str()),
            ("kv.watch", r#"{"prefix":"a"}"#)
        );
        let args = Args::try_parse_from(["rpc-client", "watch", "kv.watch"]).expect("parses");
        assert!(matches!(args.command, Command::Watch { args, .. } if args == "{}"));
    }

    #[test]
    fn watch_help_documents_the_line_format_and_exit_codes() {
        let mut command = Args::command();
        let help = command
            .find_subcommand_mut("watch")
            .expect("watch")
            .render_long_help()
            .to_string();
        assert!(help.contains(r#"{"Lagged":{"missed":12}}"#), "{help}");
        assert!(help.contains("exit 130"), "{help}");
        assert!(cli::EXIT_CODES.contains("130"));
    }

    #[test]
    fn completions_know_watch() {
        let mut script = Vec::new();
        clap_complete::generate(Shell::Bash, &mut Args::command(), "rpc-client", &mut script);
        let script = String::from_utf8(script).expect("UTF-8");
        assert!(script.contains("rpc__client,watch)"), "{script}");
    }
}
