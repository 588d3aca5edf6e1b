//! 9. Buffer sharing, GPU → NIC: a dGPU exports a VRAM object (in its
//!    registered BAR window) and the NIC registers a memory region over the
//!    attachment to read it. The negotiation decides: peer-to-peer when the
//!    NIC can read the BAR, else the GPU migrates the object to RAM (on the
//!    reference server the root complex does not forward peer reads). The
//!    NIC's reads return the object's bytes either way; the counters show
//!    which way they went.

use super::{check, cpu_read, device, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::share::ShareAccess;
use dma_api::PhysAddr;
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::rdma::{MrKind, RdmaNic};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "share-gpu-nic",
    description: "a dGPU shares VRAM with the NIC: peer-to-peer if reachable, else migrated to RAM; the NIC reads the right bytes",
    run,
};

const LEN: u64 = 0x4000;
const DISPLAY: u32 = 0x03;
const NETWORK: u32 = 0x02;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    // What the machine description answers is asked before assembling: a
    // machine without such a GPU is skipped without one.
    let m = t.machine();
    // A discrete GPU: display class, registered VRAM, no stolen RAM (that
    // is an APU, the `share-apu` scenario).
    let apu = super::apu_test(m);
    let (gpu, window) = crate::providers::registered_for_mapping(m)
        .into_iter()
        .filter(|&id| !apu(id))
        .filter_map(|id| {
            let d = m.topology.device(id)?;
            let r = m.p2pmem.resources(id).iter().find(|r| r.size >= LEN)?;
            (d.class >> 16 == DISPLAY).then_some((d.bdf, (r.phys, r.size)))
        })
        .next()
        .ok_or_else(|| skip("no display device registers p2pmem"))?;
    let a = t.assemble(t.mode())?;
    let m = &a.machine;
    let class_of = |b: dma_api::Bdf| {
        m.topology
            .lookup(b)
            .and_then(|id| m.topology.device(id))
            .map_or(0, |d| d.class >> 16)
    };
    let nic = super::masters(&a)
        .map(|e| e.bdf)
        .find(|&b| class_of(b) == NETWORK && !b.same_slot(gpu))
        .ok_or_else(|| skip("no network device to import"))?;
    let layout = VramLayout {
        bar: window.0,
        vram: window.1,
        window: window.1,
    };
    let g = DGpu::new(a.ctx.clone(), gpu, layout, true);
    let data = pattern(LEN, 0x21);
    a.fabric
        .cpu_write(window.0, &data)
        .map_err(failed("CPU write of VRAM"))?;
    let buf = g.export(0, LEN).map_err(failed("export"))?;
    let nic_dev = RdmaNic::new(device(&a, nic)?);
    let mr = nic_dev
        .register(&buf, ShareAccess::Read, MrKind::Revocable)
        .map_err(failed("register"))?;
    let n = mr.negotiation().map_err(failed("negotiation"))?;
    t.note(format!(
        "{gpu} exports {LEN:#x} bytes of VRAM at {}; {nic} registers a read MR",
        window.0
    ));
    t.note(format!(
        "negotiated: {} (action: {})",
        n.placement,
        n.action.name()
    ));
    for r in &n.reasons {
        t.note(format!("  because {r}"));
    }
    let map = mr
        .mapping()
        .ok_or_else(|| Stop::Fail("MR not mapped".into()))?;
    a.fabric.reset_counters();
    let first = map.segments()[0].dma;
    t.record_route(&a, nic, first, false);
    let mut got = Vec::new();
    for s in map.segments() {
        let mut b = vec![0u8; s.len as usize];
        a.fabric
            .dma_read(nic, s.dma, &mut b)
            .map_err(failed("NIC read"))?;
        got.extend_from_slice(&b);
    }
    check(got == data, || {
        "the NIC read other bytes than the VRAM object".into()
    })?;
    let home = buf.placement_ranges().map_err(failed("placement"))?[0].0;
    if home != PhysAddr::new(window.0.raw()) {
        check(cpu_read(&a, home, LEN)? == data, || {
            "the RAM copy differs".into()
        })?;
    }
    mr.deregister().map_err(failed("deregister"))?;
    Ok(format!(
        "{nic} read {LEN} bytes of {gpu} VRAM as {} ({}): {} root-complex bytes, {} RAM bytes",
        n.placement,
        n.action.name(),
        a.fabric.root_complex_bytes(),
        a.fabric.ram_bytes()
    ))
}
