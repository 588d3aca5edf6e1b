//! 7a. Strict unmap (`iommu.strict=1`, drivers/iommu/dma-iommu.c): the
//!     IOTLB is invalidated before `dma_unmap` returns, so the device's next
//!     access to the old address faults at the IOMMU and RAM is untouched.

use super::{check, cpu_read, device, failed, pattern, skip, write_lands, Scenario, Stop, Trial};
use dma_api::{Bdf, Direction, DmaAttrs};
use dma_iommu::{DomainId, DomainType};
use dma_sim::assembly::{Assembly, IommuMode};
use dma_sim::fabric::FaultReason;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "strict-unmap",
    description: "strict IOMMU: after unmap the device's next access faults at once; RAM unchanged",
    run,
};

const LEN: u64 = 0x2000;

/// The first DMA master whose group has a translating domain of type `ty`.
pub(super) fn translated(a: &Assembly, ty: DomainType) -> Option<(Bdf, DomainId)> {
    let io = a.iommu.as_ref()?;
    super::masters(a).find_map(|e| {
        let gd = io.domains.get(&e.group)?;
        (gd.ty == ty && gd.dma.is_some()).then_some((e.bdf, gd.id))
    })
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(IommuMode::Strict)?;
    let (bdf, _) =
        translated(&a, DomainType::Dma).ok_or_else(|| skip("no device behind an IOMMU"))?;
    let buf = a.layout.scratch.0;
    let dev = device(&a, bdf)?;
    let dir = Direction::FromDevice;
    let dma = dev
        .map_phys(buf, LEN, dir, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    t.note(format!(
        "{bdf} maps {LEN:#x} bytes of RAM at {buf} as IOVA {dma}, writes, unmaps"
    ));
    t.record_route(&a, bdf, dma, true);
    let data = write_lands(&a, bdf, dma, buf, LEN, 0x77)?;
    dev.unmap_phys(dma, LEN, dir, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    let f = match a.fabric.dma_write(bdf, dma, &pattern(LEN, 0x78)) {
        Ok(()) => return Err(Stop::Fail("a write after unmap was delivered".into())),
        Err(f) => f,
    };
    check(matches!(f.reason, FaultReason::IommuFault(_)), || {
        format!("faulted, but not at the IOMMU: {f}")
    })?;
    check(cpu_read(&a, buf, LEN)? == data, || {
        "RAM changed after unmap".into()
    })?;
    Ok(format!(
        "the first access after unmap faulted at the IOMMU ({}); RAM unchanged",
        f.reason
    ))
}
