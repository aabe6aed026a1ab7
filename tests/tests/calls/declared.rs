//! A service of one's own, declared once with `#[rpc_core::service]`: it sends exactly the bytes
//! `#[tarpc::service]` sends for the same trait, and is hosted and called by its type alone.

use rpc_client::{Connector, Target};
use rpc_core::schema::Type;
use rpc_core::tarpc::context::{self, Context};
use rpc_core::wire::WireFormat;
use rpc_core::{FrameLimit, Service};
use rpc_server::{ServeError, Server, ServerConfig};
use serde::{Deserialize, Serialize};
use tests::TestDir;

/// A note, as both declarations send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

/// Why a note could not be had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NotesError {
    NotFound { id: u64 },
    Empty,
}

/// The trait, declared with this framework's macro.
mod ours {
    use super::{Note, NotesError};

    /// Keeps notes.
    #[rpc_core::service(name = "notes")]
    pub trait Notes {
        /// Adds a note; returns its id.
        async fn add(title: String, body: String, tags: Vec<String>) -> u64;
        /// The note with `id`.
        async fn get(id: u64) -> Result<Note, NotesError>;
        /// Every note.
        async fn list_all() -> Vec<Note>;
        /// Forgets every note.
        async fn clear();
    }
}

/// The same trait, declared with tarpc's.
mod stock {
    use super::{Note, NotesError};

    #[tarpc::service]
    pub trait Notes {
        async fn add(title: String, body: String, tags: Vec<String>) -> u64;
        async fn get(id: u64) -> Result<Note, NotesError>;
        async fn list_all() -> Vec<Note>;
        async fn clear();
    }
}

use ours::{Notes, NotesClient, NotesRequest, NotesResponse};

fn note() -> Note {
    Note {
        title: "shopping".into(),
        body: "eggs".into(),
        tags: vec!["home".into()],
    }
}

/// The body bytes a value travels as.
fn wire<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = bytes::BytesMut::new();
    WireFormat::new(FrameLimit::default())
        .encode_body(value, &mut bytes)
        .expect("encodes");
    bytes.to_vec()
}

/// Checks that `ours` and `theirs` travel as the same bytes, and read as the same JSON (the
/// variant names `rpc-client call` goes by).
fn assert_same_on_the_wire(ours: &impl Serialize, theirs: &impl Serialize) {
    assert_eq!(wire(ours), wire(theirs));
    assert_eq!(
        serde_json::to_value(ours).expect("json"),
        serde_json::to_value(theirs).expect("json")
    );
}

#[test]
fn declared_requests_are_the_bytes_tarpc_sends() {
    let (title, body, tags) = (
        "shopping".to_owned(),
        "eggs".to_owned(),
        vec!["home".into()],
    );
    assert_same_on_the_wire(
        &NotesRequest::Add {
            title: title.clone(),
            body: body.clone(),
            tags: tags.clone(),
        },
        &stock::NotesRequest::Add { title, body, tags },
    );
    assert_same_on_the_wire(
        &NotesRequest::Get { id: 7 },
        &stock::NotesRequest::Get { id: 7 },
    );
    assert_same_on_the_wire(&NotesRequest::ListAll {}, &stock::NotesRequest::ListAll {});
    assert_same_on_the_wire(&NotesRequest::Clear {}, &stock::NotesRequest::Clear {});
    use rpc_core::tarpc::RequestName;
    assert_eq!(
        NotesRequest::ListAll {}.name(),
        stock::NotesRequest::ListAll {}.name()
    );
}

#[test]
fn declared_responses_are_the_bytes_tarpc_sends() {
    assert_same_on_the_wire(&NotesResponse::Add(3), &stock::NotesResponse::Add(3));
    assert_same_on_the_wire(
        &NotesResponse::Get(Ok(note())),
        &stock::NotesResponse::Get(Ok(note())),
    );
    let missing = Err(NotesError::NotFound { id: 9 });
    assert_same_on_the_wire(
        &NotesResponse::Get(missing.clone()),
        &stock::NotesResponse::Get(missing),
    );
    assert_same_on_the_wire(
        &NotesResponse::ListAll(vec![note()]),
        &stock::NotesResponse::ListAll(vec![note()]),
    );
    assert_same_on_the_wire(&NotesResponse::Clear(()), &stock::NotesResponse::Clear(()));
}

