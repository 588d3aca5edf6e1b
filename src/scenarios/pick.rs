//! Picking devices by role: a client and a peer memory BAR whose mapping
//! the dispatcher decides a given way. Candidates come in a fixed order —
//! published p2pmem first (what `pci_p2pmem_find` would hand out), then
//! every other memory BAR of an endpoint — and each pair is judged by
//! [`DmaDevice::explain_map`](dma_api::device::DmaDevice::explain_map), the
//! same dispatcher the scenario then maps through.

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

/// Peer memory to try, `(owner, start)`, each at least `len` bytes.
fn candidates(a: &Assembly, len: u64) -> Vec<(Bdf, PhysAddr)> {
    let topo = &a.machine.topology;
    let bdf_of = |id| topo.device(id).map(|d| d.bdf);
    let mut v: Vec<(Bdf, PhysAddr)> = Vec::new();
    for id in a.machine.p2pmem.providers() {
        if !a.machine.p2pmem.stats(id).is_some_and(|s| s.published) {
            continue;
        }
        for r in a
            .machine
            .p2pmem
            .resources(id)
            .iter()
            .filter(|r| r.size >= len)
        {
            v.extend(bdf_of(id).map(|b| (b, r.phys)));
        }
    }
    for (_, d) in topo.devices().filter(|(_, d)| !d.port.is_bridge()) {
        for b in d.bars.iter().filter(|b| b.is_mem() && b.size >= len) {
            if !v.iter().any(|(_, at)| *at == b.addr) {
                v.push((d.bdf, b.addr));
            }
        }
    }
    v
}

/// The first (peer memory, client) pair, client a DMA master and not a
/// function of the provider's own device, whose `len`-byte mapping in `dir` satisfies `want`.
pub(crate) fn pair(
    a: &Assembly,
    len: u64,
    dir: Direction,
    want: impl Fn(&Decision) -> bool,
) -> Option<Pair> {
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
    for (provider, at) in candidates(a, len) {
        for e in clients.iter().filter(|e| !e.bdf.same_slot(provider)) {
            let decision = e.device.explain_map(at, len, dir);
            if want(&decision) {
                return Some(Pair {
                    client: e.bdf,
                    provider,
                    at,
                    decision,
                });
            }
        }
    }
    None
}
