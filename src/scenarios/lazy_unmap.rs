//! 7b. Lazy unmap (`iommu.strict=0`, the flush queue of
//!     drivers/iommu/dma-iommu.c): the IOVA is queued, not invalidated, so
//!     the device can still reach the old page — the stale window Linux
//!     accepts for speed — until the flush-queue timer fires. The scenario
//!     probes on the IOMMU's clock in steps of a tenth of the bound and
//!     reports when the window was observed closed. Always assembled lazy.

use super::strict_unmap::translated;
use super::{check, cpu_read, device, failed, pattern, skip, write_lands, Scenario, Stop, Trial};
use dma_api::{Direction, DmaAttrs};
use dma_iommu::DomainType;
use dma_sim::assembly::IommuMode;
use dma_sim::fabric::FaultReason;
use std::time::Duration;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "lazy-unmap",
    description: "lazy IOMMU: after unmap a stale window stays open, then closes at the flush-queue timeout (measured)",
    run,
};

const LEN: u64 = 0x1000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(IommuMode::Lazy)?;
    let (bdf, dom) = translated(&a, DomainType::DmaFq)
        .ok_or_else(|| skip("no device in a flush-queue (lazy) domain"))?;
    let io = a
        .iommu
        .as_ref()
        .ok_or_else(|| Stop::Fail("no IOMMU".into()))?;
    let bound = io
        .iommu
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stale_window_bound(dom)
        .ok_or_else(|| Stop::Fail("no stale-window bound".into()))?;
    let buf = a.layout.scratch.0;
    let dev = device(&a, bdf)?;
    let dir = Direction::FromDevice;
    let dma = dev
        .map_phys(buf, LEN, dir, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    t.record_route(&a, bdf, dma, true);
    write_lands(&a, bdf, dma, buf, LEN, 0x01)?;
    dev.unmap_phys(dma, LEN, dir, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    t.note(format!(
        "{bdf} unmapped IOVA {dma}; flush-queue timeout {bound:?}"
    ));
    // Right after unmap the stale translation still works: the bytes land.
    write_lands(&a, bdf, dma, buf, LEN, 0x02)
        .map_err(|_| Stop::Fail("no stale window: the write right after unmap faulted".into()))?;
    let step = (bound / 10).max(Duration::from_micros(1));
    let (mut elapsed, mut last_ok, mut seed) = (Duration::ZERO, Duration::ZERO, 2u8);
    let closed = loop {
        if elapsed > bound * 2 {
            break None;
        }
        a.advance(step).map_err(failed("advance the IOMMU clock"))?;
        elapsed += step;
        seed = seed.wrapping_add(1);
        match a.fabric.dma_write(bdf, dma, &pattern(LEN, seed)) {
            Ok(()) => last_ok = elapsed,
            Err(f) => break Some(f),
        }
    };
    let f = closed.ok_or_else(|| Stop::Fail(format!("still open {elapsed:?} after unmap")))?;
    check(matches!(f.reason, FaultReason::IommuFault(_)), || {
        format!("closed, but not by the IOMMU: {f}")
    })?;
    check(elapsed <= bound, || {
        format!("open until {elapsed:?}, longer than the bound {bound:?}")
    })?;
    // The last stale write landed in RAM (the hazard), nothing after it.
    check(
        cpu_read(&a, buf, LEN)? == pattern(LEN, seed.wrapping_sub(1)),
        || "RAM does not hold the last stale write".into(),
    )?;
    let max = io
        .iommu
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .max_observed_window(dom);
    check(max <= bound, || {
        format!("the IOMMU recorded a {max:?} window, longer than the bound {bound:?}")
    })?;
    t.note(format!(
        "stale writes landed up to +{last_ok:?}; faulted at +{elapsed:?} (probe step {step:?})"
    ));
    t.note(format!(
        "the IOMMU's longest unmap-to-flush window: {max:?}"
    ));
    Ok(format!(
        "stale window measured open through +{last_ok:?}, closed by +{elapsed:?} (bound {bound:?})"
    ))
}
