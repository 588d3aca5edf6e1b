//! The PCI Express capability: which kind of port or endpoint a function is.
//!
//! Type values are `PCI_EXP_TYPE_*` from include/uapi/linux/pci_regs.h
//! (bits 7:4 of the PCI Express capabilities register, `PCI_EXP_FLAGS_TYPE`).

use super::bytes::read_u16;
use super::caps::Capability;
use super::error::ConfigError;
use super::regs;

/// The PCI Express device/port type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PcieType {
    /// 0: PCI Express endpoint.
    Endpoint,
    /// 1: legacy PCI Express endpoint.
    LegacyEndpoint,
    /// 4: root port of a root complex.
    RootPort,
    /// 5: upstream port of a switch.
    UpstreamPort,
    /// 6: downstream port of a switch.
    DownstreamPort,
    /// 7: PCI Express to PCI/PCI-X bridge.
    PcieToPciBridge,
    /// 8: PCI/PCI-X to PCI Express bridge.
    PciToPcieBridge,
    /// 9: root-complex integrated endpoint (RCiEP).
    RcIntegratedEndpoint,
    /// 10: root complex event collector.
    RcEventCollector,
}

impl PcieType {
    /// Decodes the 4-bit type field; `None` for reserved values.
    pub const fn from_raw(raw: u8) -> Option<Self> {
        Some(match raw {
            0x0 => PcieType::Endpoint,
            0x1 => PcieType::LegacyEndpoint,
            0x4 => PcieType::RootPort,
            0x5 => PcieType::UpstreamPort,
            0x6 => PcieType::DownstreamPort,
            0x7 => PcieType::PcieToPciBridge,
            0x8 => PcieType::PciToPcieBridge,
            0x9 => PcieType::RcIntegratedEndpoint,
            0xa => PcieType::RcEventCollector,
            _ => return None,
        })
    }

    /// The 4-bit type field value.
    pub const fn raw(self) -> u8 {
        match self {
            PcieType::Endpoint => 0x0,
            PcieType::LegacyEndpoint => 0x1,
            PcieType::RootPort => 0x4,
            PcieType::UpstreamPort => 0x5,
            PcieType::DownstreamPort => 0x6,
            PcieType::PcieToPciBridge => 0x7,
            PcieType::PciToPcieBridge => 0x8,
            PcieType::RcIntegratedEndpoint => 0x9,
            PcieType::RcEventCollector => 0xa,
        }
    }

    /// True for the types that forward traffic between a primary and a
    /// secondary bus (root, switch up/down ports and the two bridge kinds).
    pub const fn is_bridge(self) -> bool {
        matches!(
            self,
            PcieType::RootPort
                | PcieType::UpstreamPort
                | PcieType::DownstreamPort
                | PcieType::PcieToPciBridge
                | PcieType::PciToPcieBridge
        )
    }
}

/// The decoded PCI Express capability.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PcieCap {
    /// Offset of the capability in config space.
    pub offset: u16,
    /// Capability version (bits 3:0).
    pub version: u8,
    /// The raw type field (bits 7:4).
    pub type_raw: u8,
    /// The decoded type; `None` for a reserved value.
    pub port_type: Option<PcieType>,
}

/// Decodes the capability found at `cap`; a reserved type is reported as
/// [`ConfigError::UnknownPcieType`] in `issues`, not as a failure.
pub fn decode_pcie(
    buf: &[u8],
    cap: Capability,
    issues: &mut alloc::vec::Vec<ConfigError>,
) -> Result<PcieCap, ConfigError> {
    let flags = read_u16(buf, usize::from(cap.offset) + regs::EXP_FLAGS)?;
    let type_raw = ((flags & regs::EXP_FLAGS_TYPE) >> 4) as u8;
    let port_type = PcieType::from_raw(type_raw);
    if port_type.is_none() {
        issues.push(ConfigError::UnknownPcieType {
            offset: cap.offset,
            value: type_raw,
        });
    }
    Ok(PcieCap {
        offset: cap.offset,
        version: (flags & regs::EXP_FLAGS_VERS) as u8,
        type_raw,
        port_type,
    })
}
