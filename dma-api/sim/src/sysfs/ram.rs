//! System RAM of a live machine: `/sys/firmware/memmap`, else `/proc/iomem`.
//!
//! The PCI tree says nothing about RAM, but Linux does elsewhere:
//! * `/sys/firmware/memmap/N/{start,end,type}` (drivers/firmware/memmap.c,
//!   Documentation/ABI/testing/sysfs-firmware-memmap) is the raw firmware
//!   map (E820 on x86): `start` and `end` print `0x%llx`, `end` inclusive,
//!   `type` a string such as `System RAM`, `Reserved`, `ACPI Tables`,
//!   `ACPI Non-volatile Storage`. Entries are in firmware order.
//! * `/proc/iomem` (kernel/resource.c `r_show`) prints the resource tree,
//!   `start-end : name` in hex without `0x`, `end` inclusive, two spaces of
//!   indent per level; top-level `System RAM` lines are RAM. A reader
//!   without `CAP_SYS_ADMIN` sees every address as 0.
//!
//! Only `System RAM` counts; overlapping or adjacent ranges are merged.
//! The parsers here are pure (text in, records out) so they can be fuzzed;
//! the readers never fail: odd entries become [`Warning`]s.

use super::attr::read_text;
use super::warning::{Problem, Warning};
use dma_pci::types::PhysAddr;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `type` string of RAM in both sources.
pub const SYSTEM_RAM: &str = "System RAM";

/// One RAM range `[start, start + size)`; `size` is never 0 and the range
/// never wraps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RamRange {
    /// First byte.
    pub start: PhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl RamRange {
    /// The last byte.
    pub fn last(&self) -> PhysAddr {
        PhysAddr::new(self.start.raw().saturating_add(self.size.saturating_sub(1)))
    }
}

impl fmt::Display for RamRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} +{:#x}]", self.start, self.size)
    }
}

/// One firmware memmap entry, parsed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MemmapEntry {
    /// The range (inclusive `end` turned into a size).
    pub range: RamRange,
    /// The `type` text, trimmed.
    pub kind: String,
}

impl MemmapEntry {
    /// True for `System RAM` entries.
    pub fn is_ram(&self) -> bool {
        self.kind == SYSTEM_RAM
    }
}

/// Why a memmap entry or an iomem line did not parse; names the text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RamTextError {
    /// The offending text (at most 80 characters).
    pub text: String,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for RamTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.reason, self.text)
    }
}

impl core::error::Error for RamTextError {}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn err(text: &str, reason: &'static str) -> RamTextError {
    RamTextError {
        text: clip(text),
        reason,
    }
}

fn hex_digits(d: &str) -> Option<u64> {
    if d.is_empty() || d.len() > 16 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(d, 16).ok()
}

/// `[start, end]` inclusive to a range; `None` reasons name the problem.
fn inclusive(start: u64, end: u64) -> Result<RamRange, &'static str> {
    if end < start {
        return Err("end is below start");
    }
    let size = (end - start)
        .checked_add(1)
        .ok_or("size overflows 64 bits")?;
    Ok(RamRange {
        start: PhysAddr::new(start),
        size,
    })
}

/// Parses one `/sys/firmware/memmap/N` entry from its three files' text
/// (`0x`-prefixed hex `start` and inclusive `end`, free-text `type`).
pub fn parse_memmap_entry(start: &str, end: &str, kind: &str) -> Result<MemmapEntry, RamTextError> {
    let hex = |t: &str, reason| {
        let t = t.trim();
        t.strip_prefix("0x")
            .and_then(hex_digits)
            .ok_or_else(|| err(t, reason))
    };
    let s = hex(start, "start is not 0x-prefixed hex")?;
    let e = hex(end, "end is not 0x-prefixed hex")?;
    let range = inclusive(s, e).map_err(|r| err(&format!("{} {}", start.trim(), end.trim()), r))?;
    let kind = kind.trim();
    if kind.is_empty() || kind.chars().any(char::is_control) {
        return Err(err(kind, "type is empty or holds control characters"));
    }
    Ok(MemmapEntry {
        range,
        kind: kind.to_string(),
    })
}

impl RamRange {
    /// True if the range is non-empty and does not wrap (every parser here
    /// only makes valid ranges; the fields are public, so callers may not).
    pub fn is_valid(&self) -> bool {
        self.size > 0 && self.start.checked_add(self.size - 1).is_some()
    }
}

