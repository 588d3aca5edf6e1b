//! 10. Buffer sharing, APU: the APU's "VRAM" is a stolen-RAM carve-out shown
//!     through a BAR aperture with a GART. The APU's provider policy
//!     redirects the aperture to the carve-out pages behind it (several
//!     ranges: the GART scatters them), so an importer attached to an
//!     exported aperture range maps them as RAM: its bytes land in the
//!     carve-out and none touches the aperture.

use super::{check, cpu_read, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::memmap::RangeKind;
use dma_api::share::{ImporterCaps, NoOps, Placement, ShareAccess};
use dma_api::{Direction, PhysAddr};
use dma_consumers::apu::{Apu, Gart};
use dma_sim::fabric::Node;
use std::sync::Arc;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "share-apu",
    description: "an APU shares its aperture: its policy redirects the importer to the stolen-RAM pages behind it, zero bytes on the aperture",
    run,
};

const PAGE: u64 = 4096;
const PAGES: u64 = 4;
/// Aperture pages 0..4 show these carve-out pages.
const SCATTER: [u64; 4] = [7, 3, 4, 9];

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    // What the machine description answers is asked before assembling: a
    // machine without a carve-out is skipped without one.
    let m = t.machine();
    let (carve, size, owner) = m
        .memmap
        .ranges()
        .iter()
        .find_map(|r| match r.kind {
            RangeKind::StolenRam { owner } if r.size >= 16 * PAGE => Some((r.start, r.size, owner)),
            _ => None,
        })
        .ok_or_else(|| skip("no stolen-RAM carve-out"))?;
    let id = dma_api::topology::DeviceId::from_provider(owner);
    let apu = m
        .topology
        .device(id)
        .map(|d| d.bdf)
        .ok_or_else(|| Stop::Fail(format!("carve-out owner {owner} not in the topology")))?;
    let aperture = m
        .p2pmem
        .resources(id)
        .iter()
        .find(|r| r.size >= PAGES * PAGE)
        .map(|r| (r.phys, r.size))
        .ok_or_else(|| skip("the carve-out's owner registers no aperture"))?;
    let pages = aperture.1 / PAGE;
    let mut table: Vec<u64> = SCATTER.to_vec();
    table.extend((16..).take((pages - PAGES) as usize));
    if 16 + pages > size / PAGE {
        return Err(skip(
            "the carve-out is smaller than the aperture's GART needs",
        ));
    }
    let a = t.assemble(t.mode())?;
    let drv = Apu::probe(a.ctx.clone(), apu, Gart::new(aperture.0, carve, table))
        .map_err(failed("APU probe"))?;
    let buf = drv.export(0, PAGES * PAGE).map_err(failed("export"))?;
    let (who, att) = super::masters(&a)
        .filter(|e| !e.bdf.same_slot(apu))
        .find_map(|e| {
            let caps = ImporterCaps::any(ShareAccess::Write, true);
            buf.attach(e.device.clone(), caps, Arc::new(NoOps))
                .ok()
                .map(|att| (e.bdf, att))
        })
        .ok_or_else(|| skip("no device attaches to the aperture"))?;
    let n = att.negotiation().map_err(failed("negotiation"))?;
    t.note(format!(
        "{apu} exports {:#x} bytes of its aperture at {}; {who} attaches to write",
        PAGES * PAGE,
        aperture.0
    ));
    t.note(format!(
        "negotiated: {} (action: {})",
        n.placement,
        n.action.name()
    ));
    let to = drv
        .gart()
        .translate(aperture.0, PAGES * PAGE)
        .ok_or_else(|| Stop::Fail("the export is not behind the aperture".into()))?;
    check(n.placement == Placement::SystemRam, || {
        format!("placement {}, want system RAM", n.placement)
    })?;
    for (p, l) in &to {
        t.note(format!(
            "  the APU's policy redirects to stolen RAM {p} (+{l:#x})"
        ));
    }
    let map = att.map(Direction::FromDevice).map_err(failed("map"))?;
    a.fabric.reset_counters();
    t.record_route(&a, who, map.segments()[0].dma, true);
    let data = pattern(PAGES * PAGE, 0x5a);
    let mut at = 0usize;
    for s in map.segments() {
        a.fabric
            .dma_write(who, s.dma, &data[at..at + s.len as usize])
            .map_err(failed("device write"))?;
        at += s.len as usize;
    }
    for (i, &page) in SCATTER.iter().enumerate() {
        let p = PhysAddr::new(carve.raw() + page * PAGE);
        let want = &data[i * PAGE as usize..(i + 1) * PAGE as usize];
        check(cpu_read(&a, p, PAGE)? == want, || {
            format!("aperture page {i} is not in carve-out page {page}")
        })?;
    }
    let on_aperture: u64 = a
        .fabric
        .links()
        .iter()
        .filter(|(l, _)| l.lower == Node::Device(apu) || l.upper == Node::Device(apu))
        .map(|(_, b)| b.total())
        .sum();
    check(on_aperture == 0, || {
        format!("{on_aperture} bytes touched the aperture")
    })?;
    att.unmap(map.id()).map_err(failed("unmap"))?;
    Ok(format!(
        "{who} wrote {} bytes into the carve-out of {apu} through {} redirected ranges; 0 bytes on the aperture",
        PAGES * PAGE,
        to.len()
    ))
}
