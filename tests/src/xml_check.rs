//! A small XML well-formedness checker for the CLI's SVG output (no XML
//! crate is a dependency): one root element, tags nest and match, attribute
//! values quoted with unique names, every `&` a known entity or character
//! reference, no raw `<` in text or values, no character XML 1.0 forbids.
//! Stricter than XML in one point: a raw `>` in text is refused too (the
//! writer escapes it).

/// Why `doc` is not well-formed, with the byte offset.
pub fn check(doc: &str) -> Result<(), String> {
    let b = doc.as_bytes();
    let mut i = 0usize;
    if doc.starts_with("<?xml") {
        i = doc.find("?>").ok_or("unterminated XML declaration")? + 2;
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    while i < b.len() {
        if b[i] == b'<' {
            if doc[i..].starts_with("<!--") {
                i += doc[i..]
                    .find("-->")
                    .ok_or(format!("{i}: unterminated comment"))?
                    + 3;
                continue;
            }
            if doc[i..].starts_with("</") {
                let end = doc[i..]
                    .find('>')
                    .ok_or(format!("{i}: unterminated end tag"))?
                    + i;
                let name = doc[i + 2..end].trim_end();
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("{i}: </{name}> closes {other:?}")),
                }
                i = end + 1;
                continue;
            }
            i += 1;
            let name = take_name(doc, &mut i).ok_or(format!("{i}: bad tag name"))?;
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(format!("{i}: a second root element <{name}>"));
                }
            }
            let mut attrs: Vec<&str> = Vec::new();
            loop {
                let ws = skip_ws(doc, &mut i);
                if doc[i..].starts_with("/>") {
                    i += 2;
                    break;
                }
                if doc[i..].starts_with('>') {
                    i += 1;
                    stack.push(name);
                    break;
                }
                if !ws {
                    return Err(format!("{i}: no blank before an attribute of <{name}>"));
                }
                let an =
                    take_name(doc, &mut i).ok_or(format!("{i}: bad attribute name in <{name}>"))?;
                if attrs.contains(&an) {
                    return Err(format!("{i}: attribute {an} twice in <{name}>"));
                }
                attrs.push(an);
                skip_ws(doc, &mut i);
                if b.get(i) != Some(&b'=') {
                    return Err(format!("{i}: attribute {an} without ="));
                }
                i += 1;
                skip_ws(doc, &mut i);
                let q = *b.get(i).ok_or("end of document in a tag")?;
                if q != b'"' && q != b'\'' {
                    return Err(format!("{i}: unquoted value of {an}"));
                }
                let end = doc[i + 1..]
                    .find(q as char)
                    .ok_or(format!("{i}: unterminated value of {an}"))?
                    + i
                    + 1;
                text(&doc[i + 1..end], i + 1, false)?;
                i = end + 1;
            }
        } else {
            let end = doc[i..].find('<').map_or(b.len(), |p| p + i);
            let t = &doc[i..end];
            if stack.is_empty() && !t.trim().is_empty() {
                return Err(format!("{i}: text outside the root element"));
            }
            text(t, i, true)?;
            i = end;
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{open}> is never closed"));
    }
    if roots != 1 {
        return Err("no root element".into());
    }
    Ok(())
}

fn take_name<'a>(doc: &'a str, i: &mut usize) -> Option<&'a str> {
    let start = *i;
    for (k, c) in doc[start..].char_indices() {
        let ok = c.is_alphanumeric() || c == '_' || c == ':' || (k > 0 && (c == '-' || c == '.'));
        if !ok {
            *i = start + k;
            return (k > 0).then(|| &doc[start..start + k]);
        }
    }
    None
}

fn skip_ws(doc: &str, i: &mut usize) -> bool {
    let rest = &doc[*i..];
    let t = rest.trim_start_matches([' ', '\t', '\n', '\r']);
    *i += rest.len() - t.len();
    rest.len() != t.len()
}

/// Character data: references well-formed, no `<`, no forbidden character.
fn text(t: &str, at: usize, content: bool) -> Result<(), String> {
    for (k, c) in t.char_indices() {
        let forbidden =
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}';
        if forbidden || c == '<' || (content && c == '>') {
            return Err(format!("{}: character {c:?} not allowed here", at + k));
        }
        if c == '&' {
            let end = t[k..].find(';').ok_or(format!("{}: & without ;", at + k))?;
            let r = &t[k + 1..k + end];
            let ok = matches!(r, "amp" | "lt" | "gt" | "quot" | "apos")
                || r.strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || r.strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(format!("{}: unknown reference &{r};", at + k));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_well_formed_and_refuses_the_usual_mistakes() {
        assert_eq!(
            check("<?xml version=\"1.0\"?>\n<a x=\"1\" y='&amp;'><b/>t &lt; &#60;<!-- c --></a>\n"),
            Ok(())
        );
        for bad in [
            "<a><b></a></b>",
            "<a>&</a>",
            "<a>x & y;</a>",
            "<a x=\"<\"/>",
            "<a x=1/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a>\u{1b}</a>",
            "<a/><b/>",
            "<a>",
            "text<a/>",
            "<a>1 > 0</a>",
        ] {
            assert!(check(bad).is_err(), "{bad:?} passed");
        }
    }
}
