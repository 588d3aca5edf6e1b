//! Reads the real `/sys/bus/pci/devices` when the machine has one: the scan
//! must not panic and every function must carry a BDF matching its entry.
#![cfg(target_os = "linux")]

use dma_api::Bdf;
use dma_sim::sysfs::read_tree;
use std::path::Path;

#[test]
fn live_sysfs_scan_is_consistent() {
    let dir = Path::new("/sys/bus/pci/devices");
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            println!("skipping: {} not readable ({e})", dir.display());
            return;
        }
    };
    if names.is_empty() {
        println!("skipping: {} is empty", dir.display());
        return;
    }
    let scan = read_tree(Path::new("/sys"));
    for w in &scan.warnings {
        println!("warning: {w}");
    }
    let mut expected: Vec<Bdf> = names
        .iter()
        .map(|n| n.parse().expect("live entry is a BDF"))
        .collect();
    expected.sort();
    let found: Vec<Bdf> = scan.devices.iter().map(|d| d.bdf).collect();
    assert_eq!(found, expected);
    for d in &scan.devices {
        println!(
            "{} {:04x}:{:04x} class {:06x} {:?} {:?} acs {:?} bars {} parent {:?}",
            d.bdf,
            d.vendor,
            d.device,
            d.class,
            d.header_type,
            d.pcie_type,
            d.acs.map(|a| (a.cap, a.ctrl)),
            d.bars.len(),
            d.parent
        );
        assert!(d.host_bridge.is_some(), "{} has no host bridge", d.bdf);
        assert!(d.config_len >= 64, "{} config unreadable", d.bdf);
        if let Some(p) = d.parent {
            assert!(found.contains(&p), "{}'s parent {p} not found", d.bdf);
        }
        for b in &d.bars {
            assert!(b.size > 0 && b.start.checked_add(b.size - 1).is_some());
        }
    }
}
