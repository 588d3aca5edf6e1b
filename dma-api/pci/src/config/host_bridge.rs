//! The name of a PCI host bridge (root bus) as Linux spells it in sysfs.
//!
//! drivers/pci/probe.c names the host bridge device `pci%04x:%02x`
//! (domain, root bus number); every function below it has that component in
//! its `/sys/devices/...` path.

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

/// A host bridge / root bus: `pci0000:00` is domain 0, root bus 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct HostBridgeId {
    /// PCI domain (segment); may exceed 0xffff (VMD).
    pub domain: u32,
    /// Root bus number.
    pub bus: u8,
}

/// Why a string is not a host-bridge name; carries the input.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostBridgeParseError {
    /// The text that failed to parse.
    pub input: String,
}

impl fmt::Display for HostBridgeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a host bridge name (pciDDDD:BB): {:?}", self.input)
    }
}

impl core::error::Error for HostBridgeParseError {}

fn hex_ok(s: &str, max_len: usize) -> bool {
    !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl FromStr for HostBridgeId {
    type Err = HostBridgeParseError;

    /// Parses `pciDDDD:BB` (hex; the domain has 4 to 8 digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HostBridgeParseError {
            input: s.to_string(),
        };
        let rest = s.strip_prefix("pci").ok_or_else(err)?;
        let (dom, bus) = rest.split_once(':').ok_or_else(err)?;
        if !hex_ok(dom, 8) || dom.len() < 4 || !hex_ok(bus, 2) || bus.len() != 2 {
            return Err(err());
        }
        Ok(Self {
            domain: u32::from_str_radix(dom, 16).map_err(|_| err())?,
            bus: u8::from_str_radix(bus, 16).map_err(|_| err())?,
        })
    }
}

impl fmt::Display for HostBridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pci{:04x}:{:02x}", self.domain, self.bus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn round_trips_and_rejects() {
        let h: HostBridgeId = "pci0000:00".parse().unwrap();
        assert_eq!(h, HostBridgeId { domain: 0, bus: 0 });
        let v: HostBridgeId = "pci10000:e0".parse().unwrap();
        assert_eq!((v.domain, v.bus), (0x10000, 0xe0));
        assert_eq!(format!("{v}"), "pci10000:e0");
        for bad in [
            "pci0000",
            "pc0000:00",
            "pci00:00",
            "pci0000:0",
            "pci0000:000",
            "pcixxxx:00",
        ] {
            assert_eq!(bad.parse::<HostBridgeId>().unwrap_err().input, bad);
        }
    }
}
