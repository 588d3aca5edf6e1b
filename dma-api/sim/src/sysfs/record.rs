//! The plain records a sysfs scan produces, before any topology is built.

use super::warning::Warning;
use dma_pci::bdf::Bdf;
use dma_pci::config::{AcsRegs, BridgeBuses, HeaderType, HostBridgeId, PcieType};
use dma_pci::types::PhysAddr;
use std::path::PathBuf;

/// One resource slot with an address range (from the `resource` file).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RawBar {
    /// Slot index: 0..=5 BARs, 6 expansion ROM, higher values are SR-IOV or
    /// bridge-window slots (numbering depends on the kernel configuration).
    pub index: usize,
    /// First CPU physical address.
    pub start: PhysAddr,
    /// Size in bytes.
    pub size: u64,
    /// Memory space (`IORESOURCE_MEM`).
    pub is_mem: bool,
    /// I/O port space (`IORESOURCE_IO`).
    pub is_io: bool,
    /// 64-bit BAR (`IORESOURCE_MEM_64`).
    pub is_64: bool,
    /// Prefetchable (`IORESOURCE_PREFETCH`).
    pub prefetch: bool,
}

/// One PCI function as sysfs describes it. Fields that could not be read
/// are `None`/empty and a [`Warning`] says why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RawPciDevice {
    /// The function's address (the directory entry's name).
    pub bdf: Bdf,
    /// The upstream bridge function, from the canonical path; `None` on a
    /// root bus (or when the path could not be resolved).
    pub parent: Option<Bdf>,
    /// The host bridge / root bus the function is under, from the canonical path.
    pub host_bridge: Option<HostBridgeId>,
    /// The canonical `/sys/devices/...` path (empty if it could not be resolved).
    pub sysfs_path: PathBuf,
    /// Vendor ID (`vendor` file, else config space).
    pub vendor: u16,
    /// Device ID (`device` file, else config space).
    pub device: u16,
    /// 24-bit class code (`class` file, else config space).
    pub class: u32,
    /// Revision (`revision` file, else config space).
    pub revision: Option<u8>,
    /// Header layout, from config space.
    pub header_type: Option<HeaderType>,
    /// Multi-function bit of the header type, from config space.
    pub multifunction: Option<bool>,
    /// Bus numbers of a bridge, from config space.
    pub bridge_buses: Option<BridgeBuses>,
    /// PCI Express device/port type; `None` for conventional PCI or when the
    /// config read was too short (64 bytes for a non-root reader).
    pub pcie_type: Option<PcieType>,
    /// ACS capability and control registers, if the function has ACS.
    pub acs: Option<AcsRegs>,
    /// Bytes of config space that were readable (0 if none).
    pub config_len: usize,
    /// Resource slots with a range assigned.
    pub bars: Vec<RawBar>,
    /// NUMA node (`numa_node`; -1 means none and becomes `None`).
    pub numa_node: Option<u32>,
    /// IOMMU group number (name of the `iommu_group` link target).
    pub iommu_group: Option<u32>,
    /// Bound driver (name of the `driver` link target).
    pub driver: Option<String>,
    /// Width of the current DMA mask (`dma_mask_bits`).
    pub dma_mask_bits: Option<u32>,
}

/// The result of reading a devices directory.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SysfsScan {
    /// Functions found, sorted by BDF.
    pub devices: Vec<RawPciDevice>,
    /// Everything that could not be read or made sense of.
    pub warnings: Vec<Warning>,
}