/// Sorts ranges and merges overlapping or adjacent ones. Invalid ranges
/// (empty or wrapping, see [`RamRange::is_valid`]) are left out.
pub fn merge_ranges(mut v: Vec<RamRange>) -> Vec<RamRange> {
    v.retain(RamRange::is_valid);
    v.sort_by_key(|r| r.start);
    let mut out: Vec<RamRange> = Vec::with_capacity(v.len());
    for r in v {
        if let Some(prev) = out.last_mut() {
            let prev_last = prev.last().raw();
            // Adjacent: starts right after prev's last byte (or inside it).
            if r.start.raw() <= prev_last.saturating_add(1) {
                let last = prev_last.max(r.last().raw());
                // Cannot overflow: both ranges were valid, so
                // last - start + 1 <= 2^64 - 1 unless the union is the
                // whole space, which saturates.
                prev.size = (last - prev.start.raw()).saturating_add(1);
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// What a `/proc/iomem` text says about RAM.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IomemRam {
    /// Top-level `System RAM` ranges, merged.
    pub ram: Vec<RamRange>,
    /// Every top-level line showed address 0 (a reader without
    /// `CAP_SYS_ADMIN`); `ram` is then empty.
    pub hidden: bool,
    /// Lines that did not parse, with their 0-based line numbers.
    pub bad_lines: Vec<(usize, RamTextError)>,
}

/// Parses `/proc/iomem` text: top-level (unindented) `start-end : name`
/// lines named `System RAM`.
pub fn parse_iomem(text: &str) -> IomemRam {
    let mut out = IomemRam::default();
    let mut ram = Vec::new();
    let mut top = 0usize;
    let mut zero = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with(char::is_whitespace) {
            continue;
        }
        let parsed = (|| {
            let (span, name) = line
                .split_once(" : ")
                .ok_or_else(|| err(line, "no \" : \" between range and name"))?;
            let (s, e) = span
                .split_once('-')
                .ok_or_else(|| err(line, "range has no '-'"))?;
            let s = hex_digits(s.trim()).ok_or_else(|| err(line, "start is not hex"))?;
            let e = hex_digits(e.trim()).ok_or_else(|| err(line, "end is not hex"))?;
            Ok::<_, RamTextError>((s, e, name.trim()))
        })();
        match parsed {
            Ok((s, e, name)) => {
                top += 1;
                if s == 0 && e == 0 {
                    zero += 1;
                    continue;
                }
                if name != SYSTEM_RAM {
                    continue;
                }
                match inclusive(s, e) {
                    Ok(r) => ram.push(r),
                    Err(reason) => out.bad_lines.push((i, err(line, reason))),
                }
            }
            Err(e) => out.bad_lines.push((i, e)),
        }
    }
    out.hidden = top > 0 && zero == top;
    out.ram = merge_ranges(ram);
    out
}

/// Reads `sysfs_root/firmware/memmap/*`: the merged `System RAM` ranges and
/// what could not be read. A missing `firmware/memmap` directory gives no
/// ranges and no warning (see [`has_firmware_memmap`]).
pub fn read_firmware_memmap(sysfs_root: &Path) -> (Vec<RamRange>, Vec<Warning>) {
    let dir = sysfs_root.join("firmware").join("memmap");
    let mut warnings = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), warnings),
        Err(e) => {
            warnings.push(Warning {
                path: dir,
                what: Problem::io(&e),
            });
            return (Vec::new(), warnings);
        }
    };
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let name = e.file_name().to_string_lossy().into_owned();
                match name.parse::<u64>() {
                    Ok(n) => names.push((n, e.path())),
                    Err(_) => warnings.push(Warning {
                        path: e.path(),
                        what: Problem::BadNumber {
                            text: clip(&name),
                            expected: "a memmap entry number",
                        },
                    }),
                }
            }
            Err(e) => warnings.push(Warning {
                path: dir.clone(),
                what: Problem::io(&e),
            }),
        }
    }
    names.sort();
    let mut ram = Vec::new();
    for (_, path) in names {
        let mut text = |f: &str| match read_text(&path.join(f)) {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                warnings.push(Warning {
                    path: path.join(f),
                    what: Problem::Io {
                        kind: std::io::ErrorKind::NotFound,
                        message: "missing".into(),
                    },
                });
                None
            }
            Err(p) => {
                warnings.push(Warning {
                    path: path.join(f),
                    what: p,
                });
                None
            }
        };
        let (Some(s), Some(e), Some(k)) = (text("start"), text("end"), text("type")) else {
            continue;
        };
        match parse_memmap_entry(&s, &e, &k) {
            Ok(entry) if entry.is_ram() => ram.push(entry.range),
            Ok(_) => {}
            Err(e) => warnings.push(Warning {
                path,
                what: Problem::Ram(e),
            }),
        }
    }
    (merge_ranges(ram), warnings)
}

