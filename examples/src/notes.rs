//! The `notes` service: a small notebook with a struct argument, an enum filter and an error
//! enum, declared once. `notes_daemon` serves it; `notes_client` and `rpc-client` call it.
//!
//! ```no_run
//! use examples::notes::NotesClient;
//! use rpc_client::Connector;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let notes = Connector::from_env("notes")?.connect::<NotesClient>().await?;
//! let note = notes
//!     .add(rpc_core::tarpc::context::current(), "title".into(), "body".into())
//!     .await?;
//! println!("added note {}", note.id);
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

/// A note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Its number, from 1, in the order notes were added.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
}

/// Which notes `list` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    /// Notes whose title contains this text.
    TitleContains(String),
    /// Notes with an id of at least `id`.
    Since {
        /// The first id.
        id: u64,
    },
}

/// Why a call to `notes` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NotesError {
    /// No note has this id.
    #[error("no note with id {id}")]
    NotFound {
        /// The id asked for.
        id: u64,
    },
}

/// A notebook shared by every client of the daemon.
#[rpc_core::service(name = "notes")]
pub trait Notes {
    /// Adds a note; returns it with its new id.
    async fn add(title: String, body: String) -> Note;
    /// The notes that pass `filter` (all of them without one), oldest first.
    async fn list(filter: Option<Filter>) -> Vec<Note>;
    /// The note with this id.
    async fn get(id: u64) -> Result<Note, NotesError>;
}
