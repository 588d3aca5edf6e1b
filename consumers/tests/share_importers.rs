//! Two importers with different capabilities on one dGPU buffer (gpu0's
//! port without ACS redirect): the NIC reaches VRAM by bus address, nvme2
//! on the other root port through the host bridge; an importer that only
//! accepts RAM makes the GPU migrate, unless another importer pinned the
//! buffer (then it is refused, naming the pin holder). When the GPU
//! evicts the buffer to RAM, both dynamic importers are notified; their old
//! mappings stay valid until they unmap and their next maps land in RAM.

#[path = "share_common/mod.rs"]
mod common;

use common::*;
use dma_api::share::{
    ImporterCaps, ImporterOps, Notice, Placement, ShareAccess, ShareError, SpinWait, WaitBudget,
};
use dma_api::{Direction, PhysAddr, SegmentRoute};
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::rdma::{MrKind, MrState, RdmaNic};
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const LEN: u64 = 0x2000;

fn gpu(a: &Assembly, migrate: bool) -> Arc<DGpu> {
    let layout = VramLayout {
        bar: PhysAddr::new(GPU_BAR),
        vram: 64 << 30,
        window: 256 << 20,
    };
    DGpu::new(a.ctx.clone(), bdf(a, "gpu0"), layout, migrate)
}

/// Counts invalidations and keeps its mappings (they stay valid).
#[derive(Default)]
struct Counting(AtomicU32);

