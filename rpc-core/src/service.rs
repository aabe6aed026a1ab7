//! [`Service`] and [`ServeService`]: a service's name, wire types and schema, bound to its types
//! once by [`#[rpc_core::service]`](macro@crate::service), so that server and client cannot disagree
//! about them and a misspelt name does not compile.
//!
//! `rpc-client` connects any [`Service`] (the generated client type, e.g. `NotesClient`) by its
//! [`Service::NAME`]; `rpc-server` hosts any [`ServeService`] (the generated `ServeNotes<S>`)
//! under the name of its service, and describes it with [`Service::schema`].

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::{SchemaError, ServiceSchema};
use crate::streaming::Answer;

/// The longest service name: 64 characters, so that a refusal naming it
/// ([`MAX_ECHOED_NAME`](crate::limits::MAX_ECHOED_NAME)) and a log line show it whole.
pub const MAX_SERVICE_NAME_LEN: usize = 64;

/// Whether `name` may name a service: 1 to [`MAX_SERVICE_NAME_LEN`] characters from
/// `a-z A-Z 0-9 _ - .`, so that it reads the same in a handshake, a refusal, a log line and a
/// shell command. `#[rpc_core::service]` checks its `name` with this rule while compiling.
pub const fn is_valid_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_SERVICE_NAME_LEN {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return false;
        }
        i += 1;
    }
    true
}

/// A service, as its generated client type knows it: the name it is hosted under, its request
/// and response enums, how to wrap a connection in the client, and its schema.
///
/// Implemented by `#[rpc_core::service]` for the generated client (`NotesClient`), so that
/// `connector.connect::<NotesClient>()` needs no name and a type that is not a service does not
/// compile.
///
/// ```
/// use rpc_core::Service;
/// use rpc_core::tarpc::context::Context;
///
/// /// Keeps notes.
/// #[rpc_core::service(name = "notes")]
/// pub trait Notes {
///     /// Adds a note; returns its id.
///     async fn add(title: String, body: String) -> u64;
///     /// Every title, in the order added.
///     async fn titles() -> Vec<String>;
/// }
///
/// /// The server side: `MyNotes.serve()` is what `rpc_server::Server::add` hosts.
/// #[derive(Clone)]
/// struct MyNotes;
///
/// impl Notes for MyNotes {
///     async fn add(self, _: Context, title: String, body: String) -> u64 {
///         (title.len() + body.len()) as u64
///     }
///     async fn titles(self, _: Context) -> Vec<String> {
///         Vec::new()
///     }
/// }
///
/// assert_eq!(NotesClient::NAME, "notes");
/// let schema = NotesClient::schema().expect("the types trace");
/// assert_eq!(schema.method_names(), ["add", "titles"]);
/// assert_eq!(schema.methods[0].doc, "Adds a note; returns its id.");
/// let _request = NotesRequest::Add { title: "a".into(), body: "b".into() };
/// let _server = MyNotes.serve();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an rpc service",
    label = "not a service",
    note = "declare the service with `#[rpc_core::service]` on its trait and use the client type it generates, e.g. `NotesClient` for `trait Notes`"
)]
pub trait Service: 'static {
    /// The name the service is hosted under (sent in the handshake).
    const NAME: &'static str;
    /// The generated request enum (`NotesRequest`).
    type Request: Serialize + DeserializeOwned + tarpc::RequestName + Send + 'static;
    /// The generated response enum (`NotesResponse`).
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// The generated client over the stub `S`, e.g. `NotesClient<S>`.
    type With<S>;
    /// Wraps a stub (a connection) in the generated client.
    fn from_stub<S>(stub: S) -> Self::With<S>
    where
        S: tarpc::client::stub::Stub<Req = Self::Request, Resp = Self::Response>;
    /// The service's schema, traced once per process and cached. An error is a bug in the
    /// service's types (see [`SchemaError`]), the same on every call.
    fn schema() -> Result<ServiceSchema, SchemaError>;
}

/// What `rpc-server` hosts: a server-side implementation of a [`Service`], answering one request
/// at a time (with one response, or a stream of them). Implemented by `#[rpc_core::service]` for `ServeNotes<S>`, which `my_impl.serve()`
/// returns, for any `S: Notes + Clone + Send + Sync + 'static`.
pub trait ServeService: Clone + Send + Sync + 'static {
    /// The service it implements.
    type Service: Service;
    /// Answers `request`: one response, or for a streaming method the stream of them (see
    /// [`crate::streaming`]). The future is `Send`, so a server can run it on any thread.
    fn call(
        self,
        ctx: tarpc::context::Context,
        request: <Self::Service as Service>::Request,
    ) -> impl Future<Output = Answer<<Self::Service as Service>::Response>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_checked_at_the_length_limit() {
        assert!(is_valid_service_name(&"n".repeat(MAX_SERVICE_NAME_LEN - 1)));
        assert!(is_valid_service_name(&"n".repeat(MAX_SERVICE_NAME_LEN)));
        assert!(!is_valid_service_name(
            &"n".repeat(MAX_SERVICE_NAME_LEN + 1)
        ));
    }

    #[test]
    fn service_names_take_letters_digits_and_three_marks() {
        for good in ["kv", "notes_v2", "my-notes", "notes.v2", "A9"] {
            assert!(is_valid_service_name(good), "{good}");
        }
        for bad in ["", "bad name!", "a/b", "ключ", "tab\t", "a:b"] {
            assert!(!is_valid_service_name(bad), "{bad}");
        }
    }
}
