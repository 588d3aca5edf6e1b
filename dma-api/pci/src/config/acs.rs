//! Access Control Services: the switch and root-port knobs that decide
//! whether peer-to-peer TLPs go straight across or up to the root complex.
//!
//! Bits are `PCI_ACS_*` from include/uapi/linux/pci_regs.h; Linux's P2P code
//! (`pci_bridge_has_acs_redir`, drivers/pci/p2pdma.c) treats RR, CR and EC in
//! the control register as "redirect".

use super::bytes::{read_u16, read_u8};
use super::error::ConfigError;
use super::ext_caps::ExtCapability;
use super::regs;

bitflags::bitflags! {
    /// ACS capability / control bits (same layout in both registers).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct AcsBits: u16 {
        /// Source Validation.
        const SV = 0x0001;
        /// Translation Blocking.
        const TB = 0x0002;
        /// P2P Request Redirect.
        const RR = 0x0004;
        /// P2P Completion Redirect.
        const CR = 0x0008;
        /// Upstream Forwarding.
        const UF = 0x0010;
        /// P2P Egress Control.
        const EC = 0x0020;
        /// Direct Translated P2P.
        const DT = 0x0040;
    }
}

impl AcsBits {
    /// The bits Linux counts as redirecting P2P (`RR | CR | EC`).
    pub const REDIRECT: AcsBits = AcsBits::RR.union(AcsBits::CR).union(AcsBits::EC);
}

/// The ACS extended capability's registers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AcsRegs {
    /// Offset of the ACS extended capability.
    pub offset: u16,
    /// What the port supports (capability register bits 6:0).
    pub cap: AcsBits,
    /// What is enabled (control register bits 6:0).
    pub ctrl: AcsBits,
    /// Egress control vector size (capability register bits 15:8); only
    /// meaningful when `cap` has EC. 0 encodes 256 ports, per the spec.
    pub egress_vector_bits: u8,
    /// The raw capability register, including bits not decoded above.
    pub cap_raw: u16,
    /// The raw control register, including bits not decoded above.
    pub ctrl_raw: u16,
}

impl AcsRegs {
    /// True if an enabled bit redirects P2P (Linux `pci_bridge_has_acs_redir`).
    pub fn redirects(&self) -> bool {
        self.ctrl.intersects(AcsBits::REDIRECT)
    }
}

/// Reads the ACS registers of the capability at `cap`.
pub fn decode_acs(buf: &[u8], cap: ExtCapability) -> Result<AcsRegs, ConfigError> {
    let base = usize::from(cap.offset);
    let cap_raw = read_u16(buf, base + regs::ACS_CAP)?;
    let ctrl_raw = read_u16(buf, base + regs::ACS_CTRL)?;
    Ok(AcsRegs {
        offset: cap.offset,
        cap: AcsBits::from_bits_truncate(cap_raw),
        ctrl: AcsBits::from_bits_truncate(ctrl_raw),
        egress_vector_bits: read_u8(buf, base + regs::ACS_EGRESS_BITS)?,
        cap_raw,
        ctrl_raw,
    })
}
