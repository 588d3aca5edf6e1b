//! Raw records the topology is built from, and the errors building reports.
//!
//! A record is what a machine file or a sysfs scan knows about one host
//! bridge or one function; the topology validates and links them. Feeding the
//! builder from `/sys/bus/pci/devices` needs only: bdf, vendor, device, class,
//! port type (PCIe capability), BARs (`resource`), parent bdf (the
//! directory above), ACS capability/control words and the multifunction bit
//! (header type bit 7).

use super::acs::AcsCap;
use super::device::{Bar, DeviceId, PortType};
use super::numa::{NodeSpec, NumaNode};
use crate::bdf::Bdf;
use crate::mask::DmaMask;
use crate::types::PhysAddr;
use crate::window::WindowMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// What is known about one host bridge.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HostBridgeRecord {
    /// Label.
    pub name: String,
    /// PCI domain.
    pub domain: u32,
    /// Root bus number.
    pub root_bus: u8,
    /// Allow-list identity override (vendor, device); `None` derives it.
    pub ident: Option<(u16, u16)>,
    /// MMIO windows (CPU → bus). Empty means "unknown": BARs are not checked.
    pub mmio: WindowMap,
    /// DMA ranges (CPU → bus) for RAM.
    pub dma_ranges: WindowMap,
    /// Forwards P2P reads between root ports.
    pub p2p_read: bool,
    /// Forwards P2P writes between root ports.
    pub p2p_write: bool,
    /// An IOMMU sits behind it.
    pub iommu: bool,
    /// Its NUMA node (ACPI `_PXM`); `None`: no node (`NUMA_NO_NODE`).
    pub numa_node: Option<NumaNode>,
}

impl HostBridgeRecord {
    /// A bridge for `domain:root_bus` with identity windows, no allow-list
    /// override, P2P both ways, IOMMU on, no NUMA node.
    pub fn new(name: impl Into<String>, domain: u32, root_bus: u8) -> Self {
        Self {
            name: name.into(),
            domain,
            root_bus,
            ident: None,
            mmio: WindowMap::empty(),
            dma_ranges: WindowMap::identity_all(),
            p2p_read: true,
            p2p_write: true,
            iommu: true,
            numa_node: None,
        }
    }
}

/// What is known about one PCI function.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceRecord {
    /// Address.
    pub bdf: Bdf,
    /// Optional label.
    pub name: Option<String>,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// 24-bit class code.
    pub class: u32,
    /// Device/port type.
    pub port: PortType,
    /// Upstream bridge; `None` for a function on a root bus.
    pub parent: Option<Bdf>,
    /// Assigned BARs.
    pub bars: Vec<Bar>,
    /// DMA mask.
    pub dma_mask: DmaMask,
    /// Cache-coherent DMA.
    pub coherent: bool,
    /// Untrusted / external-facing.
    pub untrusted: bool,
    /// Multi-function device.
    pub multifunction: bool,
    /// ACS capability and control, if the function has the capability.
    pub acs: Option<AcsCap>,
    /// Its NUMA node: the host bridge's, or given.
    pub numa_node: NodeSpec,
}

impl DeviceRecord {
    /// A record with defaults: 64-bit mask, coherent, trusted, single
    /// function, no BARs, no ACS, its host bridge's NUMA node.
    pub fn new(bdf: Bdf, port: PortType, parent: Option<Bdf>) -> Self {
        Self {
            bdf,
            name: None,
            vendor: 0,
            device: 0,
            class: 0,
            port,
            parent,
            bars: Vec::new(),
            dma_mask: DmaMask::BITS_64,
            coherent: true,
            untrusted: false,
            multifunction: false,
            acs: None,
            numa_node: NodeSpec::HostBridge,
        }
    }
}

