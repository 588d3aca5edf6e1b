//! PCI configuration space, decoded from a byte buffer (`no_std + alloc`).
//!
//! The input is what `/sys/bus/pci/devices/*/config` returns (or a simulated
//! image): 64, 256 or 4096 bytes, possibly truncated. The output is typed
//! (header, BARs, [`PcieType`], [`AcsBits`]) and every oddity is a
//! [`ConfigError`] naming the offset and value at fault; nothing here panics
//! on any input. Semantics follow drivers/pci/probe.c, drivers/pci/pci.c and
//! include/uapi/linux/pci_regs.h, as each file's docs say.

pub mod acs;
pub mod bar;
pub mod builder;
pub mod bytes;
pub mod caps;
pub mod error;
pub mod ext_caps;
pub mod header;
pub mod host_bridge;
pub mod parse;
pub mod pcie;
pub mod regs;

#[cfg(test)]
mod tests;

pub use acs::{AcsBits, AcsRegs};
pub use bar::{BarKind, ConfigBar};
pub use builder::ConfigBuilder;
pub use caps::{walk_caps, CapWalk, Capability};
pub use error::ConfigError;
pub use ext_caps::{walk_ext_caps, ExtCapability};
pub use header::{BridgeBuses, ConfigHeader, HeaderType};
pub use host_bridge::{HostBridgeId, HostBridgeParseError};
pub use parse::{parse_config, ParsedConfig};
pub use pcie::{PcieCap, PcieType};
