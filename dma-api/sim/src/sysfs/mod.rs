//! Reading a Linux `/sys/bus/pci/devices` tree into plain records (`std`).
//!
//! [`read_tree`] visits every entry (a symlink to the function's directory
//! under `/sys/devices`), reads the ID files, the `resource` file, the
//! binary `config` file (decoded with [`dma_pci::config`]), the optional
//! `numa_node`, `iommu_group`, `driver` and `dma_mask_bits`, and derives the
//! upstream bridge and host bridge from the canonical path. Nothing it meets
//! is fatal: unreadable or odd files become [`Warning`]s naming the path and
//! the problem, and the scan goes on. Turning records into a topology is
//! another layer's job. [`ram`] reads system RAM from `firmware/memmap`
//! (or `/proc/iomem`), which the PCI tree does not describe.

pub mod attr;
pub mod device;
pub mod import;
pub mod path;
pub mod ram;
pub mod record;
pub mod resource;
pub mod warning;

pub use path::{parse_device_path, DevicePath};
pub use ram::{
    parse_iomem, parse_memmap_entry, read_firmware_memmap, read_iomem, read_ram, RamRange, RamScan,
    RamSource,
};
pub use record::{RawBar, RawPciDevice, SysfsScan};
pub use resource::{parse_resource, ResourceError, ResourceFlags, ResourceLine};
pub use warning::{Problem, Warning};

use dma_pci::bdf::Bdf;
use std::path::Path;

/// Reads every function under `dir`, which is either a sysfs root (`/sys`,
/// then `bus/pci/devices` is appended) or a devices directory itself.
/// Functions come back sorted by BDF.
pub fn read_tree(dir: &Path) -> SysfsScan {
    let mut scan = SysfsScan::default();
    let nested = dir.join("bus").join("pci").join("devices");
    // A sysfs root without PCI (no `bus/pci`) is reported once instead of
    // reading `/sys` itself as a devices directory.
    let devices_dir = if nested.is_dir() || dir.join("bus").is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let entries = match std::fs::read_dir(&devices_dir) {
        Ok(e) => e,
        Err(e) => {
            scan.warnings.push(Warning {
                path: devices_dir,
                what: Problem::io(&e),
            });
            return scan;
        }
    };
    let mut names: Vec<(Bdf, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                scan.warnings.push(Warning {
                    path: devices_dir.clone(),
                    what: Problem::io(&e),
                });
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.parse::<Bdf>() {
            Ok(bdf) => names.push((bdf, entry.path())),
            Err(e) => scan.warnings.push(Warning {
                path: entry.path(),
                what: Problem::BadName(e),
            }),
        }
    }
    names.sort();
    for (bdf, path) in names {
        if let Some(dev) = device::read_device(&path, bdf, &mut scan.warnings) {
            scan.devices.push(dev);
        }
    }
    scan
}
