//! The standard 64-byte header: identity, class, header type, bridge buses.
//!
//! Field positions follow `include/uapi/linux/pci_regs.h`; the absent-device
//! check matches `pci_bus_generic_read_dev_vendor_id` in drivers/pci/probe.c.

use super::bytes::{read_u16, read_u32, read_u8};
use super::error::ConfigError;
use super::regs;

/// The layout of the header (bits 6:0 of the header-type byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HeaderType {
    /// Type 0: an ordinary function (endpoint), six BARs.
    Normal,
    /// Type 1: a PCI-to-PCI bridge (root port, switch port, ...), two BARs.
    Bridge,
    /// Type 2: a CardBus bridge, no BARs decoded here.
    CardBus,
}

impl HeaderType {
    /// Decodes bits 6:0; `None` for a reserved layout.
    pub const fn from_raw(raw: u8) -> Option<Self> {
        match raw & regs::HEADER_TYPE_MASK {
            0 => Some(HeaderType::Normal),
            1 => Some(HeaderType::Bridge),
            2 => Some(HeaderType::CardBus),
            _ => None,
        }
    }

    /// How many BAR slots the layout has.
    pub const fn bar_slots(self) -> usize {
        match self {
            HeaderType::Normal => 6,
            HeaderType::Bridge => 2,
            HeaderType::CardBus => 0,
        }
    }

    /// Where the capability pointer lives for this layout.
    pub const fn cap_pointer_offset(self) -> usize {
        match self {
            HeaderType::Normal | HeaderType::Bridge => regs::CAPABILITY_LIST,
            HeaderType::CardBus => regs::CB_CAPABILITY_LIST,
        }
    }
}

/// Bus numbers of a type 1 (bridge) header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BridgeBuses {
    /// The bus the bridge itself sits on.
    pub primary: u8,
    /// The bus directly below the bridge.
    pub secondary: u8,
    /// The highest bus number below the bridge.
    pub subordinate: u8,
}

/// The decoded standard header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConfigHeader {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Command register.
    pub command: u16,
    /// Status register.
    pub status: u16,
    /// 24-bit class code (base class, sub-class, programming interface).
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// The raw header-type byte (including the multi-function bit).
    pub header_type_raw: u8,
    /// The decoded layout; `None` for a reserved value.
    pub header_type: Option<HeaderType>,
    /// Bit 7 of the header-type byte: the device has more than one function.
    pub multifunction: bool,
    /// Bus numbers, for a type 1 header.
    pub bridge_buses: Option<BridgeBuses>,
}

impl ConfigHeader {
    /// True if the status register advertises a capability list.
    pub const fn has_cap_list(&self) -> bool {
        self.status & regs::STATUS_CAP_LIST != 0
    }
}

/// Decodes the standard header. Needs the first 64 bytes; fails with
/// [`ConfigError::NoDevice`] for the absent-function ID patterns.
pub fn parse_header(buf: &[u8]) -> Result<ConfigHeader, ConfigError> {
    if buf.len() < regs::STD_HEADER_SIZE {
        return Err(ConfigError::Truncated {
            needed: regs::STD_HEADER_SIZE,
            len: buf.len(),
        });
    }
    let id = read_u32(buf, regs::VENDOR_ID)?;
    if id == 0xffff_ffff || id == 0 || id == 0x0000_ffff || id == 0xffff_0000 {
        return Err(ConfigError::NoDevice { id });
    }
    let class_rev = read_u32(buf, regs::CLASS_REVISION)?;
    let ht = read_u8(buf, regs::HEADER_TYPE)?;
    let header_type = HeaderType::from_raw(ht);
    let bridge_buses = if header_type == Some(HeaderType::Bridge) {
        Some(BridgeBuses {
            primary: read_u8(buf, regs::PRIMARY_BUS)?,
            secondary: read_u8(buf, regs::SECONDARY_BUS)?,
            subordinate: read_u8(buf, regs::SUBORDINATE_BUS)?,
        })
    } else {
        None
    };
    Ok(ConfigHeader {
        vendor: read_u16(buf, regs::VENDOR_ID)?,
        device: read_u16(buf, regs::DEVICE_ID)?,
        command: read_u16(buf, regs::COMMAND)?,
        status: read_u16(buf, regs::STATUS)?,
        class: class_rev >> 8,
        revision: (class_rev & 0xff) as u8,
        header_type_raw: ht,
        header_type,
        multifunction: ht & regs::HEADER_TYPE_MFD != 0,
        bridge_buses,
    })
}
