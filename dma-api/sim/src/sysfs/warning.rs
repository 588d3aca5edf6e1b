//! What a scan could not read, and where.

use super::ram::RamTextError;
use super::resource::ResourceError;
use dma_pci::bdf::{Bdf, BdfParseError};
use dma_pci::config::ConfigError;
use std::fmt;
use std::path::PathBuf;

/// A file or entry the scan skipped or only partly understood.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Warning {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What was wrong with it.
    pub what: Problem,
}

/// The kinds of trouble a scan meets.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Problem {
    /// An I/O error (permission denied, missing file, ...).
    Io {
        /// The error kind.
        kind: std::io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// A file that should hold a number holds something else.
    BadNumber {
        /// The text found (at most 80 characters).
        text: String,
        /// What number was expected.
        expected: &'static str,
    },
    /// A directory entry whose name is not a BDF; it was skipped.
    BadName(BdfParseError),
    /// The canonical path does not end in the entry's BDF.
    NameMismatch {
        /// The entry's name.
        entry: Bdf,
        /// The last component of the canonical path.
        path: String,
    },
    /// The canonical path has no `pciDDDD:BB` host-bridge component.
    NoHostBridge,
    /// The `resource` file did not parse.
    Resource(ResourceError),
    /// Config space decoded with a problem (or not at all).
    Config(ConfigError),
    /// Neither the ID files nor config space gave vendor/device/class; the
    /// function was skipped.
    NoIds,
    /// A `firmware/memmap` entry did not parse; it was skipped.
    Ram(RamTextError),
    /// A `/proc/iomem` line did not parse; it was skipped.
    RamLine {
        /// 0-based line number.
        line: usize,
        /// What was wrong.
        error: RamTextError,
    },
    /// `/proc/iomem` shows every address as 0 (read without
    /// `CAP_SYS_ADMIN`); no RAM ranges were taken from it.
    AddressesHidden,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io { kind, message } => write!(f, "I/O error ({kind:?}): {message}"),
            Problem::BadNumber { text, expected } => {
                write!(f, "expected {expected}, found {text:?}")
            }
            Problem::BadName(e) => write!(f, "{e}"),
            Problem::NameMismatch { entry, path } => {
                write!(f, "entry {entry} resolves to {path:?}")
            }
            Problem::NoHostBridge => f.write_str("no pciDDDD:BB component in the device path"),
            Problem::Resource(e) => write!(f, "{e}"),
            Problem::Config(e) => write!(f, "{e}"),
            Problem::NoIds => f.write_str("no vendor/device/class readable; function skipped"),
            Problem::Ram(e) => write!(f, "memmap entry skipped: {e}"),
            Problem::RamLine { line, error } => write!(f, "line {line} skipped: {error}"),
            Problem::AddressesHidden => {
                f.write_str("all addresses read as 0 (not root?): no RAM ranges taken from it")
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl Problem {
    /// Wraps an I/O error.
    pub fn io(e: &std::io::Error) -> Self {
        Problem::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
