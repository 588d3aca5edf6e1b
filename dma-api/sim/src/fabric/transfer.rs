//! Moving a transfer's bytes: one route and one copy per run of TLPs.
//!
//! Routing a TLP costs far more than copying its payload, and the TLPs of a
//! transfer mostly take the same links to one linear target. So the fabric
//! routes a *run* of addresses once, as one request of the run's length, and
//! accepts it only where no routing decision can change inside it: no MMIO
//! window begins or ends inside its bus addresses, and no BAR begins inside
//! the address range the switches decode nor inside the physical range the
//! root complex delivers to (every other decision — a dma-range, a memory-map
//! range, the BAR holding the start — the route already checked for the whole
//! length). The run is then copied in one go and counted as the TLPs it is
//! made of: per-link bytes, TLP and byte totals are exactly the per-TLP sums.
//!
//! The IOMMU is asked once per run through
//! [`RootComplexIommu::translate_run`]: one IOTLB lookup (or walk) per page
//! under one lock, the run ending where the IOVA stops being physically
//! contiguous. A run whose route fails is not guessed at: its first page is
//! routed TLP by TLP as before, so a fault names the same TLP, the TLPs before
//! it have landed and are counted, and nothing after it moves. The one
//! exception is an IOMMU fault on the run's first page, which the first TLP
//! would meet on the same path (the switches decide from the first byte):
//! it is recorded without asking the IOMMU again.

use super::route::{RouteCtx, Routed, Translate};
use super::{Fabric, FabricFault, FaultReason, Hop, RcFault, RcRun, RootComplexIommu, Target};
use dma_pci::bdf::Bdf;
use dma_pci::topology::Topology;
use dma_pci::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use std::cell::Cell;

/// The IOMMU as the router sees it while routing one run: one
/// `translate_run` for the run's start, its answer reused when the run is
/// routed again, shortened to what the IOMMU translates alike.
struct RunIommu<'a> {
    inner: &'a dyn RootComplexIommu,
    run: Cell<Option<(DmaAddr, RcRun)>>,
}

impl Translate for RunIommu<'_> {
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        if let Some((at, run)) = self.run.get() {
            if at == addr && len <= run.len {
                return Ok(run.phys);
            }
        }
        let run = self.inner.translate_run(requester, addr, len, write)?;
        self.run.set(Some((addr, run)));
        Ok(run.phys)
    }
}

/// What routing a run gave.
enum RunRoute {
    /// The first `len` bytes route alike, as `routed`.
    Run { routed: Routed, len: u64 },
    /// The IOMMU refused the first page: the first TLP's fault.
    Fault(FaultReason),
    /// Route the first page TLP by TLP.
    PerTlp,
}

/// TLPs of at most `max` bytes, never crossing a page, that carry
/// `[addr, addr + len)` (`max <= PAGE_SIZE`).
fn tlp_count(addr: DmaAddr, len: u64, max: u64) -> u64 {
    let first = len.min(PAGE_SIZE - addr.page_offset());
    let rest = len - first;
    first.div_ceil(max)
        + (rest / PAGE_SIZE) * PAGE_SIZE.div_ceil(max)
        + (rest % PAGE_SIZE).div_ceil(max)
}

/// Whether every TLP of `[addr, addr + len)` would route as the run did:
/// no MMIO window edge inside its bus range, no BAR beginning inside the
/// range the switches decode or the physical range it was delivered to.
fn uniform(topo: &Topology, requester: Bdf, addr: DmaAddr, len: u64, routed: &Routed) -> bool {
    if len <= 1 {
        return true;
    }
    let Some(hb) = topo
        .lookup(requester)
        .and_then(|id| topo.device(id))
        .and_then(|d| topo.host_bridge(d.host_bridge))
    else {
        return false;
    };
    let bus = addr.raw();
    // The range does not wrap (the transfer was checked).
    let last = bus + (len - 1);
    for w in hb.mmio.windows() {
        let start = w.bus_start.raw();
        let w_last = start.saturating_add(w.size.saturating_sub(1));
        if (start > bus && start <= last) || (w_last >= bus && w_last < last) {
            return false;
        }
    }
    let bar_inside = |first: PhysAddr| {
        first
            .checked_add(1)
            .is_none_or(|p| topo.bar_starting_in(p, len - 1).is_some())
    };
    let decoded = if hb.mmio.is_empty() {
        Some(PhysAddr::new(bus))
    } else {
        hb.mmio
            .window_for_bus(addr.as_bus())
            .and_then(|w| w.cpu_start.checked_add(bus - w.bus_start.raw()))
    };
    if decoded.is_some_and(bar_inside) {
        return false;
    }
    !routed
        .hops
        .iter()
        .any(|h| matches!(h, Hop::Translate { to, .. } if bar_inside(*to)))
}

