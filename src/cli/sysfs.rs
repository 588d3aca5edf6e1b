//! `--sysfs DIR`: a machine read from a sysfs tree (`/sys` or a copy).
//!
//! The scan (`dma_sim::sysfs::read_tree`) and the import
//! (`dma_sim::sysfs::import`) never fail; their warnings travel with the
//! machine to the report. What only the root crate knows is supplied here:
//! the arch (the host's), its default coherency (from the arch backend,
//! picked by name) and, for the live `/sys`, the CPU vendor and family from
//! `/proc/cpuinfo` (the AMD Zen rule of the P2P oracle). A copy of sysfs
//! carries no CPU identity, so it is imported as vendor `other`.
//!
//! RAM comes from `DIR/firmware/memmap` (the firmware map); for the live
//! `/sys` without it, from `/proc/iomem` (addresses need root). A copy of
//! sysfs never reads this machine's `/proc`. The first note says which.

use super::load::{Loaded, Note};
use super::Failure;
use crate::providers::Basis;
use dma_api::topology::{CpuInfo, CpuVendor};
use dma_sim::machine::ArchName;
use dma_sim::sysfs::import::{host_arch, import_with_ram, ImportOptions};
use dma_sim::sysfs::{read_ram, read_tree, RamScan, RamSource};
use std::path::Path;

/// The first note of a sysfs machine: where its RAM ranges came from.
pub(crate) fn ram_note(ram: &RamScan, dir: &Path, live: bool) -> String {
    let total: u64 = ram.ranges.iter().map(|r| r.size).sum();
    let n = ram.ranges.len();
    match &ram.source {
        RamSource::FirmwareMemmap(p) => format!(
            "RAM: {n} range(s), {total:#x} bytes, from the System RAM entries of {}",
            p.display()
        ),
        RamSource::ProcIomem(p) => format!(
            "RAM: {n} range(s), {total:#x} bytes, from the top-level System RAM lines of {} ({} absent)",
            p.display(),
            dir.join("firmware/memmap").display()
        ),
        RamSource::None if live => format!(
            "RAM: none found ({} absent or without System RAM, /proc/iomem unreadable or hidden): the memory map holds the memory BARs only",
            dir.join("firmware/memmap").display()
        ),
        RamSource::None => format!(
            "RAM: none found ({} absent or without System RAM): the memory map holds the memory BARs only",
            dir.join("firmware/memmap").display()
        ),
    }
}
/// Second note: windows are assumed.
pub(crate) const WINDOW_NOTE: &str = "host-bridge MMIO windows are identity windows over the BARs below each bridge (sysfs shows CPU addresses only)";
/// Third note: which devices are providers.
pub(crate) const PROVIDER_NOTE: &str = "p2pmem registrations are not imported (sysfs shows no registered BAR ranges): providers are candidates, the endpoints with a memory BAR, not registered p2pmem providers; mapping a candidate's BAR needs a registration";

/// CPU identity from `/proc/cpuinfo` (x86 `vendor_id` and `cpu family`).
fn cpu_from_proc(arch: ArchName) -> (CpuInfo, Vec<Note>) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpu_from_cpuinfo(&text, "/proc/cpuinfo", arch)
}

/// CPU identity from the text of a `/proc/cpuinfo` (`path` names it in
/// warnings).
///
/// A `cpu family` that is not a number leaves the family unknown (0, which
/// no x86 CPU has) with a warning: the family decides the AMD Zen P2P rule
/// (family >= 0x17), so a guess would change verdicts silently.
fn cpu_from_cpuinfo(text: &str, path: &str, arch: ArchName) -> (CpuInfo, Vec<Note>) {
    let mut warnings = Vec::new();
    let x86 = arch == ArchName::X86_64;
    let mut cpu = CpuInfo {
        vendor: CpuVendor::Other,
        family: 0,
        x86,
    };
    for line in text.lines().take(64) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match (k.trim(), v.trim()) {
            ("vendor_id", "AuthenticAMD") => cpu.vendor = CpuVendor::Amd,
            ("vendor_id", "GenuineIntel") => cpu.vendor = CpuVendor::Intel,
            ("cpu family", f) => match f.parse() {
                Ok(n) => cpu.family = n,
                Err(e) => {
                    cpu.family = 0;
                    warnings.push(Note {
                        path: path.to_string(),
                        what: format!(
                            "cpu family {f:?} is not a number ({e}): the CPU family is unknown (reported as 0), so the AMD family >= 0x17 P2P rule is not applied"
                        ),
                    });
                }
            },
            _ => {}
        }
    }
    (cpu, warnings)
}

