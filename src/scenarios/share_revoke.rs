//! 11. Buffer sharing, revocation: a VFIO-style exporter shares two slices
//!     of a peer's BAR with a device that reaches them through the host
//!     bridge and the IOMMU. The device streams; a reset revokes the buffer,
//!     which completes once the importer unmapped and acknowledged; the
//!     device's next write faults at the IOMMU, a map fails with `Revoked`,
//!     and after the restore the stream resumes. Always strict (like
//!     `strict-unmap`): a lazy domain keeps the unmapped IOVA reachable until
//!     its flush-queue timeout, after the revocation completed (RFC §5.9).

use super::{check, cpu_read, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::port::SegTarget;
use dma_api::share::{
    ImporterCaps, ImporterOps, MapId, Notice, ShareAccess, ShareError, ShareMapping, SpinWait,
    WaitBudget,
};
use dma_api::{Direction, PhysAddr};
use dma_consumers::vfio::VfioBarExporter;
use dma_sim::assembly::{Assembly, IommuMode};
use std::sync::{Arc, Mutex};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "share-revoke",
    description: "strict IOMMU (always): a VFIO-style BAR-slice buffer is revoked while a device streams: completes after its unmap, then faults and Revoked until restored",
    run,
};

const SLICE: u64 = 0x1000;
const SECOND: u64 = 0x10_000;

/// Unmaps its live mapping and acknowledges when revoked.
#[derive(Default)]
struct Streamer(Mutex<Option<MapId>>);

impl ImporterOps for Streamer {
    fn revoke(&self, n: &mut Notice<'_>) {
        let mut live = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = live.take() {
            if n.unmap(m).is_err() {
                // Not acknowledged: the revocation names this importer.
                *live = Some(m);
                return;
            }
        }
        n.ack();
    }
}

fn stream(a: &Assembly, who: dma_api::Bdf, m: &ShareMapping, seed: u8) -> Result<Vec<u8>, Stop> {
    let data = pattern(m.len(), seed);
    let mut at = 0usize;
    for s in m.segments() {
        a.fabric
            .dma_write(who, s.dma, &data[at..at + s.len as usize])
            .map_err(failed("device write"))?;
        at += s.len as usize;
    }
    Ok(data)
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(IommuMode::Strict)?;
    let m = &a.machine;
    // A registered range with room for two slices, and a device that writes
    // it through the host bridge under a translating IOMMU.
    let mut found = None;
    for id in crate::providers::registered_for_mapping(m) {
        let Some(p) = m.topology.device(id) else {
            continue;
        };
        for r in m
            .p2pmem
            .resources(id)
            .iter()
            .filter(|r| r.size >= SECOND + SLICE)
        {
            let who = super::masters(&a).find(|e| {
                if e.bdf.same_slot(p.bdf) {
                    return false;
                }
                let d = e.device.explain_map(r.phys, SLICE, Direction::FromDevice);
                d.error.is_none()
                    && matches!(d.target, Some((_, SegTarget::PeerHostBridge)))
                    && e.device.has_iova_api()
            });
            if let Some(e) = who {
                found = Some((p.bdf, r.phys, e.bdf, e.device.clone()));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let (provider, bar, who, dev) = found.ok_or_else(|| {
        skip("no device writes a registered p2pmem range through the host bridge and an IOMMU")
    })?;
    let v = VfioBarExporter::new(a.ctx.clone(), provider, bar);
    let buf = v
        .export(&[(0, SLICE), (SECOND, SLICE)])
        .map_err(failed("export"))?;
    let ops = Arc::new(Streamer::default());
    let att = buf
        .attach(
            dev,
            ImporterCaps::any(ShareAccess::Write, true),
            ops.clone(),
        )
        .map_err(failed("attach"))?;
    t.note(format!(
        "{provider} exports two {SLICE:#x}-byte slices of its BAR at {bar}; {who} streams into them"
    ));
    let map = att.map(Direction::FromDevice).map_err(failed("map"))?;
    *ops.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(map.id());
    t.record_route(&a, who, map.segments()[0].dma, true);
    let data = stream(&a, who, &map, 0x31)?;
    check(cpu_read(&a, bar, SLICE)? == data[..SLICE as usize], || {
        "the first write did not land".into()
    })?;
    v.reset(WaitBudget { rounds: 4 }, &SpinWait)
        .map_err(failed("reset"))?;
    check(buf.live_mappings().map_err(failed("live"))? == 0, || {
        "revocation completed with a mapping live".into()
    })?;
    t.note("revoked: the importer unmapped and acknowledged");
    let stale = map.segments()[0].dma;
    let late = a.fabric.dma_write(who, stale, &[0xee; 64]);
    check(late.is_err(), || {
        "a write after revocation reached the BAR".into()
    })?;
    check(cpu_read(&a, bar, SLICE)? == data[..SLICE as usize], || {
        "the BAR changed after revocation".into()
    })?;
    t.note(format!("{who}'s write at {stale} after revocation faulted"));
    let e = att.map(Direction::FromDevice);
    check(matches!(e, Err(ShareError::Revoked { .. })), || {
        format!("map after revoke: {e:?}, want Revoked")
    })?;
    v.restore().map_err(failed("restore"))?;
    let map = att
        .map(Direction::FromDevice)
        .map_err(failed("map after restore"))?;
    let data = stream(&a, who, &map, 0x32)?;
    let second = PhysAddr::new(bar.raw() + SECOND);
    check(
        cpu_read(&a, second, SLICE)? == data[SLICE as usize..],
        || "the stream did not resume after restore".into(),
    )?;
    att.unmap(map.id()).map_err(failed("unmap"))?;
    Ok(format!(
        "revocation waited for {who}'s unmap; its next write faulted, maps were Revoked until the restore, then {} bytes streamed again",
        2 * SLICE
    ))
}
