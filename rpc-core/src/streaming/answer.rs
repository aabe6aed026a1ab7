//! The server's side of a stream: [`Streaming`], what a handler returns, and [`Answer`], what a
//! served call yields (one response, or a stream of them).

use std::fmt;

use futures::stream::{BoxStream, Stream, StreamExt};
use tarpc::ServerError;
use tokio::sync::broadcast;

use super::StreamEvent;

/// What a streaming method's handler returns: the items it will send, produced only as fast as
/// the client takes them (the server polls the stream only while the client's credit lasts).
///
/// ```
/// use rpc_core::{StreamEvent, Streaming};
/// use rpc_core::tarpc::ServerError;
///
/// // Items from any `Stream` (polled only while the client has granted room for more).
/// let _numbers: Streaming<u64> = Streaming::new(futures::stream::iter(0..10));
/// // A broadcast's subscribers never hold up its sender: a slow one gets `Lagged`.
/// let (sender, receiver) = tokio::sync::broadcast::channel::<String>(1024);
/// let _changes = Streaming::broadcast(receiver);
/// # drop(sender);
/// // Turned away: the client's subscription yields this error, then ends.
/// let _refused: Streaming<u64> = Streaming::failed(ServerError::new(
///     std::io::ErrorKind::InvalidInput,
///     "no such job".into(),
/// ));
/// ```
pub struct Streaming<T> {
    events: BoxStream<'static, Result<StreamEvent<T>, ServerError>>,
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Streaming<T> {
    /// A stream of `items`; it ends when they do.
    pub fn new(items: impl Stream<Item = T> + Send + 'static) -> Self {
        Streaming::events(items.map(StreamEvent::Item))
    }

    /// A stream of `events`, `Lagged` ones included; it ends when they do, or at an `End`.
    pub fn events(events: impl Stream<Item = StreamEvent<T>> + Send + 'static) -> Self {
        Streaming {
            events: events.map(Ok).boxed(),
        }
    }

    /// A stream of `results`: items until the first error, which ends it (the client's
    /// subscription yields the error, then ends).
    pub fn try_new(results: impl Stream<Item = Result<T, ServerError>> + Send + 'static) -> Self {
        Streaming {
            events: results.map(|result| result.map(StreamEvent::Item)).boxed(),
        }
    }

    /// A stream that fails at once with `error`: how a handler refuses to open one.
    pub fn failed(error: ServerError) -> Self {
        Streaming {
            events: futures::stream::once(async move { Err(error) }).boxed(),
        }
    }

    /// The values sent on a broadcast channel from now on. The sender never waits for this
    /// subscriber: when it falls more than the channel's capacity behind, the items it missed
    /// are dropped and it gets one `Lagged { missed }` in their place. Ends when every sender
    /// is gone.
    pub fn broadcast(receiver: broadcast::Receiver<T>) -> Self
    where
        T: Clone,
    {
        Streaming::broadcast_where(receiver, |_| true)
    }

    /// [`Streaming::broadcast`] of the values `keep` accepts. `Lagged { missed }` counts every
    /// value the channel dropped for this subscriber, whether `keep` would have kept it or not.
    pub fn broadcast_where(
        receiver: broadcast::Receiver<T>,
        keep: impl FnMut(&T) -> bool + Send + 'static,
    ) -> Self
    where
        T: Clone,
    {
        Streaming::events(futures::stream::unfold(
            (receiver, keep),
            |(mut receiver, mut keep)| async move {
                let event = loop {
                    match receiver.recv().await {
                        Ok(item) if keep(&item) => break StreamEvent::Item(item),
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            break StreamEvent::Lagged { missed };
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                };
                Some((event, (receiver, keep)))
            },
        ))
    }

    /// This stream as a served call's answer, each event wrapped in the method's response
    /// variant by `wrap`: what `#[rpc_core::service]`'s generated code returns for it.
    pub fn into_answer<Resp: Send + 'static>(
        self,
        wrap: fn(StreamEvent<T>) -> Resp,
    ) -> Answer<Resp> {
        let mut ended = false;
        let events = self
            .events
            .take_while(move |event| {
                // Nothing after an `End` the handler sent itself: the server sends its own.
                let go_on = !ended && !matches!(event, Ok(StreamEvent::End));
                ended |= !go_on;
                futures::future::ready(go_on)
            })
            .map(move |event| event.map(wrap))
            .boxed();
        Answer::Stream(StreamAnswer {
            events,
            end: wrap(StreamEvent::End),
        })
    }
}

/// A served call's answer: one response, or a stream of them.
pub enum Answer<Resp> {
    /// An ordinary call's response (or its error).
    One(Result<Resp, ServerError>),
    /// A streaming call's answers.
    Stream(StreamAnswer<Resp>),
}

impl<Resp> fmt::Debug for Answer<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::One(_) => f.write_str("Answer::One"),
            Answer::Stream(_) => f.write_str("Answer::Stream"),
        }
    }
}

impl<Resp> Answer<Resp> {
    /// The single response: tarpc's own server, which knows no streams, gets an error for a
    /// streaming method.
    pub fn into_single(self) -> Result<Resp, ServerError> {
        match self {
            Answer::One(result) => result,
            Answer::Stream(_) => Err(ServerError::new(
                std::io::ErrorKind::Unsupported,
                "this method streams its answers, which only rpc-server can serve".into(),
            )),
        }
    }
}

/// A streaming call's answers, each already in the method's response variant.
pub struct StreamAnswer<Resp> {
    /// The items (and `Lagged` notices); an error ends the stream and is sent as its last answer.
    pub events: BoxStream<'static, Result<Resp, ServerError>>,
    /// The answer sent after the last item: the method's `End`.
    pub end: Resp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Wrapped(StreamEvent<u8>);

    async fn answers(streaming: Streaming<u8>) -> (Vec<Result<Wrapped, String>>, Wrapped) {
        let Answer::Stream(answer) = streaming.into_answer(Wrapped) else {
            panic!("a stream");
        };
        let events = answer
            .events
            .map(|event| event.map_err(|err| err.detail))
            .collect()
            .await;
        (events, answer.end)
    }

    #[tokio::test]
    async fn nothing_follows_an_end_the_handler_sent() {
        let streaming = Streaming::events(futures::stream::iter([
            StreamEvent::Item(1),
            StreamEvent::End,
            StreamEvent::Item(2),
        ]));
        let (events, end) = answers(streaming).await;
        assert_eq!(events, [Ok(Wrapped(StreamEvent::Item(1)))]);
        assert_eq!(end, Wrapped(StreamEvent::End));
    }

    #[tokio::test]
    async fn a_broadcast_subscriber_that_falls_behind_is_told_how_far() {
        let (sender, receiver) = broadcast::channel(4);
        let streaming = Streaming::broadcast(receiver);
        for i in 0..10 {
            sender.send(i).expect("a subscriber");
        }
        drop(sender);
        let (events, _) = answers(streaming).await;
        assert_eq!(
            events,
            [
                Ok(Wrapped(StreamEvent::Lagged { missed: 6 })),
                Ok(Wrapped(StreamEvent::Item(6))),
                Ok(Wrapped(StreamEvent::Item(7))),
                Ok(Wrapped(StreamEvent::Item(8))),
                Ok(Wrapped(StreamEvent::Item(9))),
            ]
        );
    }

    #[test]
    fn tarpcs_own_server_gets_an_error_for_a_stream() {
        let answer = Streaming::new(futures::stream::iter([1u8])).into_answer(Wrapped);
        let err = answer.into_single().expect_err("tarpc cannot stream");
        assert_eq!(err.kind, std::io::ErrorKind::Unsupported);
    }
}
