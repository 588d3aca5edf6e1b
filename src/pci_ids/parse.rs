//! The `pci.ids` grammar, as pciutils reads it (lib/names-parse.c,
//! `id_parse_list`):
//!
//! * lines ending in whitespace are trimmed; empty lines and lines starting
//!   with `#` are skipped;
//! * the number of leading tabs is the nesting: `vvvv  vendor`,
//!   `\tdddd  device` (under the last vendor), `\t\tssss ssss  subsystem`
//!   (under the last device); `C cc  class`, `\tss  subclass`,
//!   `\t\tpp  programming interface` in the class section;
//! * an ID is exactly that many hex digits, then at least one space or tab,
//!   then a non-empty name;
//! * a vendor, or a device of one vendor, listed twice is an error
//!   ("Duplicate entry" in pciutils), as is an entry with no parent.
//!
//! Every error names the 1-based line and column (in characters) of the
//! offending text.

use super::{PciIds, Vendor};
use core::fmt;
use std::collections::BTreeMap;

/// What is wrong with a line of a `pci.ids` file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PciIdsErrorKind {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// An ID that is not exactly `digits` hex digits (`found` is the text
    /// there, up to the next blank).
    BadId {
        /// What the entry was (`vendor`, `device`, `subsystem vendor`, ...).
        entry: &'static str,
        /// Hex digits expected.
        digits: u8,
        /// The text found.
        found: String,
    },
    /// No space or tab between the ID and the name.
    MissingSeparator {
        /// What the entry was.
        entry: &'static str,
    },
    /// An ID with no name after it.
    MissingName {
        /// What the entry was.
        entry: &'static str,
    },
    /// An indented entry with nothing to belong to (a device before any
    /// vendor, a subsystem before any device, ...).
    NoParent {
        /// What the entry was.
        entry: &'static str,
    },
    /// More than two leading tabs.
    TooDeep {
        /// The tabs found.
        tabs: usize,
    },
    /// A vendor listed twice.
    DuplicateVendor {
        /// The vendor ID.
        vendor: u16,
        /// Line of the first entry.
        first_line: usize,
    },
    /// A device listed twice under one vendor.
    DuplicateDevice {
        /// The vendor ID.
        vendor: u16,
        /// The device ID.
        device: u16,
        /// Line of the first entry.
        first_line: usize,
    },
}

/// A `pci.ids` file that does not parse: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciIdsError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub kind: PciIdsErrorKind,
}

impl fmt::Display for PciIdsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PciIdsErrorKind::*;
        match self {
            NotUtf8 => f.write_str("not UTF-8 text"),
            BadId {
                entry,
                digits,
                found,
            } => write!(f, "{entry} ID {found:?} is not {digits} hexadecimal digits"),
            MissingSeparator { entry } => {
                write!(f, "{entry} ID is not followed by a space or tab")
            }
            MissingName { entry } => write!(f, "{entry} entry has no name"),
            NoParent { entry } => write!(f, "{entry} entry has nothing above it to belong to"),
            TooDeep { tabs } => write!(f, "{tabs} leading tabs; entries nest at most 2 deep"),
            DuplicateVendor { vendor, first_line } => write!(
                f,
                "vendor {vendor:04x} is listed twice (first on line {first_line})"
            ),
            DuplicateDevice {
                vendor,
                device,
                first_line,
            } => write!(
                f,
                "device {vendor:04x}:{device:04x} is listed twice (first on line {first_line})"
            ),
        }
    }
}

impl fmt::Display for PciIdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.kind)
    }
}

impl std::error::Error for PciIdsError {}

/// The error for bytes whose first `valid` bytes are UTF-8 and the next is
/// not: line and column of that byte.
pub(super) fn not_utf8(bytes: &[u8], valid: usize) -> PciIdsError {
    let before = bytes.get(..valid).unwrap_or(bytes);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = std::str::from_utf8(before.get(start..).unwrap_or(&[]))
        .map_or(0, |s| s.chars().count())
        + 1;
    PciIdsError {
        line,
        column,
        kind: PciIdsErrorKind::NotUtf8,
    }
}

/// What the last entries at each level were.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Top {
    None,
    Vendor(u16),
    Class,
}

/// One line being parsed: its number and text (tabs stripped, `col` is the
/// 1-based column where `rest` starts).
struct Line<'a> {
    no: usize,
    rest: &'a str,
    col: usize,
}

impl<'a> Line<'a> {
    fn err(&self, col: usize, kind: PciIdsErrorKind) -> PciIdsError {
        PciIdsError {
            line: self.no,
            column: col,
            kind,
        }
    }

