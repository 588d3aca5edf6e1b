//! Reading one sysfs attribute: hex IDs, decimal numbers, link names.
//!
//! Formats are those of drivers/pci/pci-sysfs.c: `vendor`/`device` print
//! `0x%04x`, `class` `0x%06x`, `revision` `0x%02x`, `numa_node` and
//! `dma_mask_bits` decimal. Every failure becomes a [`Problem`]; a file that
//! does not exist is `Ok(None)` so optional attributes stay quiet.

use super::warning::Problem;
use std::io::ErrorKind;
use std::path::Path;

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The file's text, or `None` if it does not exist.
pub fn read_text(path: &Path) -> Result<Option<String>, Problem> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => Err(Problem::BadNumber {
                text: clip(&String::from_utf8_lossy(e.as_bytes())),
                expected: "UTF-8 text",
            }),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::io(&e)),
    }
}

/// A `0x`-prefixed hex number no larger than `max`.
pub fn read_hex(path: &Path, max: u64, expected: &'static str) -> Result<Option<u64>, Problem> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let t = text.trim();
    let bad = || Problem::BadNumber {
        text: clip(t),
        expected,
    };
    let digits = t.strip_prefix("0x").ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let v = u64::from_str_radix(digits, 16).map_err(|_| bad())?;
    if v > max {
        return Err(bad());
    }
    Ok(Some(v))
}

/// A decimal number.
pub fn read_dec(path: &Path, expected: &'static str) -> Result<Option<i64>, Problem> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let t = text.trim();
    t.parse::<i64>().map(Some).map_err(|_| Problem::BadNumber {
        text: clip(t),
        expected,
    })
}

/// The last component of a symlink's target, or `None` if there is no link.
pub fn link_name(path: &Path) -> Result<Option<String>, Problem> {
    match std::fs::read_link(path) {
        Ok(target) => match target.file_name() {
            Some(n) => Ok(Some(n.to_string_lossy().into_owned())),
            None => Err(Problem::BadNumber {
                text: clip(&target.to_string_lossy()),
                expected: "a link to a named directory",
            }),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::io(&e)),
    }
}
