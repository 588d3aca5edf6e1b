//! Picking devices by role: a client and a registered p2pmem range whose
//! mapping the dispatcher decides a given way. Peer memory is only what a
//! provider registered: the ranges of the registered providers
//! ([`crate::providers::registered_for_mapping`]), published first (what
//! `pci_p2pmem_find` would hand out), then unpublished ones — never a BAR
//! nobody registered. Each pair is judged by
//! [`DmaDevice::explain_map`](dma_api::device::DmaDevice::explain_map), the
//! same dispatcher the scenario then maps through.

use super::{skip, Stop};
use dma_api::device::Decision;
use dma_api::{Bdf, Direction, PhysAddr};
use dma_sim::assembly::Assembly;

/// A client and where in a peer's BAR it will map.
pub(crate) struct Pair {
    /// The DMA master.
    pub client: Bdf,
    /// The BAR's owner.
    pub provider: Bdf,
    /// CPU physical address of the first byte.
    pub at: PhysAddr,
    /// The dispatcher's explanation for the pair.
    pub decision: Decision,
}

/// Registered peer memory to try, `(owner, start)`, each at least `len`
/// bytes; a scenario without any is skipped saying no registered provider
/// fits.
fn candidates(a: &Assembly, len: u64) -> Result<Vec<(Bdf, PhysAddr)>, Stop> {
    let m = &a.machine;
    let providers = crate::providers::registered_for_mapping(m);
    if providers.is_empty() {
        return Err(skip(
            "no registered p2pmem provider fits (the machine registers none)",
        ));
    }
    let mut v: Vec<(Bdf, PhysAddr)> = Vec::new();
    for id in providers {
        let Some(d) = m.topology.device(id) else {
            continue;
        };
        for r in m.p2pmem.resources(id).iter().filter(|r| r.size >= len) {
            v.push((d.bdf, r.phys));
        }
    }
    if v.is_empty() {
        return Err(skip(format!(
            "no registered p2pmem provider fits (no registered range of at least {len:#x} bytes)"
        )));
    }
    Ok(v)
}

/// The first (registered peer memory, client) pair, client a DMA master and
/// not a function of the provider's own device, whose `len`-byte mapping in
/// `dir` satisfies `want`; `Ok(None)` if no pair does. Skips (`Err`) when no
/// registered provider has a range of `len` bytes.
pub(crate) fn pair(
    a: &Assembly,
    len: u64,
    dir: Direction,
    want: impl Fn(&Decision) -> bool,
) -> Result<Option<Pair>, Stop> {
    // Clients below a port first (the pairs a switch could connect), then
    // root-bus functions.
    let topo = &a.machine.topology;
    let on_root_bus = |b: Bdf| {
        topo.lookup(b)
            .and_then(|id| topo.device(id))
            .is_some_and(|d| d.parent.is_none())
    };
    let mut clients: Vec<_> = super::masters(a).collect();
    clients.sort_by_key(|e| on_root_bus(e.bdf));
    for (provider, at) in candidates(a, len)? {
        for e in clients.iter().filter(|e| !e.bdf.same_slot(provider)) {
            let decision = e.device.explain_map(at, len, dir);
            if want(&decision) {
                return Ok(Some(Pair {
                    client: e.bdf,
                    provider,
                    at,
                    decision,
                }));
            }
        }
    }
    Ok(None)
}