    /// Exactly `digits` hex digits at the start of `rest`.
    fn hex(&mut self, entry: &'static str, digits: u8) -> Result<u16, PciIdsError> {
        let n = usize::from(digits);
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let word = self.rest.get(..end).unwrap_or("");
        let ok = word.len() == n && word.bytes().all(|b| b.is_ascii_hexdigit());
        let value = if ok {
            u16::from_str_radix(word, 16).ok()
        } else {
            None
        };
        let Some(v) = value else {
            return Err(self.err(
                self.col,
                PciIdsErrorKind::BadId {
                    entry,
                    digits,
                    found: word.chars().take(16).collect(),
                },
            ));
        };
        self.rest = self.rest.get(n..).unwrap_or("");
        self.col += n;
        Ok(v)
    }

    /// One or more blanks.
    fn blanks(&mut self, entry: &'static str) -> Result<(), PciIdsError> {
        let trimmed = self.rest.trim_start_matches([' ', '\t']);
        let skipped = self.rest.len() - trimmed.len();
        if skipped == 0 {
            return Err(self.err(self.col, PciIdsErrorKind::MissingSeparator { entry }));
        }
        self.rest = trimmed;
        self.col += skipped;
        Ok(())
    }

    /// Blanks, then the name (the rest of the line, non-empty).
    fn name(&mut self, entry: &'static str) -> Result<&'a str, PciIdsError> {
        if self.rest.is_empty() {
            return Err(self.err(self.col, PciIdsErrorKind::MissingName { entry }));
        }
        self.blanks(entry)?;
        if self.rest.is_empty() {
            return Err(self.err(self.col, PciIdsErrorKind::MissingName { entry }));
        }
        Ok(self.rest)
    }
}

pub(super) fn parse(text: &str) -> Result<PciIds, PciIdsError> {
    let mut vendors: BTreeMap<u16, Vendor> = BTreeMap::new();
    let mut vendor_lines: BTreeMap<u16, usize> = BTreeMap::new();
    let mut device_lines: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    let mut top = Top::None;
    // Whether a level-1 entry (device or subclass) is open under `top`.
    let mut mid = false;
    for (i, raw) in text.split('\n').enumerate() {
        let no = i + 1;
        let line = raw.trim_end_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body = line.trim_start_matches('\t');
        let tabs = line.len() - body.len();
        let mut l = Line {
            no,
            rest: body,
            col: tabs + 1,
        };
        match tabs {
            0 if body.starts_with("C ") => {
                l.rest = body.get(2..).unwrap_or("");
                l.col += 2;
                l.hex("class", 2)?;
                l.name("class")?;
                top = Top::Class;
                mid = false;
            }
            0 => {
                let v = l.hex("vendor", 4)?;
                let name = l.name("vendor")?;
                if let Some(&first_line) = vendor_lines.get(&v) {
                    return Err(l.err(
                        1,
                        PciIdsErrorKind::DuplicateVendor {
                            vendor: v,
                            first_line,
                        },
                    ));
                }
                vendor_lines.insert(v, no);
                vendors.insert(
                    v,
                    Vendor {
                        name: name.to_string(),
                        devices: BTreeMap::new(),
                    },
                );
                top = Top::Vendor(v);
                mid = false;
            }
            1 => match top {
                Top::Vendor(v) => {
                    let d = l.hex("device", 4)?;
                    let name = l.name("device")?;
                    if let Some(&first_line) = device_lines.get(&(v, d)) {
                        return Err(l.err(
                            2,
                            PciIdsErrorKind::DuplicateDevice {
                                vendor: v,
                                device: d,
                                first_line,
                            },
                        ));
                    }
                    device_lines.insert((v, d), no);
                    if let Some(ven) = vendors.get_mut(&v) {
                        ven.devices.insert(d, name.to_string());
                    }
                    mid = true;
                }
                Top::Class => {
                    l.hex("subclass", 2)?;
                    l.name("subclass")?;
                    mid = true;
                }
                Top::None => return Err(l.err(2, PciIdsErrorKind::NoParent { entry: "device" })),
            },
            2 => match (top, mid) {
                (Top::Vendor(_), true) => {
                    l.hex("subsystem vendor", 4)?;
                    if !l.rest.starts_with(' ') {
                        return Err(l.err(
                            l.col,
                            PciIdsErrorKind::MissingSeparator {
                                entry: "subsystem vendor",
                            },
                        ));
                    }
                    l.rest = l.rest.get(1..).unwrap_or("");
                    l.col += 1;
                    l.hex("subsystem device", 4)?;
                    l.name("subsystem")?;
                }
                (Top::Class, true) => {
                    l.hex("programming interface", 2)?;
                    l.name("programming interface")?;
                }
                (Top::Class, false) => {
                    return Err(l.err(
                        3,
                        PciIdsErrorKind::NoParent {
                            entry: "programming interface",
                        },
                    ))
                }
                _ => return Err(l.err(3, PciIdsErrorKind::NoParent { entry: "subsystem" })),
            },
            n => return Err(l.err(1, PciIdsErrorKind::TooDeep { tabs: n })),
        }
    }
    Ok(PciIds { vendors })
}