#[test]
fn a_declaration_binds_its_name_and_describes_its_methods() {
    assert_eq!(NotesClient::NAME, "notes");
    let schema = NotesClient::schema().expect("traces");
    assert_eq!(schema.method_names(), ["add", "get", "list_all", "clear"]);
    assert_eq!(schema.methods[0].doc, "Adds a note; returns its id.");
    let args: Vec<_> = schema.methods[0].args.iter().map(|a| &a.name).collect();
    assert_eq!(args, ["title", "body", "tags"]);
    assert_eq!(
        schema.methods[1].result,
        Type::Result {
            ok: Box::new(Type::Named("Note".into())),
            err: Box::new(Type::Named("NotesError".into())),
        }
    );
    assert_eq!(schema.methods[3].result, Type::Unit);
    assert!(schema.types.contains_key("NotesError"));
}

/// One note, whatever is added: enough to tell the calls apart.
#[derive(Clone)]
struct OneNote;

impl Notes for OneNote {
    async fn add(self, _: Context, title: String, _: String, tags: Vec<String>) -> u64 {
        (title.len() + tags.len()) as u64
    }

    async fn get(self, _: Context, id: u64) -> Result<Note, NotesError> {
        match id {
            1 => Ok(note()),
            _ => Err(NotesError::NotFound { id }),
        }
    }

    async fn list_all(self, _: Context) -> Vec<Note> {
        vec![note()]
    }

    async fn clear(self, _: Context) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_service_is_hosted_and_called_by_its_type() {
    let dir = TestDir::new();
    let mut server = Server::new(ServerConfig::new(dir.location()));
    server.add(|_| OneNote.serve());
    let bound = server.bind().expect("binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.run_until(async {
        let _ = stopped.await;
    }));
    let connector = Connector::new(Target::Name(dir.location()));

    let notes = connector.connect::<NotesClient>().await.expect("connects");
    let id = notes
        .add(context::current(), "abc".into(), "".into(), vec![])
        .await
        .expect("answered");
    assert_eq!(id, 3);
    assert_eq!(
        notes.get(context::current(), 1).await.expect("answered"),
        Ok(note())
    );
    notes.clear(context::current()).await.expect("answered");

    // A client declared with tarpc's macro speaks the same bytes to the same server.
    let channel = connector
        .channel::<stock::NotesRequest, stock::NotesResponse>(NotesClient::NAME)
        .await
        .expect("connects");
    let stock_notes = stock::NotesClient::from(channel);
    assert_eq!(
        stock_notes
            .get(context::current(), 2)
            .await
            .expect("answered"),
        Err(NotesError::NotFound { id: 2 })
    );

    let reconnecting = connector
        .reconnecting::<NotesClient>()
        .await
        .expect("connects");
    let all = reconnecting
        .list_all(context::current())
        .await
        .expect("answered");
    assert_eq!(all, [note()]);

    let _ = stop.send(());
    serving.await.expect("server task");
}

#[test]
fn a_service_added_twice_fails_bind_naming_it() {
    let dir = TestDir::new();
    let mut server = Server::new(ServerConfig::new(dir.location()));
    server.add(|_| OneNote.serve()).add(|_| OneNote.serve());
    match server.bind() {
        Err(ServeError::DuplicateService(name)) => assert_eq!(name, "notes"),
        other => panic!("expected a duplicate service, got {:?}", other.err()),
    }
}

/// A type whose `Deserialize` parses its input: tracing it needs a sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct At {
    pub endpoint: rpc_core::Endpoint,
}

/// Says where it is, without the sample its schema needs.
#[rpc_core::service]
pub trait Whereabouts {
    /// Where the server listens.
    async fn at() -> At;
}

#[derive(Clone)]
struct Here;

impl Whereabouts for Here {
    async fn at(self, _: Context) -> At {
        At {
            endpoint: rpc_core::Endpoint::Unix("/run/here.sock".into()),
        }
    }
}

#[test]
fn a_schema_that_cannot_be_traced_fails_bind_with_the_fix() {
    assert_eq!(WhereaboutsClient::NAME, "whereabouts");
    let dir = TestDir::new();
    let mut server = Server::new(ServerConfig::new(dir.location()));
    server.add(|_| Here.serve());
    let err = server.bind().err().expect("bind fails");
    assert!(matches!(err, ServeError::Schema(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("`whereabouts`"), "{text}");
    assert!(text.contains("needs a sample"), "{text}");
}
