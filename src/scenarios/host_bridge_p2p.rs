//! 2. Host-bridge P2P: a pair the switch cannot connect (ACS redirect on the
//!    path, or different root ports) goes up to the root complex, is
//!    translated there (by the IOMMU when one is on: the mapping is an IOVA
//!    with MMIO protection, drivers/iommu/dma-iommu.c `DMA_ATTR_MMIO`) and
//!    comes back down to the peer BAR (`PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`).
//!    The write lands; the root complex carries the bytes, RAM does not.

use super::{check, device, failed, pick, skip, write_lands, Scenario, Stop, Trial};
use dma_api::port::SegTarget;
use dma_api::{Direction, DmaAttrs};
use dma_sim::fabric::Hop;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "host-bridge-p2p",
    description: "peer write through the root complex (ACS-redirected or cross-port pair): lands; root-complex bytes counted",
    run,
};

const LEN: u64 = 0x2000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(t.mode())?;
    let dir = Direction::FromDevice;
    let p = pick::pair(&a, LEN, dir, |d| {
        matches!(d.target, Some((_, SegTarget::PeerHostBridge))) && d.error.is_none()
    })?
    .ok_or_else(|| skip("no peer pair whose writes go through the root complex"))?;
    if let Some(r) = &p.decision.route {
        t.note(format!(
            "{} -> BAR of {} at phys {}: {} distance {}",
            p.client, p.provider, p.at, r.map_type, r.distance
        ));
        for why in &r.reasons {
            t.note(format!("  - {why}"));
        }
    }
    let dev = device(&a, p.client)?;
    let dma = dev
        .map_phys(p.at, LEN, dir, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    t.note(format!("mapped at DMA address {dma}"));
    t.record_route(&a, p.client, dma, true);
    let by = a
        .fabric
        .route_of(p.client, dma, true)
        .ok()
        .and_then(|h| {
            h.iter().find_map(|x| match x {
                Hop::Translate { by, .. } => Some(by.to_string()),
                _ => None,
            })
        })
        .unwrap_or_else(|| "nothing".into());
    write_lands(&a, p.client, dma, p.at, LEN, 0x22)?;
    let (rc, ram) = (a.fabric.root_complex_bytes(), a.fabric.ram_bytes());
    check(rc >= LEN && ram == 0, || {
        format!(
            "host-bridge P2P: {rc} root-complex bytes (want >= {LEN}), {ram} RAM bytes (want 0)"
        )
    })?;
    dev.unmap_phys(dma, LEN, dir, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    Ok(format!(
        "{LEN} bytes landed in the peer BAR via the root complex ({rc} link bytes, translated by {by}), 0 via RAM"
    ))
}