/// True if `sysfs_root/firmware/memmap` is a directory.
pub fn has_firmware_memmap(sysfs_root: &Path) -> bool {
    sysfs_root.join("firmware").join("memmap").is_dir()
}

/// Reads and parses a `/proc/iomem` file: merged top-level `System RAM`
/// ranges; unparsable lines, an unreadable file and hidden addresses (not
/// root) become warnings.
pub fn read_iomem(path: &Path) -> (Vec<RamRange>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let text = match read_text(path) {
        Ok(Some(t)) => t,
        Ok(None) => return (Vec::new(), warnings),
        Err(p) => {
            warnings.push(Warning {
                path: path.to_path_buf(),
                what: p,
            });
            return (Vec::new(), warnings);
        }
    };
    let parsed = parse_iomem(&text);
    for (line, e) in parsed.bad_lines {
        warnings.push(Warning {
            path: path.to_path_buf(),
            what: Problem::RamLine { line, error: e },
        });
    }
    if parsed.hidden {
        warnings.push(Warning {
            path: path.to_path_buf(),
            what: Problem::AddressesHidden,
        });
    }
    (parsed.ram, warnings)
}

/// Where the RAM ranges came from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RamSource {
    /// `firmware/memmap` under the sysfs root (this path).
    FirmwareMemmap(PathBuf),
    /// A `/proc/iomem` file (this path).
    ProcIomem(PathBuf),
    /// Neither source was there or gave any RAM.
    None,
}

/// RAM ranges, where they came from and what could not be read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RamScan {
    /// Merged `System RAM` ranges, sorted.
    pub ranges: Vec<RamRange>,
    /// Their source.
    pub source: RamSource,
    /// Problems met on the way.
    pub warnings: Vec<Warning>,
}

