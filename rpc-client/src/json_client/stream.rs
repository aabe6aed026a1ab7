//! A streaming method's answers, read with JSON: what [`JsonClient::watch`] returns.
//!
//! Each answer is a [`JsonResponse`] whose value is the event as
//! [`JsonResponseSeed`](rpc_core::schema::JsonResponseSeed) reads it: `{"Item": item}`,
//! `{"Lagged": {"missed": n}}` or `"End"`. The first two are yielded as they are; `"End"` ends
//! the stream and is not yielded, as a [`Subscription`](rpc_core::Subscription) ends at its
//! `End`. An error is the last thing yielded.
//!
//! [`JsonClient::watch`]: super::JsonClient::watch

use std::future::Future;
use std::pin::Pin;

use futures::stream::{self, BoxStream, StreamExt};
use rpc_core::StreamStub;
use rpc_core::schema::{JsonRequest, JsonResponse};
use rpc_core::streaming::Answers;
use rpc_core::tarpc::client::RpcError;
use rpc_core::tarpc::context;
use serde_json::Value;

use super::{JsonCallError, JsonChannel};

/// The events of the stream opened as method `index` of `service` (`method` by name), from its
/// `answers`. `broke` tells an error that means the connection broke (the stream ends with
/// [`JsonCallError::Interrupted`], and is not opened again on a new connection: the items sent
/// in between would be lost unseen) from one the server sent (it ends with
/// [`JsonCallError::Rpc`]).
pub(super) fn events(
    answers: Answers<JsonResponse>,
    service: String,
    method: String,
    index: u32,
    broke: impl Fn(&RpcError) -> bool + Send + 'static,
) -> BoxStream<'static, Result<Value, JsonCallError>> {
    let state = Reading {
        answers,
        service,
        method,
        index,
        broke,
    };
    stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let last = match state.answers.next().await? {
            Ok(answer) if answer.method != state.index => Err(JsonCallError::WrongMethod {
                service: state.service,
                method: state.method,
                answered: answer.method,
            }),
            Ok(answer) if answer.value == "End" => return None,
            Ok(answer) => return Some((Ok(answer.value), Some(state))),
            Err(err) if (state.broke)(&err) => Err(JsonCallError::Interrupted {
                service: state.service,
                method: state.method,
                streaming: true,
            }),
            Err(source) => Err(JsonCallError::Rpc {
                service: state.service,
                method: state.method,
                source,
            }),
        };
        // Nothing after an error: dropping the answers tells the connection to forget the stream.
        Some((last, None))
    })
    .boxed()
}

/// What [`events`] reads from, between two events.
struct Reading<F> {
    answers: Answers<JsonResponse>,
    service: String,
    method: String,
    index: u32,
    broke: F,
}

/// What opening a stream on a connection returns. Not `Send`: [`StreamStub::open`]'s future
/// is `Send` only where the connection's type is known (see [`open`]).
pub(super) type Opening<'a> =
    Pin<Box<dyn Future<Output = Result<Answers<JsonResponse>, RpcError>> + 'a>>;

/// Opens `request` on `channel` through [`StreamStub::open`].
///
/// `rpc_client`'s `Channel` gains its `StreamStub` implementation in a change made alongside
/// this one. Until both are in one tree, a build without it still compiles, and refuses streams
/// at run time: the call below picks [`OpenStream::open_json`] when `C: StreamStub` holds, and
/// [`NoStreams::open_json`] (reached through one more `&`) only when it does not. Once
/// `Channel: StreamStub` is in, the caller should call `StreamStub::open(channel, ctx,
/// request)` itself, and this file keep only [`events`]: that future is `Send` (the channel's
/// type is known there), this one cannot be (`open`'s future is `Send` only for a known type,
/// and `C` is generic here).
///
/// The choice is made where the connection's type is known, so `channel` is a `JsonChannel`,
/// not any `C` (in a function generic over `C`, `Probe<C>: OpenStream` could not be shown, and
/// [`NoStreams`] would always be picked).
// The `&` is what makes the choice: needless only when `OpenStream` is picked.
#[allow(clippy::needless_borrow)]
pub(super) fn open(
    channel: &JsonChannel,
    ctx: context::Context,
    request: JsonRequest,
) -> Opening<'_> {
    (&Probe(channel)).open_json(ctx, request)
}

/// A connection, looked at for a [`StreamStub`] implementation (see [`open`]).
struct Probe<'a, C>(&'a C);

/// Chosen when the connection can open streams.
#[allow(dead_code)] // Unused in a build whose channel cannot open streams (see `open`).
trait OpenStream<'a> {
    fn open_json(&self, ctx: context::Context, request: JsonRequest) -> Opening<'a>;
}

impl<'a, C> OpenStream<'a> for Probe<'a, C>
where
    C: StreamStub<Req = JsonRequest, Resp = JsonResponse> + Sync,
{
    fn open_json(&self, ctx: context::Context, request: JsonRequest) -> Opening<'a> {
        let channel = self.0;
        Box::pin(async move { StreamStub::open(channel, ctx, request).await })
    }
}