impl Fabric {
    /// Moves `[addr, addr + len)` run by run (see the module docs);
    /// `move_bytes(target, offset, n)` copies bytes `offset..offset + n` of
    /// the transfer. Stops at the first faulting TLP, records and returns it.
    pub(super) fn transfer(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
        mut move_bytes: impl FnMut(Target, usize, usize) -> Result<(), FaultReason>,
    ) -> Result<(), FabricFault> {
        if len == 0 {
            return Ok(());
        }
        if addr.last_of(len).is_none() {
            return Err(self.record(FabricFault {
                requester,
                addr,
                write,
                reason: FaultReason::AddressOverflow { len },
            }));
        }
        let max = if write {
            self.config.max_payload
        } else {
            self.config.max_read_request
        };
        let mut off = 0u64;
        while off < len {
            // Cannot wrap: the whole range was checked above.
            let a = DmaAddr::new(addr.raw() + off);
            match self.route_run(requester, a, len - off, write) {
                RunRoute::Run { routed, len: n } => {
                    if move_bytes(routed.target, off as usize, n as usize).is_ok() {
                        let tlps = tlp_count(a, n, max);
                        match &routed.completion {
                            // The completion's hops are already in data direction.
                            Some(c) => self.count(c, n, tlps, true, write),
                            None => self.count(&routed.hops, n, tlps, write, write),
                        }
                        off += n;
                        continue;
                    }
                }
                RunRoute::Fault(reason) => {
                    return Err(self.record(FabricFault {
                        requester,
                        addr: a,
                        write,
                        reason,
                    }))
                }
                RunRoute::PerTlp => {}
            }
            let page = (len - off).min(PAGE_SIZE - a.page_offset());
            self.transfer_tlps(requester, addr, off, off + page, write, &mut move_bytes)?;
            off += page;
        }
        Ok(())
    }

    /// Routes the run starting at `addr`, at most `len` bytes.
    fn route_run(&self, requester: Bdf, addr: DmaAddr, len: u64, write: bool) -> RunRoute {
        let topo = self.topo();
        let mmu = self.iommu.as_deref().map(|inner| RunIommu {
            inner,
            run: Cell::new(None),
        });
        let ctx = RouteCtx {
            topo: &topo,
            memmap: &self.memmap,
            iommu: mmu.as_ref().map(|m| m as &dyn Translate),
        };
        let mut n = len;
        let mut routed = ctx.route(requester, addr, n, write);
        // The IOMMU translates a shorter stretch alike: route that.
        if let Some((_, run)) = mmu.as_ref().and_then(|m| m.run.get()) {
            if run.len < n {
                n = run.len;
                routed = ctx.route(requester, addr, n, write);
            }
        }
        match routed {
            Ok(r) if uniform(&topo, requester, addr, n, &r) => RunRoute::Run { routed: r, len: n },
            Ok(_) => RunRoute::PerTlp,
            Err(FaultReason::IommuFault(e)) => RunRoute::Fault(FaultReason::IommuFault(e)),
            Err(_) => RunRoute::PerTlp,
        }
    }

    /// Bytes `[from, to)` of the transfer at `addr`, one routed TLP at a time.
    fn transfer_tlps(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        from: u64,
        to: u64,
        write: bool,
        move_bytes: &mut impl FnMut(Target, usize, usize) -> Result<(), FaultReason>,
    ) -> Result<(), FabricFault> {
        let max = if write {
            self.config.max_payload
        } else {
            self.config.max_read_request
        };
        let mut off = from;
        while off < to {
            let a = DmaAddr::new(addr.raw() + off);
            let n = (to - off).min(max).min(PAGE_SIZE - a.page_offset());
            let routed = {
                let topo = self.topo();
                let ctx = RouteCtx {
                    topo: &topo,
                    memmap: &self.memmap,
                    iommu: self.iommu.as_ref().map(|m| m as &dyn Translate),
                };
                ctx.route(requester, a, n, write)
            };
            let result = routed.and_then(|r| {
                move_bytes(r.target, off as usize, n as usize)?;
                Ok(r)
            });
            match result {
                Ok(r) => match &r.completion {
                    Some(c) => self.count(c, n, 1, true, write),
                    None => self.count(&r.hops, n, 1, write, write),
                },
                Err(reason) => {
                    return Err(self.record(FabricFault {
                        requester,
                        addr: a,
                        write,
                        reason,
                    }))
                }
            }
            off += n;
        }
        Ok(())
    }
}
