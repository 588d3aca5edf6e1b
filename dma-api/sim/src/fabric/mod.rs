//! The fabric: every mapping decision checked by moving bytes.
//!
//! A device's DMA is split into TLPs (never crossing a 4 KiB boundary, at
//! most Max_Payload_Size bytes for writes and Max_Read_Request_Size for
//! reads, PCIe r6.0 §2.2.2 / §7.5.3.4) and each TLP is routed like PCIe
//! routes it (the rules are in `fabric/route.rs`): across a switch
//! when no ACS redirect stops it, up to the root complex otherwise, through
//! the IOMMU or the host bridge's windows, then into RAM or a peer BAR if the
//! host bridge forwards that access. Bytes really move: RAM is the machine's
//! [`SharedMem`] (the same store the IOMMU page tables live in), BARs are one
//! sparse [`PhysMem`] keyed by each BAR's CPU physical address (so CPU MMIO
//! and device P2P see the same bytes). Every link counts payload bytes per
//! direction, so "P2P kept X bytes off the root complex" is a number.
//!
//! The topology is shared (`Arc<RwLock<Topology>>`) and read per run of
//! TLPs that route alike (`fabric/transfer.rs`: one route and one copy per
//! run, counted as its TLPs): ACS changes and hot-plug take effect at the
//! next transfer or run.

pub mod fault;
pub mod hop;
pub mod iommu_port;
mod route;
mod transfer;

pub use fault::{CpuAccessError, FabricFault, FaultReason};
pub use hop::{format_route, Dir, Hop, LinkId, Node, Target, Translation};
pub use iommu_port::{RcFault, RcFaultReason, RcRun, RootComplexIommu};

use crate::machine::Machine;
use dma_api::sync::{RwLock, RwLockReadGuard};
use dma_iommu::{PhysMem, SharedMem};
use dma_pci::bdf::Bdf;
use dma_pci::memmap::{MemoryMap, RangeKind};
use dma_pci::topology::Topology;
use dma_pci::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use route::{RouteCtx, Translate};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Link parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FabricConfig {
    /// Max_Payload_Size in bytes (write TLPs), 128..=4096.
    pub max_payload: u64,
    /// Max_Read_Request_Size in bytes (read TLPs), 128..=4096.
    pub max_read_request: u64,
    /// Faults kept in the log; older ones are counted, not kept.
    pub fault_log_capacity: usize,
}

impl Default for FabricConfig {
    /// Linux's usual defaults: MPS 256, MRRS 512; 4096 log entries.
    fn default() -> Self {
        Self {
            max_payload: 256,
            max_read_request: 512,
            fault_log_capacity: 4096,
        }
    }
}

/// Payload bytes that crossed one link, by direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LinkBytes {
    /// From the lower end to the upper end (towards RAM).
    pub up: u64,
    /// From the upper end to the lower end.
    pub down: u64,
}

impl LinkBytes {
    /// Both directions.
    pub const fn total(&self) -> u64 {
        self.up.saturating_add(self.down)
    }
}

/// Totals since the last reset.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// TLPs that completed.
    pub tlps: u64,
    /// Bytes devices wrote (delivered).
    pub bytes_written: u64,
    /// Bytes devices read (delivered).
    pub bytes_read: u64,
    /// Requests that faulted (including those dropped from the log).
    pub faults: u64,
}

#[derive(Default)]
struct State {
    links: BTreeMap<LinkId, LinkBytes>,
    counters: Counters,
    faults: Vec<FabricFault>,
}

