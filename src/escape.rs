//! The one escaping function for displayed names and strings from outside
//! (machine-file names, sysfs driver names and paths): control characters
//! (C0, DEL, C1), Unicode line separators and bidi controls are never
//! printed raw, so a newline in a device name cannot forge a report line
//! and a right-to-left override cannot reorder one. JSON needs none of it
//! (serde escapes strings); DOT adds its own quoting ([`dot_quoted`]); the
//! `matrix` grid needs one space-free word per name ([`token`]).
//!
//! Escapes are `\n`, `\r`, `\t` and `\u{XXXX}`; a backslash is kept as it
//! is, so escaping is idempotent (text escaped twice reads the same) and can
//! be applied at every boundary without doubling. The exact name is in the
//! JSON output.

use std::borrow::Cow;

/// True for a character that must not be printed raw.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every control, line-separator and bidi character escaped;
/// borrowed when there is none.
pub fn display(s: &str) -> Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if must_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` escaped by [`display`], then for the inside of a Graphviz string:
/// `\` and `"` backslashed, so the label shows the escape as it is.
pub fn dot_escaped(s: &str) -> String {
    let mut out = String::new();
    for c in display(s).chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// [`dot_escaped`] in double quotes: a Graphviz ID or label.
pub fn dot_quoted(s: &str) -> String {
    format!("\"{}\"", dot_escaped(s))
}

/// A name as one grid token (the `matrix` headers), stricter than
/// [`display`] because a column must stay one space-free word: printable
/// ASCII stays, `\` doubles, anything else (spaces, control characters, non-ASCII) is
/// `\u{hex}`, so a name cannot break the grid or the terminal.
pub fn token(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".to_string();
    }
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            c if c.is_ascii_graphic() => o.push(c),
            c => o.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keeps_plain_names_and_escapes_the_rest() {
        assert_eq!(token("nvme0"), "nvme0");
        assert_eq!(token("gpu0-audio"), "gpu0-audio");
        assert_eq!(token("a b"), "a\\u{20}b");
        assert_eq!(token("x\u{1b}[31m"), "x\\u{1b}[31m");
        assert_eq!(token("back\\slash"), "back\\\\slash");
        assert_eq!(token("\u{e9}"), "\\u{e9}");
        assert_eq!(token(""), "\"\"");
    }

    #[test]
    fn controls_and_bidi_are_escaped_idempotently() {
        let s = "nvme0\nmachine evil\r\t\u{1b}[31m\u{202e}gpu\u{2028}x\u{85}";
        let e = display(s);
        assert_eq!(
            e,
            "nvme0\\nmachine evil\\r\\t\\u{001b}[31m\\u{202e}gpu\\u{2028}x\\u{0085}"
        );
        assert_eq!(display(&e), e, "idempotent");
        assert!(matches!(display("nvme0 é"), Cow::Borrowed(_)));
        assert_eq!(dot_quoted("a\"b\nc\\d"), "\"a\\\"b\\\\nc\\\\d\"");
    }
}
