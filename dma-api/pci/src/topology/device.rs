//! The nodes of the PCI topology: host bridges, ports and functions.

use super::acs::AcsCap;
use crate::bdf::Bdf;
use crate::mask::DmaMask;
use crate::types::{PhysAddr, ProviderId};
use crate::window::WindowMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Compact index of a device in the topology arena. Never reused within a
/// topology, so a stale id after hot-remove finds nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DeviceId(pub(crate) u32);

impl DeviceId {
    /// The raw arena index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The provider identity this device's memory carries in segments.
    pub const fn provider_id(self) -> ProviderId {
        ProviderId::new(self.0)
    }

    /// The device owning provider `p` (inverse of [`DeviceId::provider_id`]).
    pub const fn from_provider(p: ProviderId) -> Self {
        Self(p.raw())
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dev#{}", self.0)
    }
}

/// Index of a host bridge in the topology.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct HostBridgeId(pub(crate) u16);

impl HostBridgeId {
    /// The raw index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// PCIe device/port type (PCIe capability "Device/Port Type", Linux
/// `PCI_EXP_TYPE_*`), plus conventional PCI for functions without a PCIe
/// capability.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PortType {
    /// PCIe endpoint (`PCI_EXP_TYPE_ENDPOINT`).
    Endpoint,
    /// Legacy PCIe endpoint (`PCI_EXP_TYPE_LEG_END`).
    LegacyEndpoint,
    /// Root complex integrated endpoint (`PCI_EXP_TYPE_RC_END`), e.g. an APU's GPU.
    RcEndpoint,
    /// Root port (`PCI_EXP_TYPE_ROOT_PORT`).
    RootPort,
    /// Switch upstream port (`PCI_EXP_TYPE_UPSTREAM`).
    SwitchUpstream,
    /// Switch downstream port (`PCI_EXP_TYPE_DOWNSTREAM`).
    SwitchDownstream,
    /// PCIe-to-PCI/PCI-X bridge (`PCI_EXP_TYPE_PCI_BRIDGE`): takes ownership
    /// of requester IDs from below, so everything below aliases to it.
    PcieToPciBridge,
    /// PCI/PCI-X-to-PCIe bridge (`PCI_EXP_TYPE_PCIE_BRIDGE`).
    PciToPcieBridge,
    /// Conventional PCI bridge (no PCIe capability).
    PciBridge,
    /// Conventional PCI function (no PCIe capability).
    PciDevice,
}

impl PortType {
    /// All types, for parsers and docs.
    pub const ALL: [PortType; 10] = [
        PortType::Endpoint,
        PortType::LegacyEndpoint,
        PortType::RcEndpoint,
        PortType::RootPort,
        PortType::SwitchUpstream,
        PortType::SwitchDownstream,
        PortType::PcieToPciBridge,
        PortType::PciToPcieBridge,
        PortType::PciBridge,
        PortType::PciDevice,
    ];

    /// The machine-file / JSON name.
    pub const fn name(self) -> &'static str {
        match self {
            PortType::Endpoint => "endpoint",
            PortType::LegacyEndpoint => "legacy_endpoint",
            PortType::RcEndpoint => "rc_endpoint",
            PortType::RootPort => "root_port",
            PortType::SwitchUpstream => "switch_upstream",
            PortType::SwitchDownstream => "switch_downstream",
            PortType::PcieToPciBridge => "pcie_to_pci_bridge",
            PortType::PciToPcieBridge => "pci_to_pcie_bridge",
            PortType::PciBridge => "pci_bridge",
            PortType::PciDevice => "pci_device",
        }
    }

    /// Parses [`PortType::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// True for types that have a secondary bus (children allowed).
    pub const fn is_bridge(self) -> bool {
        matches!(
            self,
            PortType::RootPort
                | PortType::SwitchUpstream
                | PortType::SwitchDownstream
                | PortType::PcieToPciBridge
                | PortType::PciToPcieBridge
                | PortType::PciBridge
        )
    }

    /// True if the function has a PCIe capability (`pci_is_pcie`).
    pub const fn is_pcie(self) -> bool {
        !matches!(self, PortType::PciBridge | PortType::PciDevice)
    }
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Address space a BAR decodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BarSpace {
    /// Memory space (`IORESOURCE_MEM`).
    Mem,
    /// I/O port space (`IORESOURCE_IO`): never P2P memory.
    Io,
}