/// The simulated PCIe fabric of one machine.
pub struct Fabric {
    topology: Arc<RwLock<Topology>>,
    memmap: MemoryMap,
    ram: SharedMem,
    bars: SharedMem,
    iommu: Option<Arc<dyn RootComplexIommu>>,
    config: FabricConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric")
            .field("memmap_ranges", &self.memmap.ranges().len())
            .field("iommu", &self.iommu.is_some())
            .field("config", &self.config)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fabric {
    /// A fabric over a shared topology, a memory map and RAM backing; no
    /// IOMMU attached, default link parameters.
    pub fn new(topology: Arc<RwLock<Topology>>, memmap: MemoryMap, ram: SharedMem) -> Self {
        Self {
            topology,
            memmap,
            ram,
            bars: Arc::new(std::sync::RwLock::new(PhysMem::with_pool(
                PhysAddr::ZERO,
                0,
            ))),
            iommu: None,
            config: FabricConfig::default(),
            state: Mutex::new(State::default()),
        }
    }

    /// A fabric for `machine` (its topology copied into a fresh shared
    /// lock) with empty RAM.
    pub fn from_machine(machine: &Machine) -> Self {
        Self::new(
            Arc::new(RwLock::new(machine.topology.clone())),
            machine.memmap.clone(),
            Arc::new(std::sync::RwLock::new(PhysMem::new())),
        )
    }

    /// Keeps BAR contents in `bars` (shared with the CPU's view of memory,
    /// [`crate::ram::SimCpu`], so the CPU and devices see one BAR backing).
    pub fn with_bar_store(mut self, bars: SharedMem) -> Self {
        self.bars = bars;
        self
    }

    /// The BAR backing: a sparse store keyed by each BAR's CPU address.
    pub fn bar_store(&self) -> &SharedMem {
        &self.bars
    }

    /// Attaches the IOMMU the root complex consults for requesters under
    /// host bridges with `iommu = true`.
    pub fn with_iommu(mut self, iommu: Arc<dyn RootComplexIommu>) -> Self {
        self.iommu = Some(iommu);
        self
    }

    /// Sets link parameters (sizes are clamped to 128..=4096, powers of two
    /// not required).
    pub fn with_config(mut self, config: FabricConfig) -> Self {
        self.config = FabricConfig {
            max_payload: config.max_payload.clamp(128, PAGE_SIZE),
            max_read_request: config.max_read_request.clamp(128, PAGE_SIZE),
            fault_log_capacity: config.fault_log_capacity,
        };
        self
    }

    /// The shared topology (change ACS bits through it).
    pub fn topology(&self) -> &Arc<RwLock<Topology>> {
        &self.topology
    }

    /// The RAM backing.
    pub fn ram(&self) -> &SharedMem {
        &self.ram
    }

    /// The memory map.
    pub fn memmap(&self) -> &MemoryMap {
        &self.memmap
    }

    fn topo(&self) -> RwLockReadGuard<'_, Topology> {
        self.topology.read()
    }

    /// The route a one-byte request from `requester` to `addr` would take
    /// now; for a read whose completion is redirected, followed by
    /// [`Hop::Completion`] and the completion's hops. Consults the IOMMU but
    /// moves no bytes, counts nothing and logs no fault.
    pub fn route_of(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        write: bool,
    ) -> Result<Vec<Hop>, FabricFault> {
        self.route_of_len(requester, addr, 1, write)
    }

