//! [`Untrusted`]: text that came from the other side of a connection, displayed so that it can
//! neither drive a terminal nor forge a log line.
//!
//! A peer controls every string it sends: a service name, a refusal's reason, a server error's
//! detail. Printed raw, an ESC starts a terminal escape sequence (clear the screen, set the
//! window title), a CR or LF starts what looks like a new log line, and a bidi override makes
//! the text read other than it is. Wherever such text is printed or logged outside JSON, it goes
//! through [`Untrusted`], which writes each of those characters as a `\u{1b}`-style escape and
//! everything else unchanged.
//!
//! ```
//! use rpc_core::untrusted::Untrusted;
//! assert_eq!(Untrusted("kv\nFORGED").to_string(), r"kv\u{a}FORGED");
//! assert_eq!(Untrusted("\x1b[2J").to_string(), r"\u{1b}[2J");
//! assert_eq!(Untrusted("grüße").to_string(), "grüße");
//! ```
//!
//! A log sink can also be wrapped in an [`EscapingWriter`], which escapes whole records, as a
//! backstop for peer text that reaches a log line by a path nobody escaped.
//!
//! A backslash is kept as it is, so escaping twice changes nothing: text escaped at its source
//! (a refusal's `Display`) can be escaped again where a whole error line is printed.

use std::fmt::{self, Write as _};