/// One base address register as assigned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Bar {
    /// BAR index 0..=5.
    pub index: u8,
    /// CPU physical address of the first byte (for I/O BARs: the port base).
    pub addr: PhysAddr,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// Memory or I/O.
    pub space: BarSpace,
    /// 64-bit memory BAR (consumes index + 1 too).
    pub is_64: bool,
    /// Prefetchable memory.
    pub prefetchable: bool,
}

impl Bar {
    /// True if this is a memory BAR.
    pub const fn is_mem(&self) -> bool {
        matches!(self.space, BarSpace::Mem)
    }
}

/// CPU vendor, for the AMD rule of drivers/pci/p2pdma.c `cpu_supports_p2pdma`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum CpuVendor {
    /// Intel.
    Intel,
    /// AMD.
    Amd,
    /// Anything else (Arm, IBM, RISC-V vendors, Zhaoxin, ...).
    #[default]
    Other,
}

/// Machine-level CPU identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct CpuInfo {
    /// Vendor.
    pub vendor: CpuVendor,
    /// x86 family (`cpuinfo_x86::x86`); 0 when not applicable.
    pub family: u32,
    /// True if the CPU is x86 (the AMD rule is `#ifdef CONFIG_X86`).
    pub x86: bool,
}

impl CpuInfo {
    /// drivers/pci/p2pdma.c `cpu_supports_p2pdma`: x86, AMD, family >= 0x17 (Zen).
    pub const fn supports_p2pdma(&self) -> bool {
        self.x86 && matches!(self.vendor, CpuVendor::Amd) && self.family >= 0x17
    }
}

/// A PCI host bridge (root complex segment). Not a PCI function itself.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostBridge {
    /// Label (from the machine file, or `pci<domain>:<bus>`).
    pub name: String,
    /// PCI domain of its root bus.
    pub domain: u32,
    /// Root bus number.
    pub root_bus: u8,
    /// Vendor/device used for the P2P allow-list. `None`: derived like
    /// drivers/pci/p2pdma.c `pci_host_bridge_dev` (first function on the root
    /// bus if it is 00.0 or a root port).
    pub ident: Option<(u16, u16)>,
    /// MMIO windows: CPU physical → bus addresses of BARs below.
    pub mmio: WindowMap,
    /// DMA ranges: how RAM appears to devices below (CPU → bus).
    pub dma_ranges: WindowMap,
    /// Forwards peer-to-peer reads between its ports (our extension).
    pub p2p_read: bool,
    /// Forwards peer-to-peer writes between its ports (our extension).
    pub p2p_write: bool,
    /// An IOMMU translates DMA from devices below.
    pub iommu: bool,
    /// NUMA node of its root bus (`pcibus_to_node`); `None`:
    /// `NUMA_NO_NODE`.
    pub numa_node: Option<super::numa::NumaNode>,
}

/// One PCI function.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Device {
    /// Its address.
    pub bdf: Bdf,
    /// Optional label ("nvme0").
    pub name: Option<String>,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// 24-bit class code (base << 16 | sub << 8 | prog-if).
    pub class: u32,
    /// Device/port type.
    pub port: PortType,
    /// Upstream bridge (`pci_upstream_bridge`); `None` on a root bus.
    pub parent: Option<DeviceId>,
    /// Host bridge it sits under.
    pub host_bridge: HostBridgeId,
    /// Assigned BARs, sorted by index.
    pub bars: Vec<Bar>,
    /// Streaming DMA mask.
    pub dma_mask: DmaMask,
    /// DMA is cache-coherent.
    pub coherent: bool,
    /// Untrusted (external-facing) device.
    pub untrusted: bool,
    /// Part of a multi-function device (`pdev->multifunction`).
    pub multifunction: bool,
    /// ACS extended capability, if present.
    pub acs: Option<AcsCap>,
    /// NUMA node (`dev_to_node`): the host bridge's unless the record
    /// gave one; `None`: `NUMA_NO_NODE`.
    pub numa_node: Option<super::numa::NumaNode>,
    /// Children (functions on the secondary bus), sorted by BDF.
    pub children: Vec<DeviceId>,
}

impl Device {
    /// The BAR with `index`, if assigned.
    pub fn bar(&self, index: u8) -> Option<&Bar> {
        self.bars.iter().find(|b| b.index == index)
    }

    /// drivers/pci/p2pdma.c `pci_bridge_has_acs_redir`.
    pub fn acs_redirects(&self) -> bool {
        self.acs.is_some_and(|a| a.redirects())
    }

    /// Label or BDF, for messages.
    pub fn label(&self) -> String {
        use alloc::string::ToString;
        match &self.name {
            Some(n) => alloc::format!("{} ({n})", self.bdf),
            None => self.bdf.to_string(),
        }
    }
}
