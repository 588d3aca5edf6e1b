//! The PCI topology: host bridges, ports and functions in an arena.
//!
//! Devices live in a `Vec` indexed by a compact [`DeviceId`]; a `Bdf` map
//! finds them by address. Every mutation (ACS control change, hot-add,
//! hot-remove) bumps [`Topology::generation`], which caches of derived facts
//! (P2P routes) compare against. Linux caches P2P map types per provider and
//! never invalidates them (drivers/pci/p2pdma.c `map_types`); we do.

pub mod acs;
pub mod acs_param;
pub mod device;
pub mod groups;
pub mod numa;
pub mod record;

pub use acs::{Acs, AcsCap};
pub use device::{
    Bar, BarSpace, CpuInfo, CpuVendor, Device, DeviceId, HostBridge, HostBridgeId, PortType,
};
pub use groups::IommuGroups;
pub use numa::{NodeSpec, NumaNode, NumaNodeError};
pub use record::{DeviceRecord, HostBridgeRecord, TopologyError};

use crate::bdf::Bdf;
use crate::types::{BusAddr, PhysAddr};
use crate::window::TranslateError;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The machine's PCI hierarchy.
#[derive(Clone, Debug)]
pub struct Topology {
    cpu: CpuInfo,
    host_bridges: Vec<HostBridge>,
    devices: Vec<Option<Device>>,
    by_bdf: BTreeMap<Bdf, DeviceId>,
    /// Memory BARs by start address: start -> (last byte, owner, index).
    bars: BTreeMap<u64, (u64, DeviceId, u8)>,
    generation: u64,
}

/// Why [`Topology::bar_bus_addr`] has no answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BarAddrError {
    /// No device with this id (never present, or hot-removed).
    UnknownId {
        /// The id asked for.
        id: DeviceId,
    },
    /// The device has no BAR with this index.
    NoSuchBar {
        /// The device.
        bdf: Bdf,
        /// The BAR index asked for.
        bar: u8,
    },
    /// The device's host bridge is not in the topology.
    NoHostBridge {
        /// The device.
        bdf: Bdf,
    },
    /// The host bridge's MMIO windows do not hold the BAR.
    Translate(TranslateError),
}

impl core::fmt::Display for BarAddrError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BarAddrError::UnknownId { id } => write!(f, "no device with id {id} in the topology"),
            BarAddrError::NoSuchBar { bdf, bar } => {
                write!(f, "device {bdf} has no BAR {bar}")
            }
            BarAddrError::NoHostBridge { bdf } => {
                write!(f, "the host bridge of device {bdf} is not in the topology")
            }
            BarAddrError::Translate(e) => write!(f, "BAR not in its host bridge's windows: {e}"),
        }
    }
}

impl core::error::Error for BarAddrError {}

impl Topology {
    /// An empty topology with the given host bridges.
    pub fn new(
        cpu: CpuInfo,
        host_bridges: impl IntoIterator<Item = HostBridgeRecord>,
    ) -> Result<Self, TopologyError> {
        let mut hbs: Vec<HostBridge> = Vec::new();
        for r in host_bridges {
            if hbs
                .iter()
                .any(|h| h.domain == r.domain && h.root_bus == r.root_bus)
            {
                return Err(TopologyError::DuplicateHostBridge {
                    domain: r.domain,
                    root_bus: r.root_bus,
                });
            }
            for h in &hbs {
                let overlap = h.mmio.windows().iter().any(|a| {
                    r.mmio.windows().iter().any(|b| {
                        a.cpu_start.raw() <= b.cpu_start.raw().saturating_add(b.size - 1)
                            && b.cpu_start.raw() <= a.cpu_start.raw().saturating_add(a.size - 1)
                    })
                });
                if overlap {
                    return Err(TopologyError::WindowOverlap {
                        a: h.name.clone(),
                        b: r.name.clone(),
                    });
                }
            }
            if hbs.len() >= u16::MAX as usize {
                return Err(TopologyError::TooManyDevices);
            }
            hbs.push(HostBridge {
                name: r.name,
                domain: r.domain,
                root_bus: r.root_bus,
                ident: r.ident,
                mmio: r.mmio,
                dma_ranges: r.dma_ranges,
                p2p_read: r.p2p_read,
                p2p_write: r.p2p_write,
                iommu: r.iommu,
                numa_node: r.numa_node,
            });
        }
        Ok(Self {
            cpu,
            host_bridges: hbs,
            devices: Vec::new(),
            by_bdf: BTreeMap::new(),
            bars: BTreeMap::new(),
            generation: 0,
        })
    }

