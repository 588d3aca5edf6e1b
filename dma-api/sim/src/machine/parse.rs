//! Machine file text → [`MachineFile`]: the whole document at once, or, for a
//! large file, in pieces split at its `[[device]]` headers and parsed on
//! every core.
//!
//! Why: the `toml` crate lexes a whole document into a token vector and a
//! table of spans before deserialising it, about 35 bytes of temporaries per
//! byte of text; for a 65 536-function machine (16 MB) that is a 570 MB peak
//! and 40 % of `unidma check`. Pieces keep the temporaries small and run in
//! parallel.
//!
//! The pieces give exactly the whole document's result or are not used:
//! - A piece starts at a line that is exactly `[[device]]`. Such a line
//!   inside a multi-line string or array leaves the piece before it with an
//!   unterminated string or array, which fails to parse.
//! - The first piece (everything before the first split) must not mention
//!   `device` at all; every later piece may hold nothing but `device`
//!   elements. So no key or table can be defined twice across pieces, which
//!   is the only rule of TOML that spans a document.
//! - Each piece's spans are shifted by its offset, so every error position
//!   is the whole file's.
//! - Any piece that fails (and any file too small to split) is parsed whole,
//!   so every syntax or shape error is the `toml` crate's own, at its own
//!   position.
//!
//! `tests/machine_parse.rs` checks pieces against the whole parse on every
//! example machine, generated machines and hostile splits; the `machine_file`
//! fuzz target does the same on arbitrary text.

use super::file::{BarToml, DeviceToml, MachineFile, P2pMemToml, RangeToml};
use core::ops::Range;
use serde::Deserialize;
use toml::Spanned;

/// The header every split is made at.
const HEADER: &str = "[[device]]";

/// Files below this size are parsed whole (a split would not pay for the
/// threads).
const MIN_SPLIT: usize = 1 << 20;

/// The size a piece grows to before the next `[[device]]` header ends it.
const PIECE: usize = 256 << 10;

/// Parses `src` as a machine file, in pieces when it is large (see the
/// module doc). The result, errors included, is the whole-document parse's.
pub fn parse(src: &str) -> Result<MachineFile, toml::de::Error> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    parse_split(src, MIN_SPLIT, PIECE, threads)
}

/// [`parse`] with the split size rules and thread count given, for tests:
/// pieces of at least `piece` bytes once the file has `min_split`.
pub fn parse_split(
    src: &str,
    min_split: usize,
    piece: usize,
    threads: usize,
) -> Result<MachineFile, toml::de::Error> {
    if src.len() >= min_split {
        if let Some(file) = in_pieces(src, piece, threads.max(1)) {
            return Ok(file);
        }
    }
    toml::from_str(src)
}

/// The parse in pieces alone: `None` when the file has no split point, a
/// piece does not parse, or the split could change the meaning (where
/// [`parse_split`] falls back to the whole document).
pub fn try_pieces(src: &str, piece: usize, threads: usize) -> Option<MachineFile> {
    in_pieces(src, piece, threads.max(1))
}

/// Every later piece: `device` elements and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicePiece {
    device: Vec<Spanned<DeviceToml>>,
}

/// The byte offsets where pieces start: line starts holding exactly the
/// header, the first one and then each at least `piece` bytes after the
/// previous split.
fn splits(src: &str, piece: usize) -> Vec<usize> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut last = 0usize;
    let mut at = 0usize;
    while at < bytes.len() {
        let end = memchr_newline(bytes, at);
        let line = &src[at..end];
        let line = line.strip_suffix('\r').unwrap_or(line);
        // The first header always splits (the head holds no device);
        // later ones once the piece has grown to `piece` bytes.
        if line == HEADER && at > 0 && (out.is_empty() || at - last >= piece) {
            out.push(at);
            last = at;
        }
        at = end + 1;
    }
    out
}

/// The index of the next `\n` at or after `from`, or the length.
fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
        .map_or(bytes.len(), |p| from + p)
}

/// The pieces parsed and joined, or `None` when any piece does not parse
/// or the split could change the meaning (see the module doc).
fn in_pieces(src: &str, piece: usize, threads: usize) -> Option<MachineFile> {
    let cuts = splits(src, piece);
    let first_end = *cuts.first()?;
    let head_src = src.get(..first_end)?;
    // The head must not mention `device` in any form (a table, a static
    // array, a dotted key): only then can later pieces extend it.
    let head_table: toml::Table = toml::from_str(head_src).ok()?;
    if head_table.contains_key("device") {
        return None;
    }
    drop(head_table);
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(cuts.len());
    for (i, &start) in cuts.iter().enumerate() {
        let end = cuts.get(i + 1).copied().unwrap_or(src.len());
        ranges.push(start..end);
    }
    let pieces = parse_pieces(src, &ranges, threads)?;
    let mut file: MachineFile = toml::from_str(head_src).ok()?;
    for (range, devices) in ranges.iter().zip(pieces) {
        file.device
            .extend(devices.into_iter().map(|d| d.shifted(range.start)));
    }
    Some(file)
}

