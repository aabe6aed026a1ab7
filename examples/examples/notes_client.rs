//! Calls the `notes` daemon from Rust, with the client `#[rpc_core::service]` generated.
//!
//! ```text
//! cargo run -p examples --example notes_daemon -- --runtime-dir /tmp/notes &
//! cargo run -p examples --example notes_client -- /tmp/notes
//! ```

use examples::notes::{Filter, NotesClient, NotesError};
use rpc_client::{Connector, Target};
use rpc_core::ServerLocation;
use rpc_core::tarpc::context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runtime_dir = std::env::args_os().nth(1).map(Into::into);
    let location = ServerLocation::new(runtime_dir, "notes")?;
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
