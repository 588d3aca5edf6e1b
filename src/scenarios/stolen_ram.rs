//! 5. Stolen RAM (an APU's "VRAM" carve-out of system RAM): a peer maps it
//!    as the RAM it is — translated like RAM, cache-coherent, never MMIO —
//!    so the bytes go through the memory controller, and the owner reads
//!    what the peer wrote through its own mapping.

use super::{check, device, failed, masters, pattern, skip, write_lands, Scenario, Stop, Trial};
use dma_api::memmap::RangeKind;
use dma_api::port::SegTarget;
use dma_api::{Direction, DmaAttrs, SegKind};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "stolen-ram",
    description: "a peer writes an APU's stolen-RAM carve-out: mapped as RAM (not MMIO); the owner reads it back",
    run,
};

const LEN: u64 = 0x1000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    // What the machine description answers is asked before assembling: a
    // machine without a carve-out is skipped without one.
    let m = t.machine();
    let (at, owner) = m
        .memmap
        .ranges()
        .iter()
        .find_map(|r| match r.kind {
            RangeKind::StolenRam { owner } if r.size >= LEN => Some((r.start, owner)),
            _ => None,
        })
        .ok_or_else(|| skip("no stolen-RAM carve-out"))?;
    let owner = m
        .topology
        .devices()
        .find(|(id, _)| id.provider_id() == owner)
        .map(|(_, d)| d.bdf)
        .ok_or_else(|| Stop::Fail(format!("carve-out owner {owner} not in the topology")))?;
    let a = t.assemble(t.mode())?;
    let client = masters(&a)
        .filter(|e| e.bdf != owner)
        .find(|e| {
            let d = e.device.explain_map(at, LEN, Direction::FromDevice);
            d.error.is_none() && matches!(d.target, Some((_, SegTarget::Ram)))
        })
        .map(|e| e.bdf)
        .ok_or_else(|| skip("no other device maps the carve-out"))?;
    let dev = device(&a, client)?;
    let kind = dev.explain_map(at, LEN, Direction::FromDevice).kind;
    check(matches!(kind, SegKind::StolenRam(_)), || {
        format!("classified as {kind:?}, want stolen RAM")
    })?;
    t.note(format!(
        "{client} writes the stolen-RAM carve-out of {owner} at {at}: mapped as RAM"
    ));
    let dma = dev
        .map_phys(at, LEN, Direction::FromDevice, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    t.record_route(&a, client, dma, true);
    let data = write_lands(&a, client, dma, at, LEN, 0x55)?;
    let ram = a.fabric.ram_bytes();
    check(ram == LEN, || format!("{ram} RAM bytes, want {LEN}"))?;
    dev.unmap_phys(dma, LEN, Direction::FromDevice, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    // The owner reads it through its own mapping.
    let own = device(&a, owner)?;
    let odma = own
        .map_phys(at, LEN, Direction::ToDevice, DmaAttrs::empty())
        .map_err(failed("owner map_phys"))?;
    let mut got = vec![0u8; LEN as usize];
    a.fabric
        .dma_read(owner, odma, &mut got)
        .map_err(failed("owner read"))?;
    check(got == data && got == pattern(LEN, 0x55), || {
        "the owner reads other bytes than the peer wrote".into()
    })?;
    t.note(format!("{owner} read them back at {odma}"));
    own.unmap_phys(odma, LEN, Direction::ToDevice, DmaAttrs::empty())
        .map_err(failed("owner unmap_phys"))?;
    Ok(format!(
        "stolen RAM mapped as RAM: {LEN} bytes through the memory controller, read back by the owner"
    ))
}
