//! The one number grammar of machine files and the `unidma` command line,
//! strict so that a typo is an error rather than another number:
//!
//! ```text
//! number := digits suffix?
//! digits := "0x" hex ( "_"? hex )*  |  "0X" ...  |  dec ( "_"? dec )*
//! suffix := "K" | "M" | "G" | "T" | "KiB" | "MiB" | "GiB" | "TiB"   (powers of 1024)
//! ```
//!
//! No sign, no spaces, `_` only between two digits, the suffix right after
//! the digits; a value that does not fit in 64 bits is refused. TOML
//! integers in a machine file are numbers too (non-negative).

use core::fmt;

/// Why a string is not a number; `Display` names the string and the rule.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NumError {
    /// The string as given.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a number: {} (decimal or 0x hex, `_` only between digits, optional suffix K, M, G, T or KiB, MiB, GiB, TiB)",
            self.text, self.why
        )
    }
}

impl core::error::Error for NumError {}

const SUFFIXES: [(&str, u32); 8] = [
    ("KiB", 10),
    ("MiB", 20),
    ("GiB", 30),
    ("TiB", 40),
    ("K", 10),
    ("M", 20),
    ("G", 30),
    ("T", 40),
];

/// Parses `s` with the grammar above.
pub fn parse_num(s: &str) -> Result<u64, NumError> {
    let err = |why| NumError {
        text: s.to_string(),
        why,
    };
    if s.starts_with('_') || s.ends_with('_') {
        return Err(err("`_` must sit between two digits"));
    }
    let (body, shift) = SUFFIXES
        .iter()
        .find_map(|(suf, sh)| s.strip_suffix(suf).map(|b| (b, *sh)))
        .unwrap_or((s, 0));
    let (digits, radix) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (body, 10),
    };
    if digits.is_empty() {
        return Err(err("no digits"));
    }
    let mut v: u64 = 0;
    let mut prev_digit = false;
    let bytes = digits.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'_' {
            let next_digit = bytes
                .get(i + 1)
                .is_some_and(|n| (*n as char).is_digit(radix));
            if !prev_digit || !next_digit {
                return Err(err("`_` must sit between two digits"));
            }
            prev_digit = false;
            continue;
        }
        let Some(d) = (c as char).to_digit(radix) else {
            return Err(err(if c.is_ascii_whitespace() {
                "spaces are not allowed"
            } else if c == b'+' || c == b'-' {
                "no sign is allowed"
            } else {
                "not a digit"
            }));
        };
        v = v
            .checked_mul(radix as u64)
            .and_then(|x| x.checked_add(d as u64))
            .ok_or_else(|| err("does not fit in 64 bits"))?;
        prev_digit = true;
    }
    v.checked_mul(1u64 << shift)
        .ok_or_else(|| err("does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (s, v) in [
            ("0", 0),
            ("4096", 4096),
            ("0x1000", 0x1000),
            ("0X1f", 0x1f),
            ("0x1_0000_0000", 1 << 32),
            ("1_000", 1000),
            ("4K", 4096),
            ("4KiB", 4096),
            ("64M", 64 << 20),
            ("2G", 2 << 30),
            ("16GiB", 16 << 30),
            ("1T", 1 << 40),
            ("0x10G", 16 << 30),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_num(s), Ok(v), "{s}");
        }
    }

    /// Bug: `"+2G"`, `"2G_"`, `" 0x1000"` were accepted (the file parser
    /// trimmed, dropped every `_` and let `u64::from_str` take a sign).
    #[test]
    fn refused_forms_name_the_rule() {
        for (s, why) in [
            ("+2G", "no sign is allowed"),
            ("-1", "no sign is allowed"),
            ("2G_", "`_` must sit between two digits"),
            ("_1", "`_` must sit between two digits"),
            ("1__0", "`_` must sit between two digits"),
            ("0x_10", "`_` must sit between two digits"),
            (" 0x1000", "spaces are not allowed"),
            ("4 K", "spaces are not allowed"),
            ("", "no digits"),
            ("K", "no digits"),
            ("0x", "no digits"),
            ("4k", "not a digit"),
            ("4KB", "not a digit"),
            ("0b101", "not a digit"),
            ("12a", "not a digit"),
            ("18446744073709551616", "does not fit in 64 bits"),
            ("16777216T", "does not fit in 64 bits"),
        ] {
            let e = parse_num(s).unwrap_err();
            assert_eq!(e.why, why, "{s:?}");
            assert!(e
                .to_string()
                .starts_with(&format!("{s:?} is not a number: {why}")));
        }
    }
}
