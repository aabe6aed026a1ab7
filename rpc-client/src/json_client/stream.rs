//! A streaming method's answers, read with JSON: what [`JsonClient::watch`] returns.
//!
//! Each answer is a [`JsonResponse`] whose value is the event as
//! [`JsonResponseSeed`](rpc_core::schema::JsonResponseSeed) reads it: `{"Item": item}`,
//! `{"Lagged": {"missed": n}}` or `"End"`. The first two are yielded as they are; `"End"` ends
//! the stream and is not yielded, as a [`Subscription`](rpc_core::Subscription) ends at its
//! `End`. An error is the last thing yielded.
//!
//! [`JsonClient::watch`]: super::JsonClient::watch

use futures::stream::{self, BoxStream, StreamExt};
use rpc_core::schema::JsonResponse;
use rpc_core::streaming::Answers;
use rpc_core::tarpc::client::RpcError;
use serde_json::Value;

use super::{JsonCallError, rpc_failure};

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
            Err(err) => {
                let broke = (state.broke)(&err);
                Err(rpc_failure(err, broke, &state.service, &state.method, true))
            }
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
}
