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
    Ok(headline(&a))
}

/// The outcome line, with the number the fabric counted.
fn headline(a: &dma_sim::assembly::Assembly) -> String {
    format!(
        "P2P kept {} bytes off the root complex and RAM",
        super::kept_off_root_complex(a)
    )
}

#[cfg(test)]
mod tests {
    use super::headline;
    use dma_api::DmaAddr;
    use dma_sim::assembly::Assembly;
    use dma_sim::machine::Machine;

    /// Bug: the headline printed a constant instead of what the fabric
    /// counted.
    #[test]
    fn the_headline_counts_what_the_fabric_moved() {
        let a = Assembly::new(Machine::reference().unwrap()).unwrap();
        // nvme1 writes 4 KiB into nvme0's CMB by bus address, across the
        // switch (no mapping needed for the fabric).
        let nvme1 = "04:00.0".parse().unwrap();
        a.fabric
            .dma_write(nvme1, DmaAddr::new(0x40_0000_0000), &[0x5a; 0x1000])
            .unwrap();
        assert_eq!(a.fabric.root_complex_bytes(), 0);
        assert_eq!(
            headline(&a),
            "P2P kept 4096 bytes off the root complex and RAM"
        );
        // Bytes that went through the root complex are not "kept".
        let gpu0 = "06:00.0".parse().unwrap();
        let _ = a
            .fabric
            .dma_write(gpu0, DmaAddr::new(0x40_0000_0000), &[1; 0x1000]);
        let rc = a.fabric.root_complex_bytes();
        let c = a.fabric.counters();
        let moved = c.bytes_written + c.bytes_read;
        assert_eq!(
            headline(&a),
            format!(
                "P2P kept {} bytes off the root complex and RAM",
                moved.saturating_sub(rc.max(a.fabric.ram_bytes()))
            )
        );
    }
}