    /// Builds a topology from raw records (any order). Parents are linked,
    /// duplicates, dangling parents, cycles, malformed or overlapping BARs and
    /// BARs outside their host bridge's windows are rejected. Ids are
    /// assigned parents-first, in BDF order within a level.
    pub fn build(
        cpu: CpuInfo,
        host_bridges: impl IntoIterator<Item = HostBridgeRecord>,
        records: impl IntoIterator<Item = DeviceRecord>,
    ) -> Result<Self, TopologyError> {
        let mut topo = Self::new(cpu, host_bridges)?;
        let mut pending: Vec<DeviceRecord> = records.into_iter().collect();
        pending.sort_by_key(|r| r.bdf);
        for w in pending.windows(2) {
            if let [a, b] = w {
                if a.bdf == b.bdf {
                    return Err(TopologyError::DuplicateBdf { bdf: a.bdf });
                }
            }
        }
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for r in pending {
                match r.parent {
                    Some(p) if !topo.by_bdf.contains_key(&p) => rest.push(r),
                    _ => {
                        topo.hot_add(r)?;
                    }
                }
            }
            if rest.len() == before {
                // No progress: every remaining parent is missing or on a loop.
                let all: BTreeMap<Bdf, Option<Bdf>> =
                    rest.iter().map(|r| (r.bdf, r.parent)).collect();
                for r in &rest {
                    if let Some(p) = r.parent {
                        if !all.contains_key(&p) {
                            return Err(TopologyError::DanglingParent {
                                bdf: r.bdf,
                                parent: p,
                            });
                        }
                    }
                }
                let bdf = rest.first().map(|r| r.bdf).unwrap_or_default();
                return Err(TopologyError::Cycle { bdf });
            }
            pending = rest;
        }
        topo.generation = 0;
        Ok(topo)
    }

    /// The CPU identity.
    pub fn cpu(&self) -> CpuInfo {
        self.cpu
    }

    /// Bumped by every mutation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// All host bridges.
    pub fn host_bridges(&self) -> &[HostBridge] {
        &self.host_bridges
    }

    /// Host bridges with their ids.
    pub fn host_bridge_ids(&self) -> impl Iterator<Item = (HostBridgeId, &HostBridge)> + '_ {
        self.host_bridges
            .iter()
            .enumerate()
            .map(|(i, h)| (HostBridgeId(i as u16), h))
    }

    /// One host bridge.
    pub fn host_bridge(&self, id: HostBridgeId) -> Option<&HostBridge> {
        self.host_bridges.get(id.index())
    }

    /// The device with `id`, if present.
    #[inline]
    pub fn device(&self, id: DeviceId) -> Option<&Device> {
        self.devices.get(id.index()).and_then(|d| d.as_ref())
    }

    /// Device `id`, or [`TopologyError::UnknownId`] naming it.
    pub fn known(&self, id: DeviceId) -> Result<&Device, TopologyError> {
        self.device(id).ok_or(TopologyError::UnknownId { id })
    }

    /// The device at `bdf`.
    pub fn lookup(&self, bdf: Bdf) -> Option<DeviceId> {
        self.by_bdf.get(&bdf).copied()
    }

    /// The device at `bdf` or a typed error naming it.
    pub fn require(&self, bdf: Bdf) -> Result<DeviceId, TopologyError> {
        self.lookup(bdf).ok_or(TopologyError::UnknownDevice { bdf })
    }

    /// Present devices in BDF order.
    pub fn devices(&self) -> impl Iterator<Item = (DeviceId, &Device)> + '_ {
        self.by_bdf
            .values()
            .filter_map(move |&id| self.device(id).map(|d| (id, d)))
    }

    /// Number of present devices.
    pub fn len(&self) -> usize {
        self.by_bdf.len()
    }

    /// True if there are no devices.
    pub fn is_empty(&self) -> bool {
        self.by_bdf.is_empty()
    }

    /// `pci_upstream_bridge`: the bridge above `id`, `None` on a root bus.
    #[inline]
    pub fn upstream(&self, id: DeviceId) -> Option<DeviceId> {
        self.device(id).and_then(|d| d.parent)
    }

    /// Functions on the root bus of `hb`, in BDF order.
    pub fn root_devices(&self, hb: HostBridgeId) -> impl Iterator<Item = (DeviceId, &Device)> + '_ {
        self.devices()
            .filter(move |(_, d)| d.parent.is_none() && d.host_bridge == hb)
    }

    /// The vendor/device the allow-list is checked against:
    /// the machine file's override, else drivers/pci/p2pdma.c
    /// `pci_host_bridge_dev` — the first function on the root bus if it is
    /// devfn 00.0 or a root port, else none.
    pub fn host_bridge_ident(&self, hb: HostBridgeId) -> Option<(u16, u16)> {
        let h = self.host_bridge(hb)?;
        if let Some(id) = h.ident {
            return Some(id);
        }
        let (_, first) = self.root_devices(hb).next()?;
        let devfn0 = first.bdf.dev() == 0 && first.bdf.func() == 0;
        (devfn0 || first.port == PortType::RootPort).then_some((first.vendor, first.device))
    }

    /// The memory BAR containing `phys`, as (owner, BAR index).
    pub fn bar_at(&self, phys: PhysAddr) -> Option<(DeviceId, u8)> {
        let (_, &(last, id, idx)) = self.bars.range(..=phys.raw()).next_back()?;
        (phys.raw() <= last).then_some((id, idx))
    }

    /// The lowest memory BAR whose first byte lies in `[phys, phys + len)`,
    /// as (owner, BAR index); `None` for an empty range. Tells a caller that
    /// decided a whole range from its first byte ([`bar_at`](Self::bar_at))
    /// whether a BAR begins part-way through it.
    pub fn bar_starting_in(&self, phys: PhysAddr, len: u64) -> Option<(DeviceId, u8)> {
        let last = phys.raw().saturating_add(len.checked_sub(1)?);
        let (_, &(_, id, idx)) = self.bars.range(phys.raw()..=last).next()?;
        Some((id, idx))
    }

    /// Bus address of a BAR's first byte through its host bridge's windows
    /// (`pci_bus_address`). Identity when the bridge has no windows.
    pub fn bar_bus_addr(&self, id: DeviceId, bar: u8) -> Result<BusAddr, BarAddrError> {
        let d = self.device(id).ok_or(BarAddrError::UnknownId { id })?;
        let b = d
            .bar(bar)
            .ok_or(BarAddrError::NoSuchBar { bdf: d.bdf, bar })?;
        let hb = self
            .host_bridge(d.host_bridge)
            .ok_or(BarAddrError::NoHostBridge { bdf: d.bdf })?;
        if hb.mmio.is_empty() {
            return Ok(BusAddr::new(b.addr.raw()));
        }
        hb.mmio
            .phys_to_bus(b.addr, b.size)
            .map_err(BarAddrError::Translate)
    }

    /// Sets the ACS control bits of `id`; bumps the generation. Returns the
    /// previous control value.
    pub fn set_acs_ctrl(&mut self, id: DeviceId, ctrl: Acs) -> Result<Acs, TopologyError> {
        let d = self
            .devices
            .get_mut(id.index())
            .and_then(|d| d.as_mut())
            .ok_or(TopologyError::UnknownId { id })?;
        let bdf = d.bdf;
        let acs = d
            .acs
            .as_mut()
            .ok_or(TopologyError::NoAcsCapability { bdf })?;
        let old = acs.ctrl;
        acs.ctrl = ctrl;
        self.generation += 1;
        Ok(old)
    }

    /// Rewrites every device and host-bridge name with `f` (a display
    /// escaping: the CLI makes control characters printable before it
    /// prints text). Names are labels only: no verdict, group or lookup by
    /// BDF depends on them, so the generation stays.
    pub fn relabel(&mut self, f: &dyn Fn(&str) -> alloc::string::String) {
        for h in &mut self.host_bridges {
            h.name = f(&h.name);
        }
        for d in self.devices.iter_mut().flatten() {
            if let Some(n) = d.name.as_mut() {
                *n = f(n);
            }
        }
    }

    /// Hot-adds one function (its parent must already be present); bumps the
    /// generation.
    pub fn hot_add(&mut self, r: DeviceRecord) -> Result<DeviceId, TopologyError> {
        if self.by_bdf.contains_key(&r.bdf) {
            return Err(TopologyError::DuplicateBdf { bdf: r.bdf });
        }
        let (parent, hb) = match r.parent {
            Some(p) => {
                if p == r.bdf {
                    return Err(TopologyError::Cycle { bdf: r.bdf });
                }
                let pid = self.lookup(p).ok_or(TopologyError::DanglingParent {
                    bdf: r.bdf,
                    parent: p,
                })?;
                let pd = self.device(pid).ok_or(TopologyError::DanglingParent {
                    bdf: r.bdf,
                    parent: p,
                })?;
                if !pd.port.is_bridge() {
                    return Err(TopologyError::ParentNotBridge {
                        bdf: r.bdf,
                        parent: p,
                        port: pd.port,
                    });
                }
                if p.domain() != r.bdf.domain() {
                    return Err(TopologyError::DomainMismatch {
                        bdf: r.bdf,
                        parent: p,
                    });
                }
                (Some(pid), pd.host_bridge)
            }
            None => {
                let i = self
                    .host_bridges
                    .iter()
                    .position(|h| h.domain == r.bdf.domain() && h.root_bus == r.bdf.bus())
                    .ok_or(TopologyError::NoHostBridge { bdf: r.bdf })?;
                (None, HostBridgeId(i as u16))
            }
        };
        let bars = self.check_bars(&r, hb)?;
        let numa_node = r
            .numa_node
            .resolve(self.host_bridge(hb).and_then(|h| h.numa_node));
        if self.devices.len() >= u32::MAX as usize {
            return Err(TopologyError::TooManyDevices);
        }
        let id = DeviceId(self.devices.len() as u32);
        for b in bars.iter().filter(|b| b.is_mem()) {
            self.bars
                .insert(b.addr.raw(), (b.addr.raw() + (b.size - 1), id, b.index));
        }
        self.devices.push(Some(Device {
            bdf: r.bdf,
            name: r.name,
            vendor: r.vendor,
            device: r.device,
            class: r.class,
            port: r.port,
            parent,
            host_bridge: hb,
            bars,
            dma_mask: r.dma_mask,
            coherent: r.coherent,
            untrusted: r.untrusted,
            multifunction: r.multifunction,
            acs: r.acs,
            numa_node,
            children: Vec::new(),
        }));
        self.by_bdf.insert(r.bdf, id);
        if let Some(pid) = parent {
            let pos = self.device(pid).map_or(0, |pd| {
                pd.children
                    .partition_point(|c| self.device(*c).is_some_and(|cd| cd.bdf < r.bdf))
            });
            if let Some(Some(pd)) = self.devices.get_mut(pid.index()) {
                pd.children.insert(pos, id);
            }
        }
        self.generation += 1;
        Ok(id)
    }

    /// Hot-removes `id` and everything below it; bumps the generation.
    /// Returns the removed ids (the subtree, `id` first).
    pub fn hot_remove(&mut self, id: DeviceId) -> Result<Vec<DeviceId>, TopologyError> {
        let d = self.known(id)?;
        let parent = d.parent;
        let mut removed = Vec::new();
        let mut stack = alloc::vec![id];
        while let Some(x) = stack.pop() {
            if let Some(dev) = self.devices.get_mut(x.index()).and_then(|s| s.take()) {
                self.by_bdf.remove(&dev.bdf);
                for b in dev.bars.iter().filter(|b| b.is_mem()) {
                    self.bars.remove(&b.addr.raw());
                }
                stack.extend(dev.children.iter().copied());
                removed.push(x);
            }
        }
        if let Some(p) = parent {
            if let Some(Some(pd)) = self.devices.get_mut(p.index()) {
                pd.children.retain(|c| *c != id);
            }
        }
        self.generation += 1;
        Ok(removed)
    }

    fn check_bars(&self, r: &DeviceRecord, hb: HostBridgeId) -> Result<Vec<Bar>, TopologyError> {
        let bad = |index, reason| TopologyError::BarInvalid {
            bdf: r.bdf,
            index,
            reason,
        };
        let mut bars = r.bars.clone();
        bars.sort_by_key(|b| b.index);
        let mut used = [false; 6];
        for b in &bars {
            let i = b.index as usize;
            if i > 5 {
                return Err(bad(b.index, "index must be 0..=5"));
            }
            if used[i] {
                return Err(bad(b.index, "index used twice (or by a 64-bit BAR below)"));
            }
            used[i] = true;
            if b.is_64 {
                if !b.is_mem() {
                    return Err(bad(b.index, "an I/O BAR cannot be 64-bit"));
                }
                if i == 5 || used[i + 1] {
                    return Err(bad(b.index, "a 64-bit BAR needs the next index free"));
                }
                used[i + 1] = true;
            }
            if b.size == 0 || !b.size.is_power_of_two() {
                return Err(bad(b.index, "size must be a non-zero power of two"));
            }
            let min = if b.is_mem() { 16 } else { 4 };
            if b.size < min {
                return Err(bad(
                    b.index,
                    "size below the PCI minimum (16 bytes mem, 4 I/O)",
                ));
            }
            if !b.is_mem() && b.size > 256 {
                return Err(bad(b.index, "I/O BARs are at most 256 bytes"));
            }
            if b.addr.last_of(b.size).is_none() {
                return Err(bad(b.index, "range wraps the address space"));
            }
            if !b.addr.is_aligned(b.size) {
                return Err(bad(b.index, "address not aligned to size"));
            }
        }
        let h = self
            .host_bridge(hb)
            .ok_or(TopologyError::NoHostBridge { bdf: r.bdf })?;
        for b in bars.iter().filter(|b| b.is_mem()) {
            if !h.mmio.is_empty()
                && !h
                    .mmio
                    .windows()
                    .iter()
                    .any(|w| w.contains_phys(b.addr, b.size))
            {
                return Err(TopologyError::BarOutsideWindow {
                    bdf: r.bdf,
                    index: b.index,
                    addr: b.addr,
                    size: b.size,
                    host_bridge: h.name.clone(),
                });
            }
            // A 32-bit BAR decodes bus addresses below 4 GiB (the CPU side may
            // be anywhere, through the window's offset).
            let bus = if h.mmio.is_empty() {
                Some(b.addr.raw())
            } else {
                h.mmio.phys_to_bus(b.addr, b.size).ok().map(|x| x.raw())
            };
            if !b.is_64 && bus.is_none_or(|x| x.checked_add(b.size).is_none_or(|e| e > 1 << 32)) {
                return Err(TopologyError::BarInvalid {
                    bdf: r.bdf,
                    index: b.index,
                    reason: "a 32-bit BAR must decode bus addresses below 4 GiB",
                });
            }
            let last = b.addr.raw() + (b.size - 1);
            if let Some((_, &(_, oid, oidx))) = self
                .bars
                .range(..=last)
                .next_back()
                .filter(|(_, (olast, _, _))| *olast >= b.addr.raw())
            {
                let obdf = self.device(oid).map(|d| d.bdf).unwrap_or_default();
                return Err(TopologyError::BarOverlap {
                    a: (obdf, oidx),
                    b: (r.bdf, b.index),
                });
            }
        }
        for pair in bars.windows(2) {
            if let [a, b] = pair {
                if a.is_mem()
                    && b.is_mem()
                    && a.addr.raw() <= b.addr.raw() + (b.size - 1)
                    && b.addr.raw() <= a.addr.raw() + (a.size - 1)
                {
                    return Err(TopologyError::BarOverlap {
                        a: (r.bdf, a.index),
                        b: (r.bdf, b.index),
                    });
                }
            }
        }
        // Non-adjacent pairs within one device.
        for (i, a) in bars.iter().enumerate() {
            for b in bars.iter().skip(i + 2) {
                if a.is_mem()
                    && b.is_mem()
                    && a.addr.raw() <= b.addr.raw() + (b.size - 1)
                    && b.addr.raw() <= a.addr.raw() + (a.size - 1)
                {
                    return Err(TopologyError::BarOverlap {
                        a: (r.bdf, a.index),
                        b: (r.bdf, b.index),
                    });
                }
            }
        }
        Ok(bars)
    }

    /// Re-checks structural invariants: map and arena agree, parents are
    /// present bridges, no loops, children lists match parents.
    pub fn check_invariants(&self) -> Result<(), TopologyError> {
        for (&bdf, &id) in &self.by_bdf {
            let d = self
                .device(id)
                .ok_or(TopologyError::UnknownDevice { bdf })?;
            if d.bdf != bdf {
                return Err(TopologyError::UnknownDevice { bdf });
            }
            let mut steps = 0usize;
            let mut cur = d.parent;
            while let Some(p) = cur {
                steps += 1;
                if steps > self.devices.len() {
                    return Err(TopologyError::Cycle { bdf });
                }
                let pd = self.device(p).ok_or(TopologyError::UnknownId { id: p })?;
                if !pd.port.is_bridge() {
                    return Err(TopologyError::ParentNotBridge {
                        bdf,
                        parent: pd.bdf,
                        port: pd.port,
                    });
                }
                cur = pd.parent;
            }
            if let Some(p) = d.parent.and_then(|p| self.device(p)) {
                if !p.children.contains(&id) {
                    return Err(TopologyError::DanglingParent { bdf, parent: p.bdf });
                }
            }
        }
        Ok(())
    }
}