/// RAM of a sysfs tree: `sysfs_root/firmware/memmap` when that directory
/// exists, else `iomem` (pass `Some("/proc/iomem")` for the live `/sys`
/// only: a copy of sysfs does not go with this machine's `/proc`).
pub fn read_ram(sysfs_root: &Path, iomem: Option<&Path>) -> RamScan {
    if has_firmware_memmap(sysfs_root) {
        let (ranges, warnings) = read_firmware_memmap(sysfs_root);
        let source = if ranges.is_empty() {
            RamSource::None
        } else {
            RamSource::FirmwareMemmap(sysfs_root.join("firmware").join("memmap"))
        };
        return RamScan {
            ranges,
            source,
            warnings,
        };
    }
    match iomem {
        Some(p) => {
            let (ranges, warnings) = read_iomem(p);
            let source = if ranges.is_empty() {
                RamSource::None
            } else {
                RamSource::ProcIomem(p.to_path_buf())
            };
            RamScan {
                ranges,
                source,
                warnings,
            }
        }
        None => RamScan {
            ranges: Vec::new(),
            source: RamSource::None,
            warnings: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, size: u64) -> RamRange {
        RamRange {
            start: PhysAddr::new(start),
            size,
        }
    }

    #[test]
    fn memmap_entry_kernel_format() {
        let e = parse_memmap_entry("0x100000\n", "0xbfffffff\n", "System RAM\n").unwrap();
        assert_eq!(e.range, r(0x10_0000, 0xbff0_0000));
        assert!(e.is_ram());
        let e = parse_memmap_entry("0x9fc00", "0xfffff", "Reserved").unwrap();
        assert_eq!(e.range, r(0x9_fc00, 0x6_0400));
        assert!(!e.is_ram());
        // A one-byte entry.
        assert_eq!(
            parse_memmap_entry("0x5", "0x5", "System RAM")
                .unwrap()
                .range,
            r(5, 1)
        );
    }

    #[test]
    fn memmap_entry_errors_name_the_text() {
        let cases = [
            ("100", "0x200", "x", "start is not 0x-prefixed hex", "100"),
            ("0x100", "0xzz", "x", "end is not 0x-prefixed hex", "0xzz"),
            ("0x", "0x1", "x", "start is not 0x-prefixed hex", "0x"),
            ("0x200", "0x1ff", "x", "end is below start", "0x200 0x1ff"),
            (
                "0x0",
                "0xffffffffffffffff",
                "x",
                "size overflows 64 bits",
                "0x0 0xffffffffffffffff",
            ),
            (
                "0x10000000000000000",
                "0x1",
                "x",
                "start is not 0x-prefixed hex",
                "0x10000000000000000",
            ),
            (
                "0x0",
                "0x1",
                " \n",
                "type is empty or holds control characters",
                "",
            ),
        ];
        for (s, e, k, reason, text) in cases {
            let got = parse_memmap_entry(s, e, k).unwrap_err();
            assert_eq!(
                (got.reason, got.text.as_str()),
                (reason, text),
                "{s} {e} {k:?}"
            );
        }
    }

    #[test]
    fn merge_joins_adjacent_and_overlapping_only() {
        let got = merge_ranges(vec![
            r(0x1000, 0x1000),
            r(0, 0x1000),
            r(0x3000, 0x1000),
            r(0x3800, 0x2000),
            r(0x6000, 0x10),
        ]);
        assert_eq!(got, [r(0, 0x2000), r(0x3000, 0x2800), r(0x6000, 0x10)]);
        // Up to the top of the space.
        let got = merge_ranges(vec![
            r(u64::MAX - 0xfff, 0x1000),
            r(u64::MAX - 0x1fff, 0x1000),
        ]);
        assert_eq!(got, [r(u64::MAX - 0x1fff, 0x2000)]);
        assert_eq!(merge_ranges(Vec::new()), []);
        // Invalid ranges are left out.
        assert_eq!(
            merge_ranges(vec![r(0x10, 0), r(u64::MAX, 2), r(0x20, 1)]),
            [r(0x20, 1)]
        );
    }

    const IOMEM: &str = "00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-bfffffff : System RAM
  01000000-0220bb07 : Kernel code
  02000000-02000fff : System RAM
c0001000-eebfffff : PCI Bus 0000:00
100000000-63fffffff : System RAM
640000000-64fffffff : System RAM
4000000000-7fffffffff : PCI Bus 0000:00
";

    #[test]
    fn iomem_top_level_system_ram() {
        let got = parse_iomem(IOMEM);
        assert_eq!(
            got.ram,
            [
                r(0x1000, 0x9_ec00),
                r(0x10_0000, 0xbff0_0000),
                r(0x1_0000_0000, 0x5_5000_0000)
            ]
        );
        assert!(!got.hidden);
        assert!(got.bad_lines.is_empty());
    }

    #[test]
    fn iomem_zeros_mean_hidden() {
        let hidden: String = IOMEM
            .lines()
            .map(|l| {
                let (span, name) = l.split_once(" : ").unwrap();
                let indent = span.len() - span.trim_start().len();
                format!("{}00000000-00000000 : {name}\n", " ".repeat(indent))
            })
            .collect();
        let got = parse_iomem(&hidden);
        assert!(got.hidden);
        assert!(got.ram.is_empty());
        assert_eq!(parse_iomem(""), IomemRam::default());
    }

    #[test]
    fn iomem_bad_lines_are_named() {
        let got = parse_iomem(
            "garbage\n00001000-00000fff : System RAM\n0-zz : System RAM\n1000-1fff : System RAM\n",
        );
        let reasons: Vec<(usize, &str)> =
            got.bad_lines.iter().map(|(i, e)| (*i, e.reason)).collect();
        assert_eq!(
            reasons,
            [
                (0, "no \" : \" between range and name"),
                (1, "end is below start"),
                (2, "end is not hex")
            ]
        );
        assert_eq!(got.ram, [r(0x1000, 0x1000)]);
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,40}", e in ".{0,40}", k in ".{0,40}", io in ".{0,300}") {
            let _ = parse_memmap_entry(&s, &e, &k);
            let p = parse_iomem(&io);
            for w in p.ram.windows(2) {
                prop_assert!(w[0].last().raw().saturating_add(1) < w[1].start.raw());
            }
        }

        #[test]
        fn merged_ranges_cover_the_same_bytes(v in proptest::collection::vec((0u64..64, 1u64..8), 0..12)) {
            let input: Vec<RamRange> = v.iter().map(|&(s, n)| RamRange { start: PhysAddr::new(s), size: n }).collect();
            let out = merge_ranges(input.clone());
            for a in 0u64..80 {
                let inside = |rs: &[RamRange]| rs.iter().any(|r| r.start.raw() <= a && a <= r.last().raw());
                prop_assert_eq!(inside(&input), inside(&out), "byte {}", a);
            }
            for w in out.windows(2) {
                prop_assert!(w[0].last().raw() + 1 < w[1].start.raw());
            }
        }
    }
}
