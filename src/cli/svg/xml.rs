//! Text for XML: every character that could end a string or start markup
//! escaped, and characters XML 1.0 forbids even escaped (control
//! characters other than tab, newline and carriage return; U+FFFE, U+FFFF)
//! shown as a visible `\u{..}` instead, so any name makes a well-formed
//! document.

/// `s` escaped for XML text and for double- or single-quoted attribute
/// values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Whitespace other than a space would be normalised away in
            // attributes and collapses in SVG text: show it.
            '\t' | '\n' | '\r' => out.push_str(&c.escape_default().to_string()),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_forbidden_characters_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c\"'d'"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(escape("x\u{1b}[31m\ty"), "x\\u{1b}[31m\\ty");
        assert_eq!(escape("\u{fffe}é"), "\\u{fffe}é");
    }
}
