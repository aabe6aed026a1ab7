use super::*;
use crate::schema::json::tests::notes::notes;

#[test]
fn the_notes_service_reads_as_its_rust_source_does() {
    let expected = r#"service notes {
  /// Adds a note.
  add(title: string, body: string) -> Note
  list(filter: Option<Filter>) -> Vec<Note>
  get(id: u64) -> Result<Note, NotesError>
  update(note: Note)
  /// Sends every kind of value back.
  ///
  /// As it came.
  echo(all: Everything, outcome: Result<(), string>) -> Everything
  ping()
}

struct Note { id: u64, title: string, body: string, tags: Vec<string> }
enum Filter { Tag(string), Since { id: u64 }, All }
enum NotesError { NotFound { id: u64 }, Locked }
struct Everything {
  bytes: bytes,
  by_name: Map<string, u32>,
  by_id: Map<u64, string>,
  by_note: Map<NoteId, bool>,
  pair: (u8, string),
  rgb: [u8; 3],
  big: i128,
  huge: u128,
  letter: char,
  ratio: f32,
  precise: f64,
  flag: bool,
  maybe: Option<Option<u8>>,
  marker: Marker,
  id: NoteId,
  point: Point,
  small: (i8, i16, i32, i64, u16, u32),
  nothing: (),
  filters: Vec<Filter>,
}
struct NoteId(u64)
struct Marker
struct Point(i16, i64)
"#;
    assert_eq!(notes().to_idl(), expected);
}

#[test]
fn signatures_leave_out_a_unit_result() {
    let schema = notes();
    let signatures: Vec<String> = schema.methods.iter().map(MethodSchema::signature).collect();
    assert_eq!(
        signatures,
        [
            "add(title: string, body: string) -> Note",
            "list(filter: Option<Filter>) -> Vec<Note>",
            "get(id: u64) -> Result<Note, NotesError>",
            "update(note: Note)",
            "echo(all: Everything, outcome: Result<(), string>) -> Everything",
            "ping()",
        ]
    );
}

#[test]
fn a_streaming_method_reads_as_a_stream_of_its_items() {
    use crate::Service;
    let kv = crate::services::kv::KvClient::schema().expect("kv traces");
    let idl = kv.to_idl();
    assert!(
        idl.contains("\n  watch(prefix: string) -> stream KvEvent\n"),
        "{idl}"
    );
    assert!(
        idl.contains("enum KvEvent { Set { key: string, value: string }, Delete { key: string } }"),
        "{idl}"
    );
    // A stream of `()` still says it streams.
    let mut ticks = notes();
    let ping = ticks.methods.last_mut().expect("ping");
    ping.streaming = true;
    assert_eq!(ping.signature(), "ping() -> stream ()");
}

#[test]
fn only_reachable_types_are_printed_and_undefined_ones_are_flagged() {
    let mut schema = notes();
    schema
        .methods
        .retain(|m| m.name == "list" || m.name == "ping");
    schema
        .types
        .insert("Unused".into(), TypeDef::Struct(Shape::Unit));
    let idl = schema.to_idl();
    let types = "\n\nenum Filter { Tag(string), Since { id: u64 }, All }\n\
                 struct Note { id: u64, title: string, body: string, tags: Vec<string> }\n";
    assert!(idl.ends_with(types), "{idl}");
    assert!(
        !idl.contains("Unused") && !idl.contains("Everything"),
        "{idl}"
    );

    schema.types.remove("Filter");
    assert!(
        schema
            .to_idl()
            .contains("}\n\n// Filter: used but not defined by the schema\nstruct Note {")
    );

    schema.methods.retain(|m| m.name == "ping");
    assert_eq!(schema.to_idl(), "service notes {\n  ping()\n}\n");
}

#[test]
fn every_type_has_a_spelling() {
    let one = Type::Tuple(vec![Type::Char]);
    assert_eq!(one.to_string(), "(char,)");
    assert_eq!(Type::Tuple(vec![]).to_string(), "()");
    let empty = TypeDef::Enum(vec![]);
    assert_eq!(definition("Never", &empty), "enum Never {}\n");
    let no_fields = TypeDef::Struct(Shape::Struct(vec![]));
    assert_eq!(definition("Empty", &no_fields), "struct Empty {}\n");
    let variant = Variant {
        index: 0,
        name: "Pair".into(),
        shape: Shape::Tuple(vec![Type::I8, Type::Bytes]),
    };
    let long = TypeDef::Enum(vec![variant; 9]);
    assert!(definition("Long", &long).starts_with("enum Long {\n  Pair(i8, bytes),\n"));
}

#[test]
fn the_json_form_is_serdes_and_reads_back() {
    let schema = notes();
    let json = serde_json::to_string_pretty(&schema).expect("serializes");
    assert!(json.contains("\"name\": \"notes\""), "{json}");
    assert!(json.contains("\"Named\": \"Note\""), "{json}");
    let back: ServiceSchema = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, schema);
}