/// Why a set of records is not a valid topology; every variant names the
/// offending device(s) and values.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum TopologyError {
    /// Two functions with one address.
    DuplicateBdf {
        /// The address.
        bdf: Bdf,
    },
    /// Two host bridges for one root bus.
    DuplicateHostBridge {
        /// Domain.
        domain: u32,
        /// Root bus.
        root_bus: u8,
    },
    /// Two host bridges whose MMIO windows overlap.
    WindowOverlap {
        /// First bridge.
        a: String,
        /// Second bridge.
        b: String,
    },
    /// A parent that is not in the topology.
    DanglingParent {
        /// The child.
        bdf: Bdf,
        /// The missing parent.
        parent: Bdf,
    },
    /// A parent that has no secondary bus.
    ParentNotBridge {
        /// The child.
        bdf: Bdf,
        /// The parent.
        parent: Bdf,
        /// The parent's type.
        port: PortType,
    },
    /// A parent in another PCI domain.
    DomainMismatch {
        /// The child.
        bdf: Bdf,
        /// The parent.
        parent: Bdf,
    },
    /// Parent links that loop.
    Cycle {
        /// A device on the loop.
        bdf: Bdf,
    },
    /// A root-bus function with no host bridge for its domain:bus.
    NoHostBridge {
        /// The function.
        bdf: Bdf,
    },
    /// A malformed BAR.
    BarInvalid {
        /// The function.
        bdf: Bdf,
        /// The BAR index.
        index: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A memory BAR outside every MMIO window of its host bridge.
    BarOutsideWindow {
        /// The function.
        bdf: Bdf,
        /// BAR index.
        index: u8,
        /// BAR start.
        addr: PhysAddr,
        /// BAR size.
        size: u64,
        /// The host bridge.
        host_bridge: String,
    },
    /// Two memory BARs overlap.
    BarOverlap {
        /// First (function, BAR index).
        a: (Bdf, u8),
        /// Second (function, BAR index).
        b: (Bdf, u8),
    },
    /// No device at this address.
    UnknownDevice {
        /// The address asked for.
        bdf: Bdf,
    },
    /// No device with this id (never present, or hot-removed): the id is
    /// what was asked for, there is no address to name.
    UnknownId {
        /// The id asked for.
        id: DeviceId,
    },

    /// The function has no ACS capability to configure.
    NoAcsCapability {
        /// The function.
        bdf: Bdf,
    },
    /// More devices than the arena can index.
    TooManyDevices,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TopologyError::*;
        match self {
            DuplicateBdf { bdf } => write!(f, "duplicate device {bdf}"),
            DuplicateHostBridge { domain, root_bus } => {
                write!(f, "two host bridges for root bus {domain:04x}:{root_bus:02x}")
            }
            WindowOverlap { a, b } => {
                write!(f, "MMIO windows of host bridges {a} and {b} overlap")
            }
            DanglingParent { bdf, parent } => {
                write!(f, "device {bdf} names parent {parent}, which does not exist")
            }
            ParentNotBridge { bdf, parent, port } => write!(
                f,
                "device {bdf} names parent {parent}, which is a {port} (not a bridge)"
            ),
            DomainMismatch { bdf, parent } => {
                write!(f, "device {bdf} and its parent {parent} are in different domains")
            }
            Cycle { bdf } => write!(f, "parent links of {bdf} form a cycle"),
            NoHostBridge { bdf } => write!(
                f,
                "device {bdf} is on a root bus with no host bridge for {:04x}:{:02x}",
                bdf.domain(),
                bdf.bus()
            ),
            BarInvalid { bdf, index, reason } => write!(f, "device {bdf} BAR {index}: {reason}"),
            BarOutsideWindow {
                bdf,
                index,
                addr,
                size,
                host_bridge,
            } => write!(
                f,
                "device {bdf} BAR {index} [{addr} +{size:#x}] is outside every MMIO window of host bridge {host_bridge}"
            ),
            BarOverlap { a, b } => write!(
                f,
                "BAR {} of {} overlaps BAR {} of {}",
                a.1, a.0, b.1, b.0
            ),
            UnknownDevice { bdf } => write!(f, "no device {bdf}"),
            UnknownId { id } => write!(f, "no device with id {id} in the topology"),
            NoAcsCapability { bdf } => write!(f, "device {bdf} has no ACS capability"),
            TooManyDevices => f.write_str("too many devices"),
        }
    }
}

impl core::error::Error for TopologyError {}
