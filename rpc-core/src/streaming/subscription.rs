//! The client's side of a stream: [`StreamStub`], what a connection must offer to open one, and
//! [`Subscription`], what a generated client's streaming method returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::{BoxStream, StreamExt};
use tarpc::ServerError;
use tarpc::client::RpcError;
use tarpc::client::stub::Stub;
use tarpc::context;

use super::StreamEvent;

/// A stream's answers as a connection delivers them, each the method's response variant; it
/// ends after the last (the `End` answer, or an error).
pub type Answers<Resp> = Pin<Box<dyn Stream<Item = Result<Resp, RpcError>> + Send>>;

/// A connection that can open streams: `rpc_client`'s `Channel` and `ReconnectingChannel`. The
/// generated clients' streaming methods need it.
pub trait StreamStub: Stub {
    /// Sends `request` (a streaming method's) and returns its answers as they arrive, up to and
    /// including the one `is_last` recognises (the method's `End`) or an error. Credit is
    /// granted to the server as the answers are taken; dropping the stream before its last
    /// answer cancels it. The context's deadline bounds the sending of the request, not the
    /// stream.
    fn open(
        &self,
        ctx: context::Context,
        request: Self::Req,
        is_last: fn(&Self::Resp) -> bool,
    ) -> impl Future<Output = Result<Answers<Self::Resp>, RpcError>>;
}

/// A streaming method's items, as the client receives them: a `Stream` of [`StreamEvent`]s
/// (`Item` or `Lagged`), ending (`None`) after the server's last item. An error (the server
/// refused or failed the stream, the server is shutting down, the connection was lost) is the
/// last thing it yields. Dropping it tells the server to stop producing.
///
/// `rpc_client`'s README shows one in use (`kv.watch`).
pub struct Subscription<T> {
    events: Option<BoxStream<'static, Result<StreamEvent<T>, RpcError>>>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("ended", &self.events.is_none())
            .finish()
    }
}

impl<T: Send + 'static> Subscription<T> {
    /// The subscription reading `answers`, each turned into its event by `event` (`None` for
    /// another method's answer, which ends it with an error naming `method`).
    pub fn new<Resp: Send + 'static>(
        answers: Answers<Resp>,
        event: fn(Resp) -> Option<StreamEvent<T>>,
        method: &'static str,
    ) -> Self {
        let events = answers
            .map(move |answer| {
                answer.and_then(|resp| {
                    event(resp).ok_or_else(|| {
                        RpcError::Server(ServerError::new(
                            std::io::ErrorKind::InvalidData,
                            format!("the server answered {method} with another method's response"),
                        ))
                    })
                })
            })
            .boxed();
        Subscription {
            events: Some(events),
        }
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<StreamEvent<T>, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(events) = self.events.as_mut() else {
            return Poll::Ready(None);
        };
        let next = std::task::ready!(events.poll_next_unpin(cx));
        let end = !matches!(
            next,
            Some(Ok(StreamEvent::Item(_) | StreamEvent::Lagged { .. }))
        );
        if end {
            // Dropping the answers now lets the connection forget the stream at once.
            self.events = None;
        }
        Poll::Ready(match next {
            Some(Ok(StreamEvent::End)) | None => None,
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Resp {
        Numbers(StreamEvent<u8>),
        Other,
    }

    fn numbers(resp: Resp) -> Option<StreamEvent<u8>> {
        match resp {
            Resp::Numbers(event) => Some(event),
            Resp::Other => None,
        }
    }

    fn subscription(answers: Vec<Result<Resp, RpcError>>) -> Subscription<u8> {
        Subscription::new(futures::stream::iter(answers).boxed(), numbers, "numbers")
    }

    #[tokio::test]
    async fn items_until_the_end_and_nothing_after_it() {
        let events: Vec<_> = subscription(vec![
            Ok(Resp::Numbers(StreamEvent::Item(1))),
            Ok(Resp::Numbers(StreamEvent::Lagged { missed: 3 })),
            Ok(Resp::Numbers(StreamEvent::End)),
            Ok(Resp::Numbers(StreamEvent::Item(2))),
        ])
        .map(|event| event.expect("no error"))
        .collect()
        .await;
        assert_eq!(
            events,
            [StreamEvent::Item(1), StreamEvent::Lagged { missed: 3 }]
        );
    }

    #[tokio::test]
    async fn an_error_is_the_last_thing_yielded() {
        let mut events = subscription(vec![
            Ok(Resp::Numbers(StreamEvent::Item(1))),
            Err(RpcError::Shutdown),
            Ok(Resp::Numbers(StreamEvent::Item(2))),
        ]);
        assert!(matches!(
            events.next().await,
            Some(Ok(StreamEvent::Item(1)))
        ));
        assert!(matches!(events.next().await, Some(Err(RpcError::Shutdown))));
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn another_methods_answer_ends_it_with_an_error() {
        let mut events = subscription(vec![
            Ok(Resp::Other),
            Ok(Resp::Numbers(StreamEvent::Item(1))),
        ]);
        let Some(Err(RpcError::Server(err))) = events.next().await else {
            panic!("an error");
        };
        assert!(err.detail.contains("numbers"), "{}", err.detail);
        assert!(events.next().await.is_none());
    }
}