/// Each range of `src` parsed as a [`DevicePiece`], on up to `threads`
/// threads (contiguous runs of pieces each); `None` if any fails.
fn parse_pieces(
    src: &str,
    ranges: &[Range<usize>],
    threads: usize,
) -> Option<Vec<Vec<Spanned<DeviceToml>>>> {
    let one = |r: &Range<usize>| -> Option<Vec<Spanned<DeviceToml>>> {
        let text = src.get(r.clone())?;
        toml::from_str::<DevicePiece>(text).ok().map(|p| p.device)
    };
    let threads = threads.min(ranges.len()).max(1);
    if threads == 1 {
        return ranges.iter().map(one).collect();
    }
    let per = ranges.len().div_ceil(threads);
    let parts: Vec<Option<Vec<Vec<Spanned<DeviceToml>>>>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(one).collect::<Option<Vec<_>>>()))
            .collect();
        handles
            .into_iter()
            // A panicking parser thread is a parse that did not succeed:
            // the whole-document parse then answers.
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut out = Vec::with_capacity(ranges.len());
    for part in parts {
        out.extend(part?);
    }
    Some(out)
}

/// A value whose spans move by a fixed offset (a piece's spans to the
/// file's). Every struct destructures all its fields, so a new field that
/// is not shifted does not compile.
trait Shift {
    fn shifted(self, by: usize) -> Self;
}

impl<T: Shift> Shift for Spanned<T> {
    fn shifted(self, by: usize) -> Self {
        let span = self.span();
        Spanned::new(
            span.start + by..span.end + by,
            self.into_inner().shifted(by),
        )
    }
}

impl<T: Shift> Shift for Option<T> {
    fn shifted(self, by: usize) -> Self {
        self.map(|v| v.shifted(by))
    }
}

impl<T: Shift> Shift for Vec<T> {
    fn shifted(self, by: usize) -> Self {
        self.into_iter().map(|v| v.shifted(by)).collect()
    }
}

/// Leaves without spans of their own.
macro_rules! no_spans {
    ($($t:ty),*) => {$(
        impl Shift for $t {
            fn shifted(self, _: usize) -> Self {
                self
            }
        }
    )*};
}
no_spans!(String, i64, super::file::Num);

impl Shift for RangeToml {
    fn shifted(self, by: usize) -> Self {
        let RangeToml { start, size } = self;
        RangeToml {
            start: start.shifted(by),
            size: size.shifted(by),
        }
    }
}

impl Shift for BarToml {
    fn shifted(self, by: usize) -> Self {
        let BarToml {
            index,
            addr,
            size,
            mem64,
            prefetchable,
            io,
        } = self;
        BarToml {
            index: index.shifted(by),
            addr: addr.shifted(by),
            size: size.shifted(by),
            mem64,
            prefetchable,
            io,
        }
    }
}

impl Shift for P2pMemToml {
    fn shifted(self, by: usize) -> Self {
        let P2pMemToml {
            bar,
            offset,
            size,
            publish,
        } = self;
        P2pMemToml {
            bar: bar.shifted(by),
            offset: offset.shifted(by),
            size: size.shifted(by),
            publish,
        }
    }
}

impl Shift for DeviceToml {
    fn shifted(self, by: usize) -> Self {
        let DeviceToml {
            bdf,
            name,
            kind,
            vendor,
            device,
            class,
            parent,
            acs_cap,
            acs_ctrl,
            multifunction,
            dma_mask,
            coherent,
            untrusted,
            bars,
            p2pmem,
            stolen_ram,
            device_private,
            numa_node,
        } = self;
        DeviceToml {
            bdf: bdf.shifted(by),
            name: name.shifted(by),
            kind: kind.shifted(by),
            vendor: vendor.shifted(by),
            device: device.shifted(by),
            class: class.shifted(by),
            parent: parent.shifted(by),
            acs_cap: acs_cap.shifted(by),
            acs_ctrl: acs_ctrl.shifted(by),
            multifunction,
            dma_mask: dma_mask.shifted(by),
            coherent,
            untrusted,
            bars: bars.shifted(by),
            p2pmem: p2pmem.shifted(by),
            stolen_ram: stolen_ram.shifted(by),
            device_private: device_private.shifted(by),
            numa_node: numa_node.shifted(by),
        }
    }
}
