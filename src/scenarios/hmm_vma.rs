//! 14. Device VMA invalidation (mm/mmu_notifier.c interval notifiers): a
//!     process range backed by a GPU's device-private memory is mapped for a
//!     peer through the owner's alias; the range migrates, the peer's
//!     mapping is torn down at once and its old address faults at the strict
//!     IOMMU; re-mapped, its writes land in the RAM copy the CPU reads.

use super::hmm_migrate::{gpu, probe};
use super::{check, failed, masters, skip, Scenario, Stop, Trial};
use dma_api::hmm::{Backing, VirtAddr};
use dma_api::{Direction, PAGE_SIZE};
use dma_consumers::hmm::PairRule;
use dma_sim::assembly::IommuMode;
use dma_sim::fabric::FaultReason;
use dma_sim::mm::ProcessMm;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "hmm-vma",
    description: "a peer's mapping of a device VMA is invalidated on migration: the old address faults, the re-map reaches RAM",
    run,
};

const VA: u64 = 0x7f00_0000_0000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    // When the runner has proven the strict assembly (its mode is strict),
    // what the machine description answers is asked before assembling, in
    // the same order: a strict assembly has an IOMMU exactly when a host
    // bridge has one (`Assembly::build`).
    if t.mode() == IommuMode::Strict {
        if !t
            .machine()
            .topology
            .host_bridges()
            .iter()
            .any(|hb| hb.iommu)
        {
            return Err(skip("no IOMMU"));
        }
        gpu(t.machine())?;
    }
    let a = t.assemble(IommuMode::Strict)?;
    if a.iommu.is_none() {
        return Err(skip("no IOMMU"));
    }
    let (owner, vram) = gpu(&a.machine)?;
    let (dp, g) = probe(&a, owner, vram)?;
    let mm = ProcessMm::new(dp.clone());
    let va = VirtAddr::new(VA);
    let len = 2 * PAGE_SIZE;
    let first = g.page(0).ok_or_else(|| Stop::Fail("no page".into()))?;
    mm.mmap(va, Backing::DevicePrivate(first), len)
        .map_err(failed("mmap"))?;
    let mut found = None;
    for p in masters(&a).map(|e| e.bdf).filter(|b| !b.same_slot(owner)) {
        g.set_rule(p, Direction::FromDevice, PairRule::Alias);
        let dev = super::device(&a, p)?;
        if let Ok(m) = mm.map_for_device(&dev, va, len, Direction::FromDevice) {
            found = Some((p, dev, m));
            break;
        }
    }
    let (peer, dev, m) = found.ok_or_else(|| skip("no peer may write the GPU's BAR"))?;
    let old = m.dma(0).ok_or_else(|| Stop::Fail("no address".into()))?;
    t.note(format!(
        "{va} + {len:#x} is device-private memory of {owner}; {peer} maps it through the alias at {old}"
    ));
    a.fabric
        .dma_write(peer, old, b"before")
        .map_err(failed("alias write"))?;
    let moved = mm.migrate_to_ram(va, len).map_err(failed("migrate"))?;
    check(!m.is_valid(), || {
        "the mapping survived the migration".into()
    })?;
    t.note(format!(
        "{moved} pages migrated; {peer}'s mapping invalidated"
    ));
    a.fabric.take_faults();
    let f = match a.fabric.dma_write(peer, old, b"stale!") {
        Ok(()) => {
            return Err(Stop::Fail(
                "a write to the old address was delivered".into(),
            ))
        }
        Err(f) => f,
    };
    check(matches!(f.reason, FaultReason::IommuFault(_)), || {
        format!("faulted, but not at the IOMMU: {f}")
    })?;
    let m2 = mm
        .map_for_device(&dev, va, len, Direction::FromDevice)
        .map_err(failed("re-map"))?;
    let new = m2.dma(0).ok_or_else(|| Stop::Fail("no address".into()))?;
    t.record_route(&a, peer, new, true);
    a.fabric
        .dma_write(peer, new, b"after!")
        .map_err(failed("write after re-map"))?;
    let mut b = [0u8; 6];
    mm.cpu_read(va, &mut b).map_err(failed("CPU read"))?;
    check(&b == b"after!", || {
        "the re-mapped write did not reach RAM".into()
    })?;
    Ok(format!(
        "the old address faulted at the IOMMU ({}); after re-mapping, {peer}'s write reached the RAM copy",
        f.reason
    ))
}
