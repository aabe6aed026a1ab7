//! A daemon serving your own service: the `notes` service of `examples::notes`, declared once with
//! `#[rpc_core::service]`, served the way `rpc-server` serves the built-ins.
//!
//! ```text
//! cargo run -p examples --example notes_daemon -- --runtime-dir /tmp/notes --name notes
//! rpc-client --runtime-dir /tmp/notes --name notes describe notes
//! rpc-client --runtime-dir /tmp/notes --name notes call notes.add '{"title":"t","body":"b"}'
//! ```
//!
//! It prints `listening on <endpoint>` once ready and stops cleanly on SIGINT or SIGTERM,
//! removing its socket. The built-in `introspect` service is always there, so `rpc-client list`
//! and `describe` work with no `health` service.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use examples::notes::{Filter, Note, Notes, NotesError};
use rpc_core::ServerLocation;
use rpc_core::tarpc::context::Context;
use rpc_server::shutdown::ShutdownSignals;
use rpc_server::{Server, ServerConfig};

/// The most notes the daemon keeps, so that no client can fill its memory.
const MAX_NOTES: usize = 10_000;

/// The notebook: one per daemon, shared by every connection.
#[derive(Debug, Clone, Default)]
struct Notebook {
    notes: Arc<Mutex<BTreeMap<u64, Note>>>,
}

impl Notebook {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<u64, Note>) -> T) -> T {
        // Each operation is one map call: a panic cannot leave the map half-updated.
        f(&mut self.notes.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Notes for Notebook {
    async fn add(self, _: Context, title: String, body: String) -> Note {
        self.with(|notes| {
            let id = notes.last_key_value().map_or(1, |(id, _)| id + 1);
            if notes.len() >= MAX_NOTES {
                // The oldest note makes room: a notebook, not a database.
                notes.pop_first();
            }
            let note = Note { id, title, body };
            notes.insert(id, note.clone());
            note
        })
    }

    async fn list(self, _: Context, filter: Option<Filter>) -> Vec<Note> {
        self.with(|notes| {
            notes
                .values()
                .filter(|note| match &filter {
                    None => true,
                    Some(Filter::TitleContains(text)) => note.title.contains(text.as_str()),
                    Some(Filter::Since { id }) => note.id >= *id,
                })
                .cloned()
                .collect()
        })
    }

    async fn get(self, _: Context, id: u64) -> Result<Note, NotesError> {
        self.with(|notes| notes.get(&id).cloned().ok_or(NotesError::NotFound { id }))
    }
}

/// Command-line arguments: `--runtime-dir DIR --name NAME`, both optional.
struct Args {
    runtime_dir: Option<PathBuf>,
    name: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runtime_dir: None,
        name: "notes".to_owned(),
    };
    let mut argv = std::env::args_os().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .with_context(|| format!("{flag:?} needs a value"))
        };
        match flag.to_str() {
            Some("--runtime-dir") => args.runtime_dir = Some(value()?.into()),
            Some("--name") => {
                args.name = value()?
                    .into_string()
                    .map_err(|_| anyhow::anyhow!("--name must be UTF-8"))?
            }
            _ => anyhow::bail!(
                "unknown argument {flag:?}: usage: notes_daemon [--runtime-dir DIR] [--name NAME]"
            ),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let location = ServerLocation::new(args.runtime_dir, &args.name)?;
    let mut server = Server::new(ServerConfig::new(location));
    let notebook = Notebook::default();
    server.add(move |_peer| notebook.clone().serve());
    let bound = server.bind().context("cannot start the notes daemon")?;
    let signals = ShutdownSignals::install().context("cannot install signal handlers")?;
    bound.announce(std::io::stdout().lock())?;
    bound.run_until(signals.recv()).await;
    Ok(())
}
