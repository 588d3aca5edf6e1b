//! The sysfs `resource` file: one line per resource slot.
//!
//! Linux `resource_show` (drivers/pci/pci-sysfs.c) prints, for each slot,
//! `0x%016llx 0x%016llx 0x%016llx\n` = start, end (inclusive), flags, after
//! `pci_resource_to_user` (CPU physical on every common arch). Lines 0..=5 are
//! the BARs, line 6 the expansion ROM, then SR-IOV and bridge-window slots
//! whose numbering depends on the kernel configuration. Unused slots are all
//! zeros. Flag bits are `IORESOURCE_*` from include/linux/ioport.h.
//!
//! This parser is pure (text in, records out) so it can be fuzzed.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use dma_pci::types::PhysAddr;

bitflags::bitflags! {
    /// The `IORESOURCE_*` bits this layer decodes (others are retained).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct ResourceFlags: u64 {
        /// `IORESOURCE_IO`: I/O port space.
        const IO = 0x0000_0100;
        /// `IORESOURCE_MEM`: memory space.
        const MEM = 0x0000_0200;
        /// `IORESOURCE_PREFETCH`: prefetchable memory.
        const PREFETCH = 0x0000_2000;
        /// `IORESOURCE_MEM_64`: a 64-bit memory BAR.
        const MEM_64 = 0x0010_0000;
        /// `IORESOURCE_DISABLED`.
        const DISABLED = 0x1000_0000;
        /// `IORESOURCE_UNSET`: no address assigned yet.
        const UNSET = 0x2000_0000;
        /// Bits not named above.
        const _ = !0;
    }
}

/// One non-empty line of the `resource` file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ResourceLine {
    /// Slot index (0-based line number): 0..=5 BARs, 6 ROM, then
    /// configuration-dependent SR-IOV / bridge-window slots.
    pub index: usize,
    /// First CPU physical address.
    pub start: PhysAddr,
    /// Size in bytes (`end - start + 1`).
    pub size: u64,
    /// The flags word.
    pub flags: ResourceFlags,
}

impl ResourceLine {
    /// Memory space.
    pub fn is_mem(&self) -> bool {
        self.flags.contains(ResourceFlags::MEM)
    }
    /// I/O port space.
    pub fn is_io(&self) -> bool {
        self.flags.contains(ResourceFlags::IO)
    }
    /// A 64-bit memory BAR.
    pub fn is_64(&self) -> bool {
        self.flags.contains(ResourceFlags::MEM_64)
    }
    /// Prefetchable memory.
    pub fn prefetch(&self) -> bool {
        self.flags.contains(ResourceFlags::PREFETCH)
    }
}

/// Why a `resource` file did not parse; names the line and its text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ResourceError {
    /// 0-based line number.
    pub line: usize,
    /// The offending line (at most 80 characters of it).
    pub text: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "resource line {}: {} ({:?})",
            self.line, self.reason, self.text
        )
    }
}

impl core::error::Error for ResourceError {}

fn hex64(tok: &str) -> Option<u64> {
    let digits = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Parses a whole `resource` file. All-zero lines (unused slots) are
/// skipped; blank lines count for numbering but hold nothing. Any malformed
/// line fails the whole file, naming that line.
pub fn parse_resource(text: &str) -> Result<Vec<ResourceLine>, ResourceError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err = |reason| ResourceError {
            line: index,
            text: line.chars().take(80).collect(),
            reason,
        };
        let mut toks = line.split_ascii_whitespace();
        let mut next = |what| toks.next().and_then(hex64).ok_or_else(|| err(what));
        let start = next("start is not 0x-prefixed hex")?;
        let end = next("end is not 0x-prefixed hex")?;
        let flags = next("flags are not 0x-prefixed hex")?;
        if toks.next().is_some() {
            return Err(err("more than three fields"));
        }
        if start == 0 && end == 0 {
            continue;
        }
        if end < start {
            return Err(err("end is below start"));
        }
        let size = (end - start)
            .checked_add(1)
            .ok_or_else(|| err("size overflows 64 bits"))?;
        out.push(ResourceLine {
            index,
            start: PhysAddr::new(start),
            size,
            flags: ResourceFlags::from_bits_retain(flags),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_format() {
        let text = "0x0000004000000000 0x000000400007ffff 0x0000000000140204\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x000000000000e000 0x000000000000e07f 0x0000000000040101\n\
                    0x00000000fe000000 0x00000000fe003fff 0x0000000000042208\n";
        let r = parse_resource(text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].index, 0);
        assert_eq!(r[0].start, PhysAddr::new(0x40_0000_0000));
        assert_eq!(r[0].size, 0x8_0000);
        assert!(r[0].is_mem() && r[0].is_64() && !r[0].prefetch() && !r[0].is_io());
        assert_eq!(r[1].index, 2);
        assert!(r[1].is_io() && !r[1].is_mem());
        assert_eq!(r[1].size, 0x80);
        assert_eq!(r[2].index, 3);
        assert!(r[2].is_mem() && r[2].prefetch() && !r[2].is_64());
        assert_eq!(r[2].flags.bits(), 0x42208);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let cases = [
            ("garbage\n", 0, "start is not 0x-prefixed hex"),
            (
                "0x0 0x0 0x0\n0x10 0xz 0x200\n",
                1,
                "end is not 0x-prefixed hex",
            ),
            ("0x10 0x20\n", 0, "flags are not 0x-prefixed hex"),
            ("0x10 0x20 0x200 0x1\n", 0, "more than three fields"),
            ("0x20 0x10 0x200\n", 0, "end is below start"),
            (
                "0x0 0xffffffffffffffff 0x200\n",
                0,
                "size overflows 64 bits",
            ),
            (
                "0x00000000000000001 0x2 0x200\n",
                0,
                "start is not 0x-prefixed hex",
            ),
        ];
        for (text, line, reason) in cases {
            let e = parse_resource(text).unwrap_err();
            assert_eq!((e.line, e.reason), (line, reason), "{text:?}");
        }
        assert_eq!(parse_resource(""), Ok(Vec::new()));
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            if let Err(e) = parse_resource(&text) {
                prop_assert!(e.line < text.lines().count().max(1));
            }
        }

        #[test]
        fn kernel_format_round_trips(rows in proptest::collection::vec((any::<u64>(), 0u64..1 << 40, any::<u64>()), 0..17)) {
            let mut text = String::new();
            let mut expect = Vec::new();
            for (i, &(start, len, flags)) in rows.iter().enumerate() {
                let end = start.saturating_add(len);
                text += &format!("0x{start:016x} 0x{end:016x} 0x{flags:016x}\n");
                if start != 0 || end != 0 {
                    expect.push((i, start, end - start + 1, flags));
                }
            }
            let got: Vec<_> = parse_resource(&text)
                .unwrap()
                .iter()
                .map(|l| (l.index, l.start.raw(), l.size, l.flags.bits()))
                .collect();
            prop_assert_eq!(got, expect);
        }
    }
}
