//! Machine descriptions: a TOML file (docs/machine-format.md) turned into a
//! validated [`Machine`]: topology, memory map and p2pmem providers.
//!
//! Every rejection is a [`MachineError`] naming the file, the line and
//! column, and the field; the parser never panics on any input (fuzzed by
//! fuzz/fuzz_targets/machine_file.rs).

pub mod arch;
pub mod file;
mod load;
pub mod num;
pub mod parse;

pub use arch::ArchName;

use core::fmt;
use dma_api::arch_port::ArchDma;
use dma_api::device::DmaContext;
use dma_api::{CpuMem, DmaError, PhysAddr};
use dma_pci::memmap::{MemRange, MemoryMap, RangeKind};
use dma_pci::p2p::P2pMemRegistry;
use dma_pci::topology::{DeviceId, DeviceRecord, IommuGroups, Topology};
use std::path::Path;
use std::sync::Arc;

/// The embedded default machine: `machines/reference-server.toml` of this
/// crate, a byte-identical copy of the workspace's
/// `examples/machines/reference-server.toml` (a package ships only its own
/// files; `tests/tests/packaging.rs` checks the two are the same).
pub const REFERENCE_TOML: &str = include_str!("../../machines/reference-server.toml");

/// File name the embedded default reports in errors and output.
pub const REFERENCE_NAME: &str = "<embedded reference-server.toml>";

/// A rejected machine description.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MachineError {
    /// The file (or `<embedded ...>`).
    pub file: String,
    /// 1-based line, 0 when not tied to a place (I/O errors).
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// The field, e.g. `device[3].bars[0].addr`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl core::error::Error for MachineError {}

/// A validated machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Label.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// Architecture.
    pub arch: ArchName,
    /// PCI topology.
    pub topology: Topology,
    /// Physical memory map.
    pub memmap: MemoryMap,
    /// p2pmem providers.
    pub p2pmem: P2pMemRegistry,
}

impl Machine {
    /// Parses and validates a machine description. `file` names the source
    /// in errors.
    pub fn from_toml_str(file: &str, src: &str) -> Result<Self, MachineError> {
        load::load(file, src)
    }

    /// Reads and parses a file.
    pub fn from_path(path: &Path) -> Result<Self, MachineError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| MachineError {
            file: file.clone(),
            line: 0,
            column: 0,
            field: "file".into(),
            message: e.to_string(),
        })?;
        Self::from_toml_str(&file, &src)
    }

    /// The embedded reference server.
    pub fn reference() -> Result<Self, MachineError> {
        Self::from_toml_str(REFERENCE_NAME, REFERENCE_TOML)
    }

    /// A DMA context over this machine's topology, memory map and p2pmem
    /// registrations (all cloned), reaching CPU memory through `mem`;
    /// `ram_pool` as for [`DmaContext::new`].
    pub fn dma_context(
        &self,
        arch: &'static dyn ArchDma,
        mem: CpuMem,
        ram_pool: (PhysAddr, u64),
    ) -> Result<Arc<DmaContext>, DmaError> {
        DmaContext::with_p2pmem(
            self.topology.clone(),
            self.memmap.clone(),
            self.p2pmem.clone(),
            arch,
            mem,
            ram_pool,
        )
    }

    /// Hot-adds a function: topology, then its memory BARs into the memory
    /// map (rolled back if one overlaps). Bumps the topology generation.
    pub fn hot_add(&mut self, record: DeviceRecord) -> Result<DeviceId, String> {
        let id = self.topology.hot_add(record).map_err(|e| e.to_string())?;
        let bars: Vec<_> = self
            .topology
            .device(id)
            .map(|d| d.bars.iter().filter(|b| b.is_mem()).copied().collect())
            .unwrap_or_default();
        for b in bars {
            let r = MemRange {
                start: b.addr,
                size: b.size,
                kind: RangeKind::Bar {
                    provider: id.provider_id(),
                    bar: b.index,
                },
            };
            if let Err(e) = self.memmap.insert(r) {
                self.hot_remove(id)?;
                return Err(e.to_string());
            }
        }
        Ok(id)
    }

    /// Hot-removes a function and everything below it from the topology,
    /// the memory map and the p2pmem registry. Bumps the generation.
    pub fn hot_remove(&mut self, id: DeviceId) -> Result<Vec<DeviceId>, String> {
        let gone = self.topology.hot_remove(id).map_err(|e| e.to_string())?;
        for g in &gone {
            let p = g.provider_id();
            self.memmap.remove_where(|k| match k {
                RangeKind::Ram => false,
                RangeKind::Bar { provider, .. } => *provider == p,
                RangeKind::StolenRam { owner } | RangeKind::DevicePrivate { owner } => *owner == p,
            });
            self.p2pmem.remove_device(*g);
        }
        Ok(gone)
    }

    /// IOMMU groups of the current topology.
    pub fn iommu_groups(&self) -> IommuGroups {
        IommuGroups::compute(&self.topology)
    }

    /// Re-checks the invariants of every part (for fuzzing and after
    /// mutations): topology structure, memory map order, every memory BAR
    /// in the map as its owner's BAR.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.topology
            .check_invariants()
            .map_err(|e| e.to_string())?;
        self.memmap.check_invariants().map_err(|e| e.to_string())?;
        for (id, d) in self.topology.devices() {
            for b in d.bars.iter().filter(|b| b.is_mem()) {
                let (r, _) = self.memmap.kind_of_range(b.addr, b.size).ok_or_else(|| {
                    format!("{} BAR {} missing from the memory map", d.bdf, b.index)
                })?;
                let want = dma_pci::memmap::RangeKind::Bar {
                    provider: id.provider_id(),
                    bar: b.index,
                };
                if r.kind != want {
                    return Err(format!("{} BAR {} mapped as {}", d.bdf, b.index, r.kind));
                }
            }
        }
        for p in self.p2pmem.providers() {
            if self.topology.device(p).is_none() {
                return Err(format!("p2pmem provider {p} is not in the topology"));
            }
        }
        Ok(())
    }
}
