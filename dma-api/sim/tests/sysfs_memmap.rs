//! Synthetic `firmware/memmap` trees and `/proc/iomem` files read back by
//! `sysfs::ram`, plus the live `/sys/firmware/memmap` when there is one.
#![cfg(unix)]

#[path = "common/temp_dir.rs"]
mod temp_dir;

use dma_api::PhysAddr;
use dma_sim::sysfs::{read_firmware_memmap, read_iomem, read_ram, Problem, RamRange, RamSource};
use std::fs;
use std::path::{Path, PathBuf};
use temp_dir::TempDir;

fn r(start: u64, size: u64) -> RamRange {
    RamRange {
        start: PhysAddr::new(start),
        size,
    }
}

/// One entry as drivers/firmware/memmap.c prints it (`0x%llx\n`, `%s\n`).
fn entry(root: &Path, n: &str, start: &str, end: &str, ty: &str) -> PathBuf {
    let d = root.join("firmware/memmap").join(n);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("start"), format!("{start}\n")).unwrap();
    fs::write(d.join("end"), format!("{end}\n")).unwrap();
    fs::write(d.join("type"), format!("{ty}\n")).unwrap();
    d
}

#[test]
fn firmware_memmap_ram_only_merged_with_warnings() {
    let tmp = TempDir::new("memmap-tree");
    let root = tmp.path();
    // Firmware order is not address order; 10 sorts after 2 numerically.
    entry(root, "0", "0x0", "0x9fbff", "System RAM");
    entry(root, "1", "0x9fc00", "0xfffff", "Reserved");
    entry(root, "2", "0x100000", "0x7fffffff", "System RAM");
    entry(root, "10", "0x80000000", "0xbfffffff", "System RAM"); // adjacent to 2
    entry(root, "3", "0xc0000000", "0xc00fffff", "ACPI Tables");
    entry(root, "4", "0x100000000", "0x43fffffff", "System RAM");
    let odd = entry(root, "5", "banana", "0x2000", "System RAM");
    let backwards = entry(root, "6", "0x500000000", "0x4ffffffff", "System RAM");
    let missing = entry(root, "7", "0x600000000", "0x6ffffffff", "System RAM");
    fs::remove_file(missing.join("type")).unwrap();
    fs::create_dir_all(root.join("firmware/memmap/extra")).unwrap();

    let (ram, warnings) = read_firmware_memmap(root);
    assert_eq!(
        ram,
        [
            r(0, 0x9_fc00),
            r(0x10_0000, 0xbff0_0000),
            r(0x1_0000_0000, 0x3_4000_0000)
        ]
    );
    let mut got: Vec<(PathBuf, String)> = warnings
        .iter()
        .map(|w| (w.path.clone(), w.what.to_string()))
        .collect();
    got.sort();
    let mut want = vec![
        (
            root.join("firmware/memmap/extra"),
            "expected a memmap entry number, found \"extra\"".to_string(),
        ),
        (
            odd,
            "memmap entry skipped: start is not 0x-prefixed hex (\"banana\")".into(),
        ),
        (
            backwards,
            "memmap entry skipped: end is below start (\"0x500000000 0x4ffffffff\")".into(),
        ),
    ];
    want.sort();
    let missing_warn = got
        .iter()
        .position(|(p, _)| p == &missing.join("type"))
        .expect("missing type file is a warning");
    got.remove(missing_warn);
    assert_eq!(got, want);
    assert!(warnings
        .iter()
        .any(|w| matches!(w.what, Problem::Ram(ref e) if e.reason == "end is below start")));

    // read_ram takes the memmap and ignores the iomem file when it exists.
    let scan = read_ram(root, Some(Path::new("/nonexistent/iomem")));
    assert_eq!(scan.ranges, ram);
    assert_eq!(
        scan.source,
        RamSource::FirmwareMemmap(root.join("firmware/memmap"))
    );
}

#[test]
fn no_memmap_falls_back_to_iomem_only_when_given() {
    let tmp = TempDir::new("memmap-iomem");
    let root = tmp.path();
    let iomem = root.join("iomem");
    fs::write(
        &iomem,
        "00000000-00000fff : Reserved\n\
         00001000-0009fbff : System RAM\n\
         00100000-3fffffff : System RAM\n\
         \x20 01000000-01ffffff : Kernel code\n\
         what is this\n\
         fec00000-fec003ff : IOAPIC 0\n",
    )
    .unwrap();
    let (ram, w) = read_firmware_memmap(root);
    assert!(ram.is_empty() && w.is_empty(), "absent memmap is quiet");

    let scan = read_ram(root, Some(&iomem));
    assert_eq!(
        scan.ranges,
        [r(0x1000, 0x9_ec00), r(0x10_0000, 0x3ff0_0000)]
    );
    assert_eq!(scan.source, RamSource::ProcIomem(iomem.clone()));
    assert_eq!(scan.warnings.len(), 1);
    assert!(matches!(
        scan.warnings[0].what,
        Problem::RamLine { line: 4, .. }
    ));

    // A copy of sysfs gets no /proc: no RAM, no warning.
    let scan = read_ram(root, None);
    assert!(scan.ranges.is_empty() && scan.warnings.is_empty());
    assert_eq!(scan.source, RamSource::None);

    // Not root: every address is 0.
    fs::write(
        &iomem,
        "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n",
    )
    .unwrap();
    let (ram, w) = read_iomem(&iomem);
    assert!(ram.is_empty());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].what, Problem::AddressesHidden);
    assert_eq!(read_ram(root, Some(&iomem)).source, RamSource::None);

    // An empty memmap directory wins over iomem and gives nothing.
    fs::create_dir_all(root.join("firmware/memmap")).unwrap();
    let scan = read_ram(root, Some(&iomem));
    assert!(scan.ranges.is_empty() && scan.warnings.is_empty());
    assert_eq!(scan.source, RamSource::None);
}

#[test]
fn live_firmware_memmap() {
    let root = Path::new("/sys");
    if !root.join("firmware/memmap").is_dir() {
        println!("skipping: no /sys/firmware/memmap");
        return;
    }
    let (ram, warnings) = read_firmware_memmap(root);
    for w in &warnings {
        println!("warning: {w}");
    }
    for x in &ram {
        println!("ram {x}");
    }
    assert!(!ram.is_empty(), "no System RAM in /sys/firmware/memmap");
    for w in ram.windows(2) {
        assert!(w[0].last().raw() + 1 < w[1].start.raw(), "{:?}", w);
    }
}
