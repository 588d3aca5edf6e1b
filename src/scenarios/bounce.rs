//! 6. swiotlb bounce for a device with a 32-bit DMA mask
//!    (kernel/dma/swiotlb.c, `dma_capable` in kernel/dma/direct.h): a
//!    buffer at the top of RAM is out of the device's reach, so the mapping hands
//!    out a bounce slot below it. The device's write lands in the slot, is
//!    invisible at the buffer until `sync_single_for_cpu` copies it back,
//!    then is exact.
//!
//! A machine without a small-mask device gets one: the first plain endpoint
//! is re-plugged with a 32-bit mask, as its driver's
//! `dma_set_mask(DMA_BIT_MASK(32))` would. swiotlb serves devices the IOMMU
//! does not translate, so an IOMMU host bridge is assembled with
//! `iommu=off` here.

use super::{check, cpu_read, device, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::memmap::RangeKind;
use dma_api::topology::DeviceRecord;
use dma_api::{Bdf, Direction, DmaAttrs, DmaMask, PhysAddr};
use dma_sim::assembly::{AssemblyError, IommuMode};
use dma_sim::machine::Machine;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "swiotlb-bounce",
    description: "a 32-bit-mask device writes a buffer beyond its reach: bounced via swiotlb, visible after sync_for_cpu",
    run,
};

const LEN: u64 = 0x1f00;
const FOUR_GIB: u64 = 1 << 32;

/// The machine with a device whose mask is 32 bits or less: an existing one,
/// or the first plain endpoint re-plugged with a 32-bit mask.
fn small_mask_device(m: &Machine) -> Result<(Machine, Bdf, Option<String>), Stop> {
    let topo = &m.topology;
    let endpoints = || topo.devices().filter(|(_, d)| super::is_master(d));
    if let Some((_, d)) = endpoints().find(|(_, d)| d.dma_mask.bits() <= 32) {
        return Ok((m.clone(), d.bdf, None));
    }
    let owns_memory = |id: dma_api::topology::DeviceId| {
        m.memmap.ranges().iter().any(|r| match r.kind {
            RangeKind::StolenRam { owner } | RangeKind::DevicePrivate { owner } => {
                owner == id.provider_id()
            }
            _ => false,
        })
    };
    let (id, d) = endpoints()
        .find(|(id, d)| d.children.is_empty() && !d.multifunction && !owns_memory(*id))
        .ok_or_else(|| skip("no endpoint to give a 32-bit mask"))?;
    let rec = DeviceRecord {
        bdf: d.bdf,
        name: d.name.clone(),
        vendor: d.vendor,
        device: d.device,
        class: d.class,
        port: d.port,
        parent: d.parent.and_then(|p| topo.device(p)).map(|p| p.bdf),
        bars: d.bars.clone(),
        dma_mask: DmaMask::BITS_32,
        coherent: d.coherent,
        untrusted: d.untrusted,
        multifunction: d.multifunction,
        acs: d.acs,
        numa_node: dma_api::topology::NodeSpec::Given(d.numa_node),
    };
    // Its p2pmem registrations go with it and come back after the re-plug.
    let p2pmem: Vec<(u8, u64, u64)> = m
        .p2pmem
        .resources(id)
        .iter()
        .filter_map(|r| {
            let bar = d.bar(r.bar)?;
            Some((r.bar, r.size, r.phys.raw() - bar.addr.raw()))
        })
        .collect();
    let published = m.p2pmem.stats(id).is_some_and(|s| s.published);
    let mut edited = m.clone();
    edited.hot_remove(id).map_err(failed("re-plug (remove)"))?;
    let new_id = edited.hot_add(rec).map_err(failed("re-plug (add)"))?;
    for (bar, size, offset) in p2pmem {
        edited
            .p2pmem
            .add_resource(&edited.topology, new_id, bar, size, offset)
            .map_err(failed("re-plug (p2pmem)"))?;
    }
    if published {
        edited
            .p2pmem
            .publish(&edited.topology, new_id, true)
            .map_err(failed("re-plug (publish)"))?;
    }
    let what = format!("{} re-plugged with a 32-bit DMA mask", d.label());
    Ok((edited, d.bdf, Some(what)))
}

/// A buffer at the top of the highest RAM range (beyond a 32-bit mask on
/// any machine with more than 4 GiB behind its dma-ranges), deliberately
/// not page aligned.
fn high_buffer(m: &Machine) -> Option<PhysAddr> {
    let r = m
        .memmap
        .ranges()
        .iter()
        .filter(|r| r.kind == RangeKind::Ram)
        .max_by_key(|r| r.start)?;
    let end = r.start.raw().checked_add(r.size)?;
    let at = (end.checked_sub(LEN + 0x1000)? & !0xfff) + 0x80;
    (at >= FOUR_GIB && at >= r.start.raw()).then(|| PhysAddr::new(at))
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let buf = high_buffer(t.machine())
        .ok_or_else(|| skip("no RAM above 4 GiB: every buffer is within a 32-bit mask"))?;
    let (m, bdf, edited) = small_mask_device(t.machine())?;
    if let Some(e) = edited {
        t.note(e);
    }
    let behind_iommu = m
        .topology
        .lookup(bdf)
        .and_then(|id| m.topology.device(id))
        .and_then(|d| m.topology.host_bridge(d.host_bridge))
        .is_some_and(|hb| hb.iommu);
    let mode = if behind_iommu {
        IommuMode::Off
    } else {
        t.mode()
    };
    t.note(format!("assembled with iommu={}", mode.name()));
    // A machine that refuses to run untranslated (zPCI: RAM's bus addresses
    // lie in the MMIO windows) has no device swiotlb would serve.
    let a = t.assemble_machine_unless(m, mode, |e| match e {
        AssemblyError::AmbiguousBusDecode { .. } if mode == IommuMode::Off => Some(format!(
            "no device DMAs untranslated, so none is served by swiotlb (iommu=off is refused: {e})"
        )),
        _ => None,
    })?;
    let dev = device(&a, bdf)?;
    let dir = Direction::FromDevice;
    let dma = dev
        .map_phys(buf, LEN, dir, DmaAttrs::empty())
        .map_err(failed("map_phys"))?;
    t.note(format!("buffer at {buf}, device address {dma}"));
    check(a.swiotlb.live_mappings() == 1, || {
        format!("{dma} is not a swiotlb slot: nothing bounced")
    })?;
    check(dma.raw().saturating_add(LEN - 1) < FOUR_GIB, || {
        format!("bounce slot {dma} is above the 32-bit mask")
    })?;
    t.record_route(&a, bdf, dma, true);
    let data = pattern(LEN, 0x66);
    a.fabric
        .dma_write(bdf, dma, &data)
        .map_err(failed("device write"))?;
    check(cpu_read(&a, buf, LEN)? != data, || {
        "visible at the buffer before sync_for_cpu: it did not bounce".into()
    })?;
    dev.sync_single_for_cpu(dma, LEN, dir)
        .map_err(failed("sync_single_for_cpu"))?;
    check(cpu_read(&a, buf, LEN)? == data, || {
        "not at the buffer after sync_for_cpu".into()
    })?;
    dev.unmap_phys(dma, LEN, dir, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    check(a.swiotlb.live_mappings() == 0, || {
        "bounce slot not released".into()
    })?;
    Ok(format!(
        "{LEN} bytes bounced through swiotlb below 4 GiB; exact at {buf} after sync_for_cpu"
    ))
}