pub(crate) fn machine(dir: &Path) -> Result<Loaded, Failure> {
    if !dir.is_dir() {
        return Err(Failure::bad_input(format!(
            "--sysfs {}: not a directory",
            dir.display()
        )));
    }
    let (arch, arch_note) = match host_arch() {
        Some(a) => (a, None),
        None => (
            ArchName::X86_64,
            Some(format!(
                "host arch {} has no backend; x86_64 assumed",
                std::env::consts::ARCH
            )),
        ),
    };
    let backend = dma_arch::by_name(arch.name()).map_err(|e| Failure::bad_input(e.to_string()))?;
    let live = std::fs::canonicalize(dir).is_ok_and(|p| p == Path::new("/sys"));
    let (cpu, cpu_warnings) = if live {
        cpu_from_proc(arch)
    } else {
        (
            CpuInfo {
                vendor: CpuVendor::Other,
                family: 0,
                x86: arch == ArchName::X86_64,
            },
            Vec::new(),
        )
    };
    let scan = read_tree(dir);
    if scan.devices.is_empty() {
        // Nothing to describe: not a sysfs tree, or one without PCI (an
        // empty copy, a mistyped path). Reporting an empty machine would
        // pass for "this computer has no PCI devices".
        let first = scan
            .warnings
            .first()
            .map(|w| format!(" ({}: {})", w.path.display(), w.what))
            .unwrap_or_default();
        return Err(Failure::bad_input(format!(
            "--sysfs {}: no PCI devices under {}{first}",
            dir.display(),
            dir.join("bus/pci/devices").display()
        )));
    }
    let opts = ImportOptions {
        name: if live {
            "sysfs-live".into()
        } else {
            "sysfs".into()
        },
        source: dir.display().to_string(),
        arch,
        cpu,
        default_coherent: backend.info().default_coherent,
    };
    let ram = read_ram(dir, live.then_some(Path::new("/proc/iomem")));
    let imp = import_with_ram(&scan, &ram.ranges, &opts);
    let mut warnings: Vec<Note> = scan
        .warnings
        .iter()
        .map(|w| Note {
            path: w.path.display().to_string(),
            what: w.what.to_string(),
        })
        .collect();
    warnings.extend(ram.warnings.iter().map(|w| Note {
        path: w.path.display().to_string(),
        what: w.what.to_string(),
    }));
    warnings.extend(imp.warnings.iter().map(|w| Note {
        path: w.path.display().to_string(),
        what: match w.bdf {
            Some(b) => format!("{b}: {}", w.what),
            None => w.what.to_string(),
        },
    }));
    warnings.extend(cpu_warnings);
    let mut notes = vec![
        ram_note(&ram, dir, live),
        WINDOW_NOTE.to_string(),
        PROVIDER_NOTE.to_string(),
    ];
    notes.extend(arch_note);
    Ok(Loaded {
        machine: imp.machine,
        warnings,
        notes,
        basis: Basis::Candidates,
        acs_overrides: Vec::new(),
        acs_warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n";

    #[test]
    fn cpuinfo_gives_vendor_and_family() {
        let (cpu, w) = cpu_from_cpuinfo(AMD, "/proc/cpuinfo", ArchName::X86_64);
        assert_eq!(cpu.vendor, CpuVendor::Amd);
        assert_eq!(cpu.family, 25);
        assert!(cpu.supports_p2pdma());
        assert!(w.is_empty(), "{w:?}");
    }

    /// Bug: an unparsable `cpu family` silently became family 0, which
    /// decides the AMD P2P rule. It is a warning, and the family is unknown.
    #[test]
    fn an_unparsable_cpu_family_is_a_warning_not_a_silent_zero() {
        let text = AMD.replace("cpu family\t: 25", "cpu family\t: twenty-five");
        let (cpu, w) = cpu_from_cpuinfo(&text, "/proc/cpuinfo", ArchName::X86_64);
        assert_eq!(cpu.vendor, CpuVendor::Amd);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "/proc/cpuinfo");
        assert!(
            w[0].what.contains("twenty-five") && w[0].what.contains("unknown"),
            "{:?}",
            w[0]
        );
        assert!(!cpu.supports_p2pdma(), "an unknown family is not Zen");
    }
}
