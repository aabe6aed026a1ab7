//! Calls the `notes` daemon from Rust, with the client `#[rpc_core::service]` generated.
//!
//! ```text
//! cargo run -p examples --example notes_daemon -- --runtime-dir /tmp/notes &
//! cargo run -p examples --example notes_client -- --runtime-dir /tmp/notes
//! ```

use examples::notes::{Filter, NotesClient, NotesError};
use rpc_client::{Connector, Target};
use rpc_core::ServerLocation;
use rpc_core::tarpc::context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `--runtime-dir DIR` and `--name NAME`, as notes_daemon takes them.
    let mut runtime_dir = None;
    let mut name = "notes".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--runtime-dir", Some(dir)) => runtime_dir = Some(dir.into()),
            ("--name", Some(value)) => name = value,
            _ => anyhow::bail!("usage: notes_client [--runtime-dir DIR] [--name NAME]"),
        }
    }
    let location = ServerLocation::new(runtime_dir, &name)?;
    // The service's name comes with its type: no string to mistype.
    let notes = Connector::new(Target::Name(location))
        .connect::<NotesClient>()
        .await?;

    let note = notes
        .add(context::current(), "groceries".into(), "milk, bread".into())
        .await?;
    println!("added {note:?}");
    let found = notes
        .list(
            context::current(),
            Some(Filter::TitleContains("groc".into())),
        )
        .await?;
    println!("{} note(s) match", found.len());
    match notes.get(context::current(), u64::MAX).await? {
        Err(NotesError::NotFound { id }) => println!("as expected, no note {id}"),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
    Ok(())
}
