//! The test service: a notes service as `#[rpc_core::service]` would describe it, with the
//! request and response enums tarpc derives for it, and a method that takes and returns every
//! kind of [`Type`](crate::schema::Type).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::schema::{SchemaBuilder, ServiceSchema};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Filter {
    Tag(String),
    Since { id: u64 },
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NotesError {
    NotFound { id: u64 },
    Locked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NoteId(pub u64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point(pub i16, pub i64);

/// Every kind of type but `Result`, which serde-reflection learns whole only at the top of a
/// method's signature: `echo` takes one as an argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Everything {
    pub bytes: ByteBuf,
    pub by_name: BTreeMap<String, u32>,
    pub by_id: BTreeMap<u64, String>,
    pub by_note: BTreeMap<NoteId, bool>,
    pub pair: (u8, String),
    pub rgb: [u8; 3],
    pub big: i128,
    pub huge: u128,
    pub letter: char,
    pub ratio: f32,
    pub precise: f64,
    pub flag: bool,
    pub maybe: Option<Option<u8>>,
    pub marker: Marker,
    pub id: NoteId,
    pub point: Point,
    pub small: (i8, i16, i32, i64, u16, u32),
    pub nothing: (),
    pub filters: Vec<Filter>,
}

/// What tarpc derives for the service's requests: one struct variant per method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NotesRequest {
    Add {
        title: String,
        body: String,
    },
    List {
        filter: Option<Filter>,
    },
    Get {
        id: u64,
    },
    Update {
        note: Note,
    },
    Echo {
        all: Everything,
        outcome: Result<(), String>,
    },
    Ping {},
}

/// What tarpc derives for the service's responses: one newtype variant per method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NotesResponse {
    Add(Note),
    List(Vec<Note>),
    Get(Result<Note, NotesError>),
    Update(()),
    Echo(Everything),
    Ping(()),
}

/// The service's schema, traced as `#[rpc_core::service]` traces it.
pub fn notes() -> ServiceSchema {
    let mut builder = SchemaBuilder::new("notes");
    builder.root::<Note>().root::<Filter>().root::<NotesError>();
    let text = builder.trace::<String>().expect("traces String");
    let note = builder.trace::<Note>().expect("traces Note");
    builder.method(
        "add",
        "Adds a note.",
        vec![("title", text.clone()), ("body", text)],
        note.clone(),
    );
    let filter = builder.trace::<Option<Filter>>().expect("traces a filter");
    let notes = builder.trace::<Vec<Note>>().expect("traces notes");
    builder.method("list", "", vec![("filter", filter)], notes);
    let id = builder.trace::<u64>().expect("traces u64");
    let found = builder
        .trace::<Result<Note, NotesError>>()
        .expect("traces a Result");
    builder.method("get", "", vec![("id", id)], found);
    let unit = builder.trace::<()>().expect("traces ()");
    builder.method("update", "", vec![("note", note)], unit.clone());
    let all = builder.trace::<Everything>().expect("traces Everything");
    let outcome = builder
        .trace::<Result<(), String>>()
        .expect("traces another Result");
    builder.method(
        "echo",
        "Sends every kind of value back.\n\nAs it came.",
        vec![("all", all.clone()), ("outcome", outcome)],
        all,
    );
    builder.method("ping", "", vec![], unit);
    builder.finish()
}
