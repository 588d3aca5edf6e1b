//! Vendor and device names from the PCI ID database (`pci.ids`, the file
//! `lspci` reads), shown beside the numeric IDs the way `lspci` shows them
//! (`8086:2030 Intel Corporation Sky Lake-E PCI Express Root Port A`).
//!
//! The machine model keeps numbers only; names are presentation, looked up
//! here by the CLI. [`PciIds::parse`] reads the database text (the system's
//! `/usr/share/misc/pci.ids` or `/usr/share/hwdata/pci.ids`, or a file the
//! user names); [`PciIds::embedded`] is a small excerpt covering the IDs of
//! the example machines, used when the system has no database and by the
//! golden tests (so their output does not depend on the host).

mod embedded;
mod parse;

pub use embedded::EMBEDDED_PCI_IDS;
pub use parse::{PciIdsError, PciIdsErrorKind};

use std::collections::BTreeMap;

/// One vendor: its name and its devices' names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Vendor {
    name: String,
    devices: BTreeMap<u16, String>,
}

/// A parsed PCI ID database: vendor and device names by ID. Subsystem and
/// class entries are checked for syntax and not kept (nothing shows them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciIds {
    vendors: BTreeMap<u16, Vendor>,
}

impl PciIds {
    /// Parses the text of a `pci.ids` file; see [`parse`](self) for the
    /// grammar. Bad input is a [`PciIdsError`] naming line and column.
    pub fn parse(text: &str) -> Result<Self, PciIdsError> {
        parse::parse(text)
    }

    /// Parses raw bytes: text that is not UTF-8 is an error at the line and
    /// column of the first bad byte.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, PciIdsError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text),
            Err(e) => Err(parse::not_utf8(bytes, e.valid_up_to())),
        }
    }

    /// The embedded excerpt ([`EMBEDDED_PCI_IDS`]).
    pub fn embedded() -> Result<Self, PciIdsError> {
        Self::parse(EMBEDDED_PCI_IDS)
    }

    /// Number of vendors.
    pub fn vendor_count(&self) -> usize {
        self.vendors.len()
    }

    /// Number of devices over all vendors.
    pub fn device_count(&self) -> usize {
        self.vendors.values().map(|v| v.devices.len()).sum()
    }

    /// The vendor's name, if the database knows it.
    pub fn vendor(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(|v| v.name.as_str())
    }

    /// The device's name, if the database knows it.
    pub fn device(&self, vendor: u16, device: u16) -> Option<&str> {
        self.vendors
            .get(&vendor)?
            .devices
            .get(&device)
            .map(String::as_str)
    }

    /// The name `lspci` prints for a function (pciutils lib/names.c,
    /// `pci_lookup_name` with `PCI_LOOKUP_VENDOR | PCI_LOOKUP_DEVICE`):
    /// `"<vendor> <device>"`, `"<vendor> Device <dddd>"` when only the
    /// vendor is known, `"Device <vvvv>:<dddd>"` when neither is.
    pub fn describe(&self, vendor: u16, device: u16) -> String {
        match (self.vendor(vendor), self.device(vendor, device)) {
            (Some(v), Some(d)) => format!("{v} {d}"),
            (Some(v), None) => format!("{v} Device {device:04x}"),
            (None, _) => format!("Device {vendor:04x}:{device:04x}"),
        }
    }

    /// Every vendor and device entry, in ID order: `(vendor, None, name)`
    /// for a vendor, `(vendor, Some(device), name)` for its devices.
    pub fn entries(&self) -> impl Iterator<Item = (u16, Option<u16>, &str)> + '_ {
        self.vendors.iter().flat_map(|(v, ven)| {
            std::iter::once((*v, None, ven.name.as_str())).chain(
                ven.devices
                    .iter()
                    .map(move |(d, name)| (*v, Some(*d), name.as_str())),
            )
        })
    }
}

#[cfg(test)]
mod tests;
