//! [`error_chain`]: an error and its causes on one line.

/// An error and its causes on one line, `outer: inner: innermost`, for logs and CLI messages.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
