//! GPU VRAM streamed to the RDMA NIC through a shared buffer, on the
//! reference server (IOMMU strict):
//!
//! * with gpu0's downstream port not redirecting, the NIC reads VRAM by bus
//!   address across the switch: the bytes arrive, no byte crosses the root
//!   complex or touches RAM;
//! * as shipped (ACS redirect on gpu0's port, a root complex that does not
//!   forward peer reads) the same pair is unreachable for the read: the
//!   dGPU migrates the object to RAM, the NIC still gets the right bytes,
//!   and the counters show the detour through the root complex and RAM;
//!   without migration the attach is refused with the oracle's reasons;
//! * an object outside the 256 MiB CPU-visible window migrates, or is
//!   refused naming the window.

#[path = "share_common/mod.rs"]
mod common;

use common::*;
use dma_api::share::{Action, Placement, ReasonSource, ShareAccess, ShareError, SharedBuffer};
use dma_api::PhysAddr;
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::rdma::{MrKind, RdmaNic};
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;
use std::sync::Arc;

const OBJ: u64 = 0x10_0000;
const LEN: u64 = 0x4000;

fn gpu(a: &Assembly, migrate: bool) -> Arc<DGpu> {
    let layout = VramLayout {
        bar: PhysAddr::new(GPU_BAR),
        vram: 64 << 30,
        window: 256 << 20,
    };
    DGpu::new(a.ctx.clone(), bdf(a, "gpu0"), layout, migrate)
}

/// The object's bytes, written into VRAM by the CPU.
fn fill(a: &Assembly, g: &DGpu, offset: u64, seed: u8) -> Vec<u8> {
    let data = pattern(LEN, seed);
    cpu_write(a, g.vram_addr(offset), &data);
    data
}

fn nic_reads(a: &Assembly, nic: &RdmaNic, buf: &SharedBuffer) -> (Vec<u8>, Placement, Action) {
    let mr = nic
        .register(buf, ShareAccess::Read, MrKind::Revocable)
        .unwrap();
    let n = mr.negotiation().unwrap();
    a.fabric.reset_counters();
    let got = dev_read(a, nic.device().bdf(), &mr.mapping().unwrap()).unwrap();
    mr.deregister().unwrap();
    assert_eq!(buf.attachments().unwrap(), 0);
    (got, n.placement, n.action)
}

#[test]
fn vram_reaches_the_nic_peer_to_peer() {
    let a = reference(IommuMode::Strict);
    gpu_port_without_redirect(&a);
    let g = gpu(&a, true);
    let data = fill(&a, &g, OBJ, 1);
    let buf = g.export(OBJ, LEN).unwrap();
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let (got, placement, action) = nic_reads(&a, &nic, &buf);
    assert_eq!(got, data);
    assert_eq!((placement, action), (Placement::PeerBus, Action::None));
    assert_eq!(a.fabric.root_complex_bytes(), 0);
    assert_eq!(a.fabric.ram_bytes(), 0);
    assert_eq!(
        bytes_at(&a, bdf(&a, "gpu0")),
        LEN,
        "the bytes left gpu0's link"
    );
    assert!(a.fabric.faults().is_empty());
}

#[test]
fn unreachable_read_migrates_and_the_counters_show_the_detour() {
    let a = reference(IommuMode::Strict);
    let g = gpu(&a, true);
    let data = fill(&a, &g, OBJ, 2);
    let buf = g.export(OBJ, LEN).unwrap();
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let mr = nic
        .register(&buf, ShareAccess::Read, MrKind::Revocable)
        .unwrap();
    let n = mr.negotiation().unwrap();
    assert_eq!(
        (n.placement, &n.action),
        (Placement::SystemRam, &Action::Migrate)
    );
    assert_eq!(n.reasons[0].source, ReasonSource::Exporter);
    assert!(
        n.reasons.iter().any(|r| r.source == ReasonSource::Oracle),
        "the verdict's chain is kept: {n}"
    );
    // The object now lives in RAM; VRAM is not touched by the NIC.
    let ram = buf.placement_ranges().unwrap();
    assert_ne!(ram[0].0.raw(), GPU_BAR + OBJ);
    a.fabric.reset_counters();
    let got = dev_read(&a, nic.device().bdf(), &mr.mapping().unwrap()).unwrap();
    assert_eq!(got, data);
    assert_eq!(a.fabric.ram_bytes(), LEN, "through the memory controller");
    assert_eq!(
        a.fabric.root_complex_bytes(),
        LEN,
        "up through the root port"
    );
    assert_eq!(bytes_at(&a, bdf(&a, "gpu0")), 0, "nothing from VRAM");
    // Any peer's own map of the VRAM range now lands in the copy: the
    // buffer's policy changed with the migration.
    let nvme1 = dev(&a, "nvme1");
    let d = nvme1.explain_map(
        PhysAddr::new(GPU_BAR + OBJ),
        LEN,
        dma_api::Direction::FromDevice,
    );
    assert_eq!(d.target.map(|t| t.0), Some(ram[0].0));
    mr.deregister().unwrap();
}

#[test]
fn without_migration_the_attach_is_refused_with_the_oracle_chain() {
    let a = reference(IommuMode::Strict);
    let g = gpu(&a, false);
    let buf = g.export(OBJ, LEN).unwrap();
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let e = nic
        .register(&buf, ShareAccess::Read, MrKind::Revocable)
        .unwrap_err();
    let ShareError::Refused { reasons, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(reasons[0].source, ReasonSource::Exporter);
    assert!(reasons[0].text.contains("migration is disabled"), "{e}");
    assert!(
        reasons.iter().any(|r| r.source == ReasonSource::Oracle),
        "{e}"
    );
    assert_eq!(buf.attachments().unwrap(), 0);
    assert_eq!(buf.live_mappings().unwrap(), 0);
}

#[test]
fn an_object_outside_the_bar_window_migrates_or_is_refused_naming_it() {
    let a = reference(IommuMode::Strict);
    let beyond = 512 << 20;
    // Refused, naming the window.
    let g = gpu(&a, false);
    let buf = g.export(beyond, LEN).unwrap();
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let e = nic
        .register(&buf, ShareAccess::Read, MrKind::Revocable)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("outside the 256 MiB CPU-visible BAR window"),
        "{e}"
    );
    assert!(
        matches!(&e, ShareError::Refused { reasons, .. } if reasons.iter().any(|r| r.text.contains("p2pmem") || r.source == ReasonSource::Dma)),
        "the dispatcher's refusal (not registered peer memory) is in the chain: {e}"
    );
    assert_eq!(buf.attachments().unwrap(), 0);
    // Migrated when allowed: the bytes come from the copy.
    let g = gpu(&a, true);
    let data = fill(&a, &g, beyond, 3);
    let buf = g.export(beyond, LEN).unwrap();
    let (got, placement, action) = nic_reads(&a, &nic, &buf);
    assert_eq!(got, data);
    assert_eq!((placement, action), (Placement::SystemRam, Action::Migrate));
}