/// Chosen only when the connection cannot open streams (see [`open`]).
#[allow(dead_code)] // Unused once the channel opens streams (see `open`).
trait NoStreams<'a> {
    fn open_json(&self, _: context::Context, _: JsonRequest) -> Opening<'a> {
        Box::pin(std::future::ready(Err(RpcError::Server(
            rpc_core::tarpc::ServerError::new(
                std::io::ErrorKind::Unsupported,
                "this build of rpc-client cannot open streams".into(),
            ),
        ))))
    }
}

impl<'a, C> NoStreams<'a> for &Probe<'a, C> {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const WATCH: u32 = 4;

    fn answer(value: Value) -> Result<JsonResponse, RpcError> {
        Ok(JsonResponse {
            method: WATCH,
            value,
        })
    }

    /// The events read from `answers`, an error shown as its message.
    async fn read(answers: Vec<Result<JsonResponse, RpcError>>) -> Vec<Result<Value, String>> {
        let answers: Answers<JsonResponse> = Box::pin(stream::iter(answers));
        events(answers, "kv".into(), "watch".into(), WATCH, |err| {
            matches!(err, RpcError::Channel(_) | RpcError::Shutdown)
        })
        .map(|event| event.map_err(|err| err.to_string()))
        .collect()
        .await
    }

    #[tokio::test]
    async fn items_and_lag_notices_until_the_end_which_is_not_yielded() {
        let set = json!({ "Item": { "Set": { "key": "a", "value": "1" } } });
        let lagged = json!({ "Lagged": { "missed": 12 } });
        let events = read(vec![
            answer(set.clone()),
            answer(lagged.clone()),
            answer(json!("End")),
            answer(set.clone()),
        ])
        .await;
        assert_eq!(events, [Ok(set), Ok(lagged)]);
    }

    #[tokio::test]
    async fn a_broken_connection_ends_the_stream_saying_it_is_not_resumed() {
        let set = json!({ "Item": { "Delete": { "key": "a" } } });
        let events = read(vec![
            answer(set.clone()),
            Err(RpcError::Shutdown),
            answer(set.clone()),
        ])
        .await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], Ok(set));
        let err = events[1].as_ref().expect_err("an error");
        assert!(
            err.contains("kv.watch") && err.contains("the stream ended and is not resumed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_error_from_the_server_ends_the_stream() {
        let refused = RpcError::Server(rpc_core::tarpc::ServerError::new(
            std::io::ErrorKind::InvalidInput,
            "no such prefix".into(),
        ));
        let events = read(vec![Err(refused), answer(json!("End"))]).await;
        assert_eq!(events, [Err("call to kv.watch failed".to_owned())]);
    }

    #[tokio::test]
    async fn another_methods_answer_ends_the_stream_with_an_error() {
        let other = Ok(JsonResponse {
            method: 0,
            value: json!("v"),
        });
        let events = read(vec![other, answer(json!("End"))]).await;
        assert_eq!(
            events,
            [Err(
                "the server answered kv.watch with the response of method 0".to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn answers_that_stop_without_an_end_end_the_stream() {
        assert!(read(vec![]).await.is_empty());
    }

    /// A connection that opens every stream with the answers it was made with.
    struct Scripted(std::sync::Mutex<Vec<Result<JsonResponse, RpcError>>>);

    impl rpc_core::tarpc::client::stub::Stub for Scripted {
        type Req = JsonRequest;
        type Resp = JsonResponse;

        async fn call(
            &self,
            _: context::Context,
            _: JsonRequest,
        ) -> Result<JsonResponse, RpcError> {
            Err(RpcError::Shutdown)
        }
    }

    impl StreamStub for Scripted {
        async fn open(
            &self,
            _: context::Context,
            _: JsonRequest,
        ) -> Result<Answers<JsonResponse>, RpcError> {
            let answers = std::mem::take(&mut *self.0.lock().expect("not poisoned"));
            Ok(Box::pin(stream::iter(answers)))
        }
    }

    fn watch_request() -> JsonRequest {
        let schema =
            <rpc_core::services::kv::KvClient as rpc_core::Service>::schema().expect("kv traces");
        schema
            .request_from_json("watch", &json!({ "prefix": "" }))
            .expect("builds")
    }

    // The two tests below pick as `open` does, for a connection type known where they call.

    #[tokio::test]
    #[allow(clippy::needless_borrow)] // As in `open`.
    async fn a_connection_that_can_open_streams_is_opened_through_stream_stub() {
        let lagged = json!({ "Lagged": { "missed": 1 } });
        let channel = Scripted(std::sync::Mutex::new(vec![answer(lagged.clone())]));
        let answers = (&Probe(&channel))
            .open_json(context::current(), watch_request())
            .await
            .expect("opens");
        let answers: Vec<_> = answers.collect().await;
        assert!(matches!(&answers[..], [Ok(a)] if a.value == lagged));
    }

    #[tokio::test]
    async fn a_connection_that_cannot_open_streams_is_refused_at_run_time() {
        /// Any type without a `StreamStub` implementation.
        struct NotAStub;
        let opening = (&Probe(&NotAStub)).open_json(context::current(), watch_request());
        let Err(RpcError::Server(err)) = opening.await else {
            panic!("refused");
        };
        assert_eq!(err.kind, std::io::ErrorKind::Unsupported);
    }
}
