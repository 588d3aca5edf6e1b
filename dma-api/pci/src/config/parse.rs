//! One call that decodes everything the topology needs from a config-space
//! buffer: header, BARs, capability lists, PCI Express type and ACS.
//!
//! The buffer may be 64 bytes (what sysfs gives a non-root reader), 256
//! (conventional PCI) or 4096 (PCI Express), or anything in between. Only a
//! buffer shorter than the 64-byte header, or one whose IDs say "no function",
//! is an error; everything else decodes as far as the bytes allow and the
//! problems met are listed in [`ParsedConfig::issues`].

use super::acs::{decode_acs, AcsRegs};
use super::bar::{decode_bars, ConfigBar};
use super::caps::{find_cap, walk_caps, Capability};
use super::error::ConfigError;
use super::ext_caps::{find_ext_cap, walk_ext_caps, ExtCapability};
use super::header::{parse_header, ConfigHeader};
use super::pcie::{decode_pcie, PcieCap, PcieType};
use super::regs;
use alloc::vec::Vec;

/// Everything decoded from one function's config space.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParsedConfig {
    /// Bytes in the buffer that was decoded.
    pub len: usize,
    /// The standard header.
    pub header: ConfigHeader,
    /// BARs (bus addresses; sizes are not knowable from the values).
    pub bars: Vec<ConfigBar>,
    /// Standard capabilities in list order.
    pub caps: Vec<Capability>,
    /// The PCI Express capability, if found.
    pub pcie: Option<PcieCap>,
    /// Extended capabilities in list order (empty for a buffer of 256 bytes or less).
    pub ext_caps: Vec<ExtCapability>,
    /// The ACS capability, if found.
    pub acs: Option<AcsRegs>,
    /// Non-fatal problems, in the order met.
    pub issues: Vec<ConfigError>,
}

impl ParsedConfig {
    /// The PCI Express device/port type, if known.
    pub fn pcie_type(&self) -> Option<PcieType> {
        self.pcie.and_then(|p| p.port_type)
    }

    /// True if the buffer was too short to hold the standard capability list
    /// the header advertises (e.g. a 64-byte non-root sysfs read).
    pub fn caps_truncated(&self) -> bool {
        self.issues
            .iter()
            .any(|i| matches!(i, ConfigError::Truncated { .. }))
    }
}

/// Decodes a config-space buffer. See the module docs for what fails.
pub fn parse_config(buf: &[u8]) -> Result<ParsedConfig, ConfigError> {
    let header = parse_header(buf)?;
    let mut issues = Vec::new();
    let slots = match header.header_type {
        Some(ht) => ht.bar_slots(),
        None => {
            issues.push(ConfigError::UnknownHeaderType {
                value: header.header_type_raw,
            });
            0
        }
    };
    let bars = decode_bars(buf, slots, &mut issues)?;
    let mut caps = Vec::new();
    let mut pcie = None;
    if let (true, Some(ht)) = (header.has_cap_list(), header.header_type) {
        let walk = walk_caps(buf, ht.cap_pointer_offset());
        issues.extend_from_slice(&walk.issues);
        if let Some(cap) = find_cap(&walk, regs::CAP_ID_EXP) {
            match decode_pcie(buf, cap, &mut issues) {
                Ok(p) => pcie = Some(p),
                Err(e) => issues.push(e),
            }
        }
        caps = walk.caps;
    }
    let mut ext_caps = Vec::new();
    let mut acs = None;
    // Extended space is read only for PCI Express functions, as Linux
    // `pci_cfg_space_size` does (it also reads it for PCI-X 266/533
    // functions; we do not decode PCI-X).
    if pcie.is_some() {
        let walk = walk_ext_caps(buf);
        issues.extend_from_slice(&walk.issues);
        if let Some(cap) = find_ext_cap(&walk, regs::EXT_CAP_ID_ACS) {
            match decode_acs(buf, cap) {
                Ok(a) => acs = Some(a),
                Err(e) => issues.push(e),
            }
        }
        ext_caps = walk.caps;
    }
    Ok(ParsedConfig {
        len: buf.len(),
        header,
        bars,
        caps,
        pcie,
        ext_caps,
        acs,
        issues,
    })
}