impl ImporterOps for Counting {
    fn invalidate(&self, _: &mut Notice<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn each_importer_gets_its_placement_and_a_migration_notifies_both() {
    let a = reference(IommuMode::Strict);
    gpu_port_without_redirect(&a);
    let g = gpu(&a, true);
    let buf = g.export(0, LEN).unwrap();

    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let mr = nic
        .register(&buf, ShareAccess::Write, MrKind::Revocable)
        .unwrap();
    assert_eq!(mr.negotiation().unwrap().placement, Placement::PeerBus);

    let counting = Arc::new(Counting::default());
    let nvme2 = bdf(&a, "nvme2");
    let att = buf
        .attach(
            dev(&a, "nvme2"),
            ImporterCaps::any(ShareAccess::Write, true),
            counting.clone(),
        )
        .unwrap();
    assert_eq!(
        att.negotiation().unwrap().placement,
        Placement::PeerHostBridge
    );
    let old = att.map(Direction::FromDevice).unwrap();
    assert_eq!(old.segments()[0].route, SegmentRoute::PeerHostBridge);

    // The GPU evicts the buffer.
    buf.migrate(WaitBudget::default(), &SpinWait).unwrap();
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
    assert_eq!((mr.invalidations(), mr.state()), (1, MrState::Invalidated));
    let ram = buf.placement_ranges().unwrap()[0].0;

    // nvme2's old mapping is still valid: its write reaches VRAM.
    dev_write(&a, nvme2, &old, &pattern(LEN, 1)).unwrap();
    assert_eq!(cpu_read(&a, PhysAddr::new(GPU_BAR), LEN), pattern(LEN, 1));
    att.unmap(old.id()).unwrap();
    // New maps land in RAM, for both.
    let new = att.map(Direction::FromDevice).unwrap();
    assert_eq!(new.segments()[0].route, SegmentRoute::Ram);
    dev_write(&a, nvme2, &new, &pattern(LEN, 2)).unwrap();
    assert_eq!(cpu_read(&a, ram, LEN), pattern(LEN, 2));
    att.unmap(new.id()).unwrap();
    mr.fault_in().unwrap();
    let m = mr.mapping().unwrap();
    assert_eq!(m.segments()[0].route, SegmentRoute::Ram);
    dev_write(&a, bdf(&a, "rdma0"), &m, &pattern(LEN, 3)).unwrap();
    assert_eq!(cpu_read(&a, ram, LEN), pattern(LEN, 3));
    mr.deregister().unwrap();
    drop(att);
    assert_eq!(buf.attachments().unwrap(), 0);
}

#[test]
fn a_ram_only_importer_migrates_or_is_refused_and_a_pin_blocks_migration() {
    let a = reference(IommuMode::Strict);
    gpu_port_without_redirect(&a);
    let g = gpu(&a, true);
    let buf = g.export(0, LEN).unwrap();
    // A pinned MR (the GPU can pin) keeps the buffer in VRAM.
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let pinned = nic
        .register(&buf, ShareAccess::Read, MrKind::Pinned)
        .unwrap();
    assert_eq!(pinned.negotiation().unwrap().placement, Placement::PeerBus);
    let ram_only = ImporterCaps {
        placements: vec![Placement::SystemRam],
        access: ShareAccess::Write,
        dynamic: true,
    };
    let e = buf
        .attach(
            dev(&a, "nvme2"),
            ram_only.clone(),
            Arc::new(Counting::default()),
        )
        .unwrap_err();
    assert_eq!(
        e,
        ShareError::Pinned {
            importer: bdf(&a, "rdma0")
        }
    );
    assert_eq!(buf.attachments().unwrap(), 1);
    pinned.deregister().unwrap();
    // Unpinned: the RAM-only importer's attach migrates the buffer.
    let att = buf
        .attach(dev(&a, "nvme2"), ram_only, Arc::new(Counting::default()))
        .unwrap();
    assert_eq!(att.negotiation().unwrap().placement, Placement::SystemRam);
}

/// Exports a slice of nvme0's CMB; an importer that cannot reach it is
/// redirected to RAM copies it keeps (several ranges).
struct CopyingExporter {
    bdf: dma_api::Bdf,
    copies: Vec<(PhysAddr, u64)>,
}

impl dma_api::share::Exporter for CopyingExporter {
    fn device(&self) -> dma_api::Bdf {
        self.bdf
    }
    fn caps(&self) -> dma_api::share::ExporterCaps {
        dma_api::share::ExporterCaps::default()
    }
    fn answer(&self, _: &dma_api::share::AttachAsk<'_>) -> dma_api::share::Action {
        dma_api::share::Action::Redirect(self.copies.clone())
    }
}

#[test]
fn a_redirect_to_several_ranges_lives_in_the_buffer_policy_for_that_importer_only() {
    let a = reference(IommuMode::Strict);
    let cmb = PhysAddr::new(NVME0_CMB);
    let p0 = a.ctx.alloc_ram(3 * 4096).unwrap();
    let copies = vec![(p0, 4096), (PhysAddr::new(p0.raw() + 2 * 4096), 4096)];
    let data = pattern(2 * 4096, 7);
    cpu_write(&a, copies[0].0, &data[..4096]);
    cpu_write(&a, copies[1].0, &data[4096..]);
    let ex = Arc::new(CopyingExporter {
        bdf: bdf(&a, "nvme0"),
        copies: copies.clone(),
    });
    let buf = dma_api::share::SharedBuffer::export(&a.ctx, ex, &[(cmb, 2 * 4096)]).unwrap();
    // gpu0 cannot read the CMB (the root complex does not forward peer
    // reads): redirected to the copies.
    let gpu = bdf(&a, "gpu0");
    let mut att = buf
        .attach(
            dev(&a, "gpu0"),
            ImporterCaps::any(ShareAccess::Read, true),
            Arc::new(Counting::default()),
        )
        .unwrap();
    let n = att.negotiation().unwrap();
    assert_eq!(n.action, dma_api::share::Action::Redirect(copies.clone()));
    let m = att.map(Direction::ToDevice).unwrap();
    assert!(m.segments().iter().all(|s| s.route == SegmentRoute::Ram));
    assert_eq!(dev_read(&a, gpu, &m).unwrap(), data);
    att.unmap(m.id()).unwrap();
    // The redirect is the buffer's policy for gpu0 only: gpu0's own map of
    // the CMB lands in the first copy; nvme1 still writes the CMB by bus
    // address.
    let d = dev(&a, "gpu0").explain_map(cmb, 4096, Direction::ToDevice);
    assert_eq!(d.target.map(|t| t.0), Some(copies[0].0), "{:?}", d.error);
    let d = dev(&a, "nvme1").explain_map(cmb, 4096, Direction::FromDevice);
    assert!(
        matches!(d.target, Some((_, dma_api::port::SegTarget::PeerBus(_)))),
        "{:?}",
        d.error
    );
    // Detached: the redirect is gone with it.
    att.detach().unwrap();
    let d = dev(&a, "gpu0").explain_map(cmb, 4096, Direction::ToDevice);
    assert!(d.error.is_some(), "the read is unreachable again");
}
