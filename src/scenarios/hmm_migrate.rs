//! 12. Device-private memory, CPU access: a GPU registers device-private
//!     pages backed by its VRAM and writes them; the CPU reads two of them.
//!     Exactly those two migrate to RAM, copied by the GPU's own DMA on the
//!     fabric, and the CPU reads the GPU's bytes (mm/memremap.c,
//!     mm/migrate_device.c semantics).

use super::{check, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::hmm::DevicePrivateMemory;
use dma_api::mem::CpuMemory;
use dma_api::{Bdf, PhysAddr, PAGE_SIZE};
use dma_consumers::hmm::HmmGpu;
use dma_sim::engine::FabricEngine;
use dma_sim::machine::Machine;
use dma_sim::Assembly;
use std::sync::Arc;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "hmm-migrate",
    description: "a GPU writes device-private memory, the CPU reads it: exactly the touched pages migrate by the GPU's DMA",
    run,
};

const PAGES: u64 = 8;
const DISPLAY: u32 = 0x03;

/// A discrete GPU (display class, no stolen RAM) with a registered VRAM
/// window of at least `PAGES` pages, and where its window starts.
pub(super) fn gpu(m: &Machine) -> Result<(Bdf, PhysAddr), Stop> {
    let apu = super::apu_test(m);
    crate::providers::registered_for_mapping(m)
        .into_iter()
        .filter(|&id| !apu(id))
        .filter_map(|id| {
            let d = m.topology.device(id)?;
            let r = m
                .p2pmem
                .resources(id)
                .iter()
                .find(|r| r.size >= PAGES * PAGE_SIZE)?;
            (d.class >> 16 == DISPLAY).then_some((d.bdf, r.phys))
        })
        .next()
        .ok_or_else(|| skip("no display device registers VRAM as p2pmem"))
}

/// The GPU's driver with `PAGES` device-private pages at the start of its
/// registered window.
pub(super) fn probe(
    a: &Assembly,
    bdf: Bdf,
    vram: PhysAddr,
) -> Result<(Arc<DevicePrivateMemory>, Arc<HmmGpu>), Stop> {
    let dp = DevicePrivateMemory::new(a.ctx.clone());
    let dev = super::device(a, bdf)?;
    let engine = FabricEngine::new(a.fabric.clone(), bdf);
    let g = HmmGpu::probe(&dp, dev, engine, vram, PAGES).map_err(failed("probe"))?;
    Ok((dp, g))
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let (bdf, vram) = gpu(t.machine())?;
    let a = t.assemble(t.mode())?;
    let (dp, g) = probe(&a, bdf, vram)?;
    for i in 0..PAGES {
        g.write_local(i, 0, &pattern(PAGE_SIZE, i as u8))
            .map_err(failed("GPU write"))?;
    }
    let p = |i| g.page(i).ok_or_else(|| Stop::Fail("no page".into()));
    t.note(format!(
        "{bdf} registers {PAGES} device-private pages at {} backed by VRAM at {vram} and writes them",
        p(0)?
    ));
    a.fabric.reset_counters();
    let mut two = vec![0u8; PAGE_SIZE as usize];
    dp.read(p(2)?, &mut two).map_err(failed("CPU read"))?;
    let mut five = vec![0u8; 100];
    dp.read(PhysAddr::new(p(5)?.raw() + 50), &mut five)
        .map_err(failed("CPU read"))?;
    check(two == pattern(PAGE_SIZE, 2), || "page 2 differs".into())?;
    check(five == pattern(PAGE_SIZE, 5)[50..150], || {
        "page 5 differs".into()
    })?;
    let moved = dp.migrated_pages();
    check(moved == vec![p(2)?, p(5)?], || {
        format!("migrated {moved:?}, not exactly pages 2 and 5")
    })?;
    let ram = dp
        .ram_copy(p(2)?)
        .ok_or_else(|| Stop::Fail("no RAM copy".into()))?;
    t.note(format!(
        "the CPU read page 2 and 100 bytes of page 5: both migrated (page 2 now at {ram}), 6 stay on the GPU"
    ));
    let written = a.fabric.counters().bytes_written;
    check(written == 2 * PAGE_SIZE, || {
        format!("the GPU's copy engine wrote {written} bytes, not two pages")
    })?;
    Ok(format!(
        "exactly 2 of {PAGES} pages migrated; {written} bytes written into RAM by {bdf}'s DMA; the CPU read the GPU's bytes"
    ))
}
