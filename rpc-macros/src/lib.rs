//! `#[rpc_core::service]`: one declaration per service. Use it through `rpc-core`, which
//! re-exports it; this crate is its implementation.
//!
//! On `trait Notes` it generates what `#[tarpc::service]` generates, with the same bytes on the
//! wire: the server trait `Notes` (with `fn serve(self) -> ServeNotes<Self>`), the request and
//! response enums `NotesRequest` and `NotesResponse`, `ServeNotes<S>` and the client
//! `NotesClient<Stub>`. Besides, it binds the service's name to its types once:
//! `impl rpc_core::Service for NotesClient` carries the name (so a client connects with
//! `connect::<NotesClient>()` and a server hosts `ServeNotes` under it, with no name typed
//! twice), the wire types and the schema; `ServeNotes<S>` implements `rpc_core::ServeService`.
//!
//! Every generated path goes through `::rpc_core` (`::rpc_core::tarpc`, `::rpc_core::serde`),
//! so a crate that declares a service needs `rpc-core` and not tarpc.

mod expand;
mod names;
mod parse;
mod schema;

use proc_macro::TokenStream;
use syn::parse_macro_input;

/// Declares a service: `#[rpc_core::service(name = "notes", trace = [Kind], samples = [expr])]`
/// on a trait of `async fn`s without `self`.
///
/// - `name`: the name the service is hosted under; by default the trait's name in snake_case
///   (`KeyValue` → `key_value`). 1 to 64 characters from `a-z A-Z 0-9 _ - .`, checked here.
/// - `trace`: types the schema must trace on their own, besides those written in the methods'
///   signatures: enums nested inside a struct.
/// - `samples`: values for the schema's tracer, for types whose `Deserialize` checks its input.
///
/// See `rpc_core::Service` for what the generated client type is, and `rpc_core::schema` for
/// what a schema holds.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as parse::Args);
    let service = parse_macro_input!(item as parse::ServiceTrait);
    match parse::service_name(&args, &service.ident) {
        Ok(name) => expand::expand(&args, &service, &name).into(),
        Err(err) => err.to_compile_error().into(),
    }
}
