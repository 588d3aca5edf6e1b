//! 1. Switch P2P by bus address: a client writes a peer's BAR through the
//!    switch both sit under (`PCI_P2PDMA_MAP_BUS_ADDR`,
//!    drivers/pci/p2pdma.c). The DMA address is the BAR's bus address, the
//!    IOMMU is never consulted, and the fabric's counters show the bytes
//!    never crossed the root complex or touched RAM.

use super::{check, device, failed, pick, skip, write_lands, Scenario, Stop, Trial};
use dma_api::port::SegTarget;
use dma_api::{Direction, DmaAttrs};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "switch-p2p",
    description: "peer write through a switch by bus address: lands in the BAR, never crosses the root complex or RAM",
    run,
};

const LEN: u64 = 0x3000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(t.mode())?;
    let dir = Direction::FromDevice;
    let p = pick::pair(&a, LEN, dir, |d| {
        matches!(d.target, Some((_, SegTarget::PeerBus(_)))) && d.error.is_none()
    })?
    .ok_or_else(|| {
        skip("no client reaches a peer BAR by bus address (no shared switch without ACS redirect)")
    })?;
    let Some((_, SegTarget::PeerBus(bus))) = p.decision.target else {
        return Err(skip("picked pair lost its bus-address target"));
    };
    t.note(format!(
        "{} writes {LEN:#x} bytes into the BAR of {} at phys {} (bus {bus})",
        p.client, p.provider, p.at
    ));
    let dev = device(&a, p.client)?;
    let dma = dev
        .map_phys(p.at, LEN, dir, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    check(dma.raw() == bus.raw(), || {
        format!("DMA address {dma} is not the bus address {bus}")
    })?;
    t.record_route(&a, p.client, dma, true);
    write_lands(&a, p.client, dma, p.at, LEN, 0x11)?;
    let (rc, ram) = (a.fabric.root_complex_bytes(), a.fabric.ram_bytes());
    check(rc == 0 && ram == 0, || {
        format!(
            "bus-address P2P moved {rc} bytes across the root complex and {ram} to RAM (want 0)"
        )
    })?;
    t.note("read back by the CPU at the BAR: every byte where promised");
    dev.unmap_phys(dma, LEN, dir, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    Ok(format!("P2P kept {LEN} bytes off the root complex and RAM"))
}