    /// [`route_of`](Self::route_of) for a TLP of `len` bytes (1..=4096, not
    /// crossing a page).
    pub fn route_of_len(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Vec<Hop>, FabricFault> {
        let fault = |reason| FabricFault {
            requester,
            addr,
            write,
            reason,
        };
        if len == 0 || len > PAGE_SIZE - addr.page_offset() {
            return Err(fault(FaultReason::BadTlpLength { len }));
        }
        let topo = self.topo();
        let ctx = RouteCtx {
            topo: &topo,
            memmap: &self.memmap,
            iommu: self.iommu.as_ref().map(|m| m as &dyn Translate),
        };
        ctx.route(requester, addr, len, write)
            .map(|r| {
                let mut hops = r.hops;
                hops.extend(r.completion.unwrap_or_default());
                hops
            })
            .map_err(fault)
    }

    /// A device writes `data` at `addr` (posted writes). Stops at the first
    /// faulting TLP (earlier TLPs have landed), records and returns it.
    pub fn dma_write(&self, requester: Bdf, addr: DmaAddr, data: &[u8]) -> Result<(), FabricFault> {
        self.transfer(
            requester,
            addr,
            data.len() as u64,
            true,
            |target, off, n| {
                let src = data.get(off..off + n).unwrap_or(&[]);
                self.store(target, src)
            },
        )
    }

    /// A device reads `buf.len()` bytes at `addr` (read requests and their
    /// completions). Stops at the first faulting TLP, records and returns it;
    /// bytes of earlier TLPs are in `buf`.
    pub fn dma_read(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        buf: &mut [u8],
    ) -> Result<(), FabricFault> {
        let len = buf.len() as u64;
        self.transfer(requester, addr, len, false, |target, off, n| {
            match buf.get_mut(off..off + n) {
                Some(dst) => self.load(target, dst),
                None => Ok(()),
            }
        })
    }

    fn store(&self, target: Target, src: &[u8]) -> Result<(), FaultReason> {
        let (phys, r) = match target {
            Target::Ram { phys } => (
                phys,
                self.ram
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(phys, src),
            ),
            Target::Bar { phys, .. } => (
                phys,
                self.bars
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(phys, src),
            ),
        };
        r.map_err(|_| FaultReason::NoMemory {
            phys,
            len: src.len() as u64,
        })
    }

    fn load(&self, target: Target, dst: &mut [u8]) -> Result<(), FaultReason> {
        let len = dst.len() as u64;
        let (phys, r) = match target {
            Target::Ram { phys } => (
                phys,
                self.ram
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .read(phys, dst),
            ),
            Target::Bar { phys, .. } => (
                phys,
                self.bars
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .read(phys, dst),
            ),
        };
        r.map_err(|_| FaultReason::NoMemory { phys, len })
    }

    /// Counts `n` payload bytes carried by `tlps` TLPs on every link of
    /// `hops` (reversed unless `forward`) and in the totals of a write or
    /// read.
    fn count(&self, hops: &[Hop], n: u64, tlps: u64, forward: bool, write: bool) {
        let mut st = lock(&self.state);
        for h in hops {
            if let Hop::Link { link, dir } = h {
                let d = if forward { *dir } else { dir.reverse() };
                let e = st.links.entry(*link).or_default();
                match d {
                    Dir::Up => e.up = e.up.saturating_add(n),
                    Dir::Down => e.down = e.down.saturating_add(n),
                }
            }
        }
        st.counters.tlps = st.counters.tlps.saturating_add(tlps);
        if write {
            st.counters.bytes_written = st.counters.bytes_written.saturating_add(n);
        } else {
            st.counters.bytes_read = st.counters.bytes_read.saturating_add(n);
        }
    }

    fn record(&self, f: FabricFault) -> FabricFault {
        let mut st = lock(&self.state);
        st.counters.faults += 1;
        if st.faults.len() < self.config.fault_log_capacity {
            st.faults.push(f.clone());
        }
        f
    }

    /// Bytes that crossed the link between `lower` and `upper`.
    pub fn link_bytes(&self, lower: Node, upper: Node) -> LinkBytes {
        lock(&self.state)
            .links
            .get(&LinkId::new(lower, upper))
            .copied()
            .unwrap_or_default()
    }

    /// Every link that carried bytes, in link order.
    pub fn links(&self) -> Vec<(LinkId, LinkBytes)> {
        lock(&self.state)
            .links
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// Payload bytes that crossed the PCIe boundary of the root complex:
    /// every link between a root-bus function and its host bridge, both
    /// directions. A host-bridge P2P transfer crosses two such links.
    pub fn root_complex_bytes(&self) -> u64 {
        lock(&self.state)
            .links
            .iter()
            .filter(|(k, _)| matches!(k.upper, Node::HostBridge(_)))
            .fold(0u64, |a, (_, v)| a.saturating_add(v.total()))
    }

    /// Payload bytes devices moved to and from RAM (the memory controller
    /// link, both directions).
    pub fn ram_bytes(&self) -> u64 {
        self.link_bytes(Node::RootComplex, Node::Ram).total()
    }

    /// Totals since the last reset.
    pub fn counters(&self) -> Counters {
        lock(&self.state).counters
    }

    /// Zeroes link and total counters (the fault log is kept).
    pub fn reset_counters(&self) {
        let mut st = lock(&self.state);
        st.links.clear();
        st.counters = Counters::default();
    }

    /// The fault log, oldest first.
    pub fn faults(&self) -> Vec<FabricFault> {
        lock(&self.state).faults.clone()
    }

    /// Takes and clears the fault log.
    pub fn take_faults(&self) -> Vec<FabricFault> {
        std::mem::take(&mut lock(&self.state).faults)
    }

    /// What backs `phys` for the CPU and how many bytes of it from `phys`
    /// (BAR, RAM or stolen RAM).
    fn cpu_region(&self, topo: &Topology, phys: PhysAddr) -> Result<(bool, u64), CpuAccessError> {
        if let Some((id, idx)) = topo.bar_at(phys) {
            if let Some(b) = topo.device(id).and_then(|d| d.bar(idx)) {
                let off = phys.offset_from(b.addr).unwrap_or(0);
                return Ok((true, b.size - off));
            }
        }
        match self.memmap.kind_of(phys) {
            Some((r, _)) => match r.kind {
                RangeKind::Ram | RangeKind::StolenRam { .. } => {
                    let off = phys.offset_from(r.start).unwrap_or(0);
                    Ok((false, r.size - off))
                }
                RangeKind::DevicePrivate { .. } => Err(CpuAccessError::DevicePrivate { phys }),
                RangeKind::Bar { .. } => Err(CpuAccessError::NotBacked { phys }),
            },
            None => Err(CpuAccessError::NotBacked { phys }),
        }
    }

    fn cpu_access(
        &self,
        phys: PhysAddr,
        len: usize,
        mut f: impl FnMut(bool, PhysAddr, usize, usize),
    ) -> Result<(), CpuAccessError> {
        let len64 = len as u64;
        if len == 0 {
            return Ok(());
        }
        if phys.last_of(len64).is_none() {
            return Err(CpuAccessError::Overflow { phys, len: len64 });
        }
        let topo = self.topo();
        // Check the whole range first, so a failed access changes nothing.
        let mut plan = Vec::new();
        let mut off = 0u64;
        while off < len64 {
            let p = PhysAddr::new(phys.raw() + off);
            let (is_bar, avail) = self.cpu_region(&topo, p)?;
            let n = (len64 - off).min(avail);
            plan.push((is_bar, p, off as usize, n as usize));
            off += n;
        }
        drop(topo);
        for (is_bar, p, o, n) in plan {
            f(is_bar, p, o, n);
        }
        Ok(())
    }

    /// The CPU writes `data` at `phys` (RAM, stolen RAM or MMIO to a BAR).
    /// Not counted on any link.
    pub fn cpu_write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), CpuAccessError> {
        self.cpu_access(phys, data.len(), |is_bar, p, o, n| {
            let src = data.get(o..o + n).unwrap_or(&[]);
            // Ranges were checked not to wrap: the stores cannot fail.
            let _ = if is_bar {
                self.bars
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(p, src)
            } else {
                self.ram
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .write(p, src)
            };
        })
    }

    /// The CPU reads `buf.len()` bytes at `phys`. Not counted on any link.
    pub fn cpu_read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), CpuAccessError> {
        let mut parts = Vec::new();
        self.cpu_access(phys, buf.len(), |is_bar, p, o, n| {
            parts.push((is_bar, p, o, n))
        })?;
        for (is_bar, p, o, n) in parts {
            if let Some(dst) = buf.get_mut(o..o + n) {
                let _ = if is_bar {
                    self.bars
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .read(p, dst)
                } else {
                    self.ram
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .read(p, dst)
                };
            }
        }
        Ok(())
    }
}
