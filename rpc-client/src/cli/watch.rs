//! `watch SERVICE.METHOD [JSON|-]`: a streaming method's events, printed one JSON object a line
//! as each arrives, until the stream ends, an error, or Ctrl-C.

use std::io::{self, Write};

use anyhow::Context as _;
use futures::{Stream, StreamExt};
use rpc_client::{Connector, JsonCallError, JsonClient};
use rpc_core::untrusted::escape_json;
use serde_json::Value;

use super::{Failure, Settings, method_and_args};

/// What `watch --help` says after the options: the line format, and why it is so.
pub const WATCH_HELP: &str = r#"Output: one line per event, as it arrives, each the event in its wire JSON shape:
  {"Item":{"Set":{"key":"a","value":"1"}}}   an item
  {"Lagged":{"missed":12}}                   the server skipped 12 items this client was too slow to take
Every item is wrapped in {"Item": ...}, so none can be mistaken for a lag notice, whatever the items' type; `jq -c 'select(has("Item")).Item'` keeps only the items. Each line is flushed as it is written; --json does not apply. Text from the server is printed as JSON, its control characters escaped.

--timeout-ms bounds connecting and opening the stream, not how long it lasts. The stream does not survive a server restart: it ends with an error (exit 1); run watch again to go on (what was sent in between is missed). Ctrl-C stops it (exit 130) and tells the server."#;

/// `watch SERVICE.METHOD [JSON|-]`: prints each event of the stream as it arrives, until the
/// stream ends (`Ok`), fails (the error's code), or Ctrl-C ([`Failure::interrupted`]: 130, and
/// nothing printed). Whichever comes first drops the stream, which tells the server to stop.
pub fn watch(settings: &Settings, target: &str, args: &str) -> Result<(), Failure> {
    let (service, method, args) = method_and_args(settings, target, args, "kv.watch")?;
    settings.run(async |connector| {
        tokio::select! {
            biased;
            () = ctrl_c() => Err(Failure::interrupted()),
            outcome = follow(settings, &connector, service, method, &args) => outcome,
        }
    })
}

/// Resolves at the first Ctrl-C (SIGINT). From its first poll the signal no longer kills the
/// process, so that the stream is dropped (and the server told) before it exits. If the handler
/// cannot be installed, never: Ctrl-C then kills the process, which closes the connection.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Connects, opens the stream and prints its events to stdout.
async fn follow(
    settings: &Settings,
    connector: &Connector,
    service: &str,
    method: &str,
    args: &Value,
) -> Result<(), Failure> {
    let client = JsonClient::connect(connector, service).await?;
    let events = client.watch(settings.context(), method, args).await?;
    print_events(events, io::stdout()).await
}

/// Writes each event to `out` on a line of its own, flushed, until the events end (`Ok`), one
/// is an error (its [`Failure`]), or `out` is closed (`Ok`: whoever read it, `head` say, has
/// all it wanted, as ripgrep treats a closed pipe). While a write blocks, no event is taken,
/// so a slow reader holds the server back through the stream's credit instead of filling
/// memory here.
async fn print_events(
    mut events: impl Stream<Item = Result<Value, JsonCallError>> + Unpin,
    mut out: impl Write,
) -> Result<(), Failure> {
    while let Some(event) = events.next().await {
        match print_event(&mut out, &event?) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => {
                return Err(Failure::call(
                    anyhow::Error::new(err).context("cannot write the event to stdout"),
                ));
            }
        }
    }
    Ok(())
}

/// One event as one line of JSON: serde_json escapes C0 controls (a newline in an item cannot
/// split its line), [`escape_json`] the rest of what could drive a terminal.
fn print_event(out: &mut impl Write, event: &Value) -> io::Result<()> {
    let line = serde_json::to_string(event).context("an event is JSON");
    let line = line.map_err(io::Error::other)?;
    writeln!(out, "{}", escape_json(&line))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What `print_events` writes for `events`, and its exit code if it failed.
    async fn printed(events: Vec<Result<Value, JsonCallError>>) -> (String, Option<u8>) {
        let mut out = Vec::new();
        let outcome = print_events(futures::stream::iter(events), &mut out).await;
        let text = String::from_utf8(out).expect("UTF-8");
        (text, outcome.err().map(|failure| failure.code))
    }

    #[tokio::test]
    async fn each_event_is_one_line_in_its_wire_shape() {
        let (text, failed) = printed(vec![
            Ok(json!({ "Item": { "Set": { "key": "a", "value": "1" } } })),
            Ok(json!({ "Lagged": { "missed": 12 } })),
        ])
        .await;
        assert_eq!(failed, None);
        assert_eq!(
            text,
            "{\"Item\":{\"Set\":{\"key\":\"a\",\"value\":\"1\"}}}\n{\"Lagged\":{\"missed\":12}}\n"
        );
    }

    #[tokio::test]
    async fn text_from_the_server_cannot_split_a_line_or_drive_the_terminal() {
        let key = "a\n{\"Lagged\":{\"missed\":1}}\u{1b}[2J\u{9b}\u{202e}";
        let event = json!({ "Item": { "Delete": { "key": key } } });
        let (text, _) = printed(vec![Ok(event.clone())]).await;
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.trim_end().chars().any(|c| c.is_control()), "{text:?}");
        assert!(!text.contains('\u{202e}'), "{text:?}");
        let back: Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, event);
    }

    #[tokio::test]
    async fn an_error_ends_the_output_with_its_exit_code() {
        let interrupted = JsonCallError::Interrupted {
            service: "kv".into(),
            method: "watch".into(),
            streaming: true,
        };
        let (text, failed) = printed(vec![
            Ok(json!({ "Lagged": { "missed": 1 } })),
            Err(interrupted),
            Ok(json!({ "Lagged": { "missed": 2 } })),
        ])
        .await;
        assert_eq!(text, "{\"Lagged\":{\"missed\":1}}\n");
        assert_eq!(failed, Some(1));
    }

    /// A reader that went away: every write fails as a closed pipe does.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_closed_stdout_ends_the_watch_quietly() {
        let events = futures::stream::iter(vec![Ok(json!({ "Lagged": { "missed": 1 } }))]);
        assert!(print_events(events, ClosedPipe).await.is_ok());
    }

    #[test]
    fn ctrl_c_exits_130_and_prints_nothing() {
        let failure = Failure::interrupted();
        assert_eq!(failure.code, 130);
        assert!(failure.error.is_none());
    }
}