/// Peer-supplied text; its `Display` escapes every character [`needs_escape`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        // Copy runs of harmless characters whole; escape the others one by one.
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            f.write_str(&rest[..at])?;
            write!(f, "\\u{{{:x}}}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Whether `c` must not reach a terminal or a log raw: a C0 control (tab and newline included),
/// DEL, a C1 control, a Unicode line or paragraph separator, or a bidirectional formatting
/// character (the embeddings, overrides and isolates, and the marks).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `text` holds any character [`needs_escape`] names.
pub fn has_unsafe_chars(text: &str) -> bool {
    text.chars().any(needs_escape)
}

/// JSON text (as serde_json writes it) with the characters [`needs_escape`] names that serde_json
/// leaves raw, DEL, C1 controls, separators and bidi characters, written as `\uXXXX` escapes.
///
/// serde_json escapes C0 controls inside strings, so a C0 control left in its output is the
/// layout of pretty-printed JSON and is kept. The others are all in the Basic Multilingual Plane,
/// so one escape suffices, and occur only inside strings (JSON's own syntax is ASCII), so the
/// JSON means the same.
pub fn escape_json(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c >= ' ' && needs_escape(c) {
            let _ = write!(escaped, "\\u{:04x}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// An [`io::Write`](std::io::Write) for a log sink that escapes, in each record it is given,
/// every character [`needs_escape`] names except the newline that ends the record.
///
/// A last line of defence under the per-field escaping: peer text that reaches a log line by a
/// path nobody escaped (an error chain quoting a decoded string, say) still cannot start a forged
/// line or drive a terminal. A log formatter hands over each record in one write, so each is
/// written on in one write too and lines from several threads do not interleave. With `keep_sgr`
/// (for a formatter that colours its output on a terminal) colour sequences, `ESC [ digits and
/// semicolons m`, pass; any other ESC is escaped.
#[derive(Debug)]
pub struct EscapingWriter<W> {
    inner: W,
    keep_sgr: bool,
}

impl<W> EscapingWriter<W> {
    /// Escapes what is written before it reaches `inner`; `keep_sgr` lets colour sequences pass.
    pub fn new(inner: W, keep_sgr: bool) -> Self {
        EscapingWriter { inner, keep_sgr }
    }
}

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (record, end) = match buf.strip_suffix(b"\n") {
            Some(record) => (record, "\n"),
            None => (buf, ""),
        };
        let record = String::from_utf8_lossy(record);
        let mut out = String::with_capacity(record.len() + 1);
        let mut rest: &str = &record;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            out.push_str(&rest[..at]);
            let from = &rest[at..];
            let sgr = if self.keep_sgr { sgr_len(from) } else { 0 };
            if sgr > 0 {
                out.push_str(&from[..sgr]);
                rest = &from[sgr..];
            } else {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                rest = &from[c.len_utf8()..];
            }
        }
        out.push_str(rest);
        out.push_str(end);
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The length of the colour sequence (`ESC [ digits and semicolons m`) `text` starts with, or 0.
fn sgr_len(text: &str) -> usize {
    let Some(params) = text.strip_prefix("\x1b[") else {
        return 0;
    };
    let digits = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    match params.as_bytes().get(digits) {
        Some(b'm') => 2 + digits + 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_writer(record: &str, keep_sgr: bool) -> String {
        use std::io::Write as _;
        let mut writer = EscapingWriter::new(Vec::new(), keep_sgr);
        writer.write_all(record.as_bytes()).expect("writes");
        String::from_utf8(writer.inner).expect("utf-8")
    }

    #[test]
    fn a_log_record_keeps_its_final_newline_and_nothing_else_raw() {
        assert_eq!(
            through_writer("WARN refused: kv\nFORGED\r\x1b[2J\n", false),
            "WARN refused: kv\\u{a}FORGED\\u{d}\\u{1b}[2J\n"
        );
        assert_eq!(through_writer("no newline", false), "no newline");
    }

    #[test]
    fn colour_sequences_pass_only_when_asked_for() {
        let coloured = "\x1b[33mWARN\x1b[0m kv\x1b]0;title\x07 \x1b[2J\n";
        assert_eq!(
            through_writer(coloured, true),
            "\x1b[33mWARN\x1b[0m kv\\u{1b}]0;title\\u{7} \\u{1b}[2J\n"
        );
        assert_eq!(
            through_writer(coloured, false),
            "\\u{1b}[33mWARN\\u{1b}[0m kv\\u{1b}]0;title\\u{7} \\u{1b}[2J\n"
        );
    }

    fn shown(text: &str) -> String {
        Untrusted(text).to_string()
    }

    #[test]
    fn every_c0_control_and_del_is_escaped() {
        for byte in (0u8..0x20).chain([0x7f]) {
            let c = char::from(byte);
            assert_eq!(shown(&format!("a{c}b")), format!("a\\u{{{byte:x}}}b"));
        }
        assert_eq!(shown("\x1b[2J"), r"\u{1b}[2J");
        assert_eq!(shown("a\r\nb\tc\x07"), r"a\u{d}\u{a}b\u{9}c\u{7}");
    }

    #[test]
    fn every_c1_control_is_escaped() {
        for code in 0x80u32..0xa0 {
            let c = char::from_u32(code).expect("a C1 control is a char");
            assert_eq!(shown(&c.to_string()), format!("\\u{{{code:x}}}"));
        }
    }

    #[test]
    fn bidi_characters_and_line_separators_are_escaped() {
        for code in [
            0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066,
            0x2067, 0x2068, 0x2069,
        ] {
            let c = char::from_u32(code).expect("a char");
            assert_eq!(shown(&format!("x{c}y")), format!("x\\u{{{code:x}}}y"));
        }
    }

    #[test]
    fn ordinary_text_and_unicode_are_kept() {
        for text in [
            "",
            "kv",
            "echo.delay",
            "grüße, 日本語, emoji 🦀, Ελληνικά, עברית",
            r"a\b",
            "nbsp\u{a0}here",
        ] {
            assert_eq!(shown(text), text);
            assert!(!has_unsafe_chars(text), "{text:?}");
        }
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = shown("\x1b]0;pwned\x07\n");
        assert_eq!(shown(&once), once);
        assert!(!has_unsafe_chars(&once));
    }

    #[test]
    fn json_escapes_stay_json_and_mean_the_same() {
        let value = serde_json::json!({ "k": "a\u{9b}b\u{202e}c\u{7f}\u{1b}\n" });
        let text = escape_json(&serde_json::to_string_pretty(&value).expect("serializes"));
        assert!(
            !text.contains(['\u{9b}', '\u{202e}', '\u{7f}', '\u{1b}']),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, value);
    }
}
