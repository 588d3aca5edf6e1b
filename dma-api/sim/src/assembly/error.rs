//! Why a machine could not be assembled.

use dma_api::memmap::MemMapError;
use dma_api::topology::TopologyError;
use dma_api::{Bdf, DmaError};
use std::fmt;

/// A typed assembly failure naming the offending value.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum AssemblyError {
    /// The machine's arch has no `dma_arch` backend.
    UnknownArch {
        /// The arch name.
        name: String,
    },
    /// No backend of this name in the registry.
    UnknownBackend {
        /// The device it was asked for.
        bdf: Bdf,
        /// The name asked for.
        name: String,
        /// The names the registry knows.
        known: Vec<&'static str>,
    },
    /// A backend option names a device that is not an endpoint of the machine.
    UnknownDevice {
        /// The device.
        bdf: Bdf,
    },
    /// An IOMMU backend was asked for a device whose host bridge has no IOMMU
    /// (or with `--iommu off`).
    NoIommu {
        /// The device.
        bdf: Bdf,
        /// The backend asked for.
        backend: String,
    },
    /// Devices of one IOMMU group asked for backends that need different
    /// domain types (one domain per group).
    GroupConflict {
        /// The group (index into `Machine::iommu_groups()`).
        group: u32,
        /// Two devices and the backends that conflict.
        a: (Bdf, String),
        /// The other one.
        b: (Bdf, String),
    },
    /// A host bridge that runs untranslated has a RAM bus address inside one
    /// of its MMIO windows: DMA to that RAM would be decoded as MMIO.
    AmbiguousBusDecode {
        /// The host bridge.
        host_bridge: String,
        /// Its MMIO window.
        mmio: dma_api::AddrWindow,
        /// The RAM (CPU and bus view) whose bus addresses the window claims.
        ram: dma_api::AddrWindow,
    },
    /// No RAM range below 4 GiB is large enough for the page tables, the
    /// swiotlb pool and the coherent pool.
    NoLowRam {
        /// Bytes needed.
        needed: u64,
        /// Bytes of the largest RAM range below 4 GiB.
        largest: u64,
    },
    /// The IOMMU refused a domain operation.
    Iommu {
        /// What was being done.
        what: String,
        /// The IOMMU's message.
        message: String,
    },
    /// A DMA-layer constructor failed.
    Dma(DmaError),
    /// Hot-plug: the topology refused the function (duplicate BDF, missing
    /// parent, bad BAR, ...), or a hot-remove named no present function.
    Topology(TopologyError),
    /// Hot-add: a memory BAR of the function overlaps the memory map.
    MemoryMap(MemMapError),
    /// Hot-add: the function would join two IOMMU groups that already have
    /// domains of their own (one domain per group).
    GroupMerge {
        /// The function.
        bdf: Bdf,
        /// The groups it would merge.
        groups: Vec<u32>,
    },
    /// Hot-remove: the function (or one below it) still has live mappings;
    /// unmap and free them first.
    Busy {
        /// The function with live mappings.
        bdf: Bdf,
        /// Live single mappings.
        singles: usize,
        /// Live scatter-gather tables.
        tables: usize,
        /// Live coherent allocations.
        coherent: usize,
    },
    /// Hot-remove: peers still hold p2pmem allocated from the function's
    /// registered ranges.
    P2pMemInUse {
        /// The provider.
        bdf: Bdf,
        /// Bytes still allocated.
        bytes: u64,
    },
}

impl fmt::Display for AssemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownArch { name } => write!(f, "no DMA backend for arch {name:?}"),
            Self::UnknownBackend { bdf, name, known } => write!(
                f,
                "{bdf}: no backend named {name:?} (known: {})",
                known.join(", ")
            ),
            Self::UnknownDevice { bdf } => write!(f, "{bdf}: not an endpoint of the machine"),
            Self::NoIommu { bdf, backend } => write!(
                f,
                "{bdf}: backend {backend:?} needs an IOMMU, but its host bridge has none (or the IOMMU is off)"
            ),
            Self::GroupConflict { group, a, b } => write!(
                f,
                "IOMMU group {group}: {} wants {:?} but {} wants {:?} (one domain per group)",
                a.0, a.1, b.0, b.1
            ),
            Self::AmbiguousBusDecode { host_bridge, mmio, ram } => write!(
                f,
                "host bridge {host_bridge} without IOMMU translation: RAM {}+{:#x} appears on the bus at {}, inside MMIO window bus {}+{:#x}; DMA there would be decoded as MMIO",
                ram.cpu_start, ram.size, ram.bus_start, mmio.bus_start, mmio.size
            ),
            Self::NoLowRam { needed, largest } => write!(
                f,
                "no RAM range below 4 GiB holds {needed:#x} bytes (largest: {largest:#x})"
            ),
            Self::Iommu { what, message } => write!(f, "IOMMU: {what}: {message}"),
            Self::Dma(e) => write!(f, "{e}"),
            Self::Topology(e) => write!(f, "hot-plug: {e}"),
            Self::MemoryMap(e) => write!(f, "hot-plug: {e}"),
            Self::GroupMerge { bdf, groups } => write!(
                f,
                "{bdf}: hot-add would merge IOMMU groups {groups:?}, each with its own domain"
            ),
            Self::Busy {
                bdf,
                singles,
                tables,
                coherent,
            } => write!(
                f,
                "{bdf}: cannot hot-remove with live mappings ({singles} single, {tables} table, {coherent} coherent)"
            ),
            Self::P2pMemInUse { bdf, bytes } => write!(
                f,
                "{bdf}: cannot hot-remove while peers hold {bytes:#x} bytes of its p2pmem"
            ),
        }
    }
}

impl core::error::Error for AssemblyError {}

impl From<DmaError> for AssemblyError {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}
