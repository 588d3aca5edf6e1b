//! Bad input to the sharing protocol: each case is a typed error naming the
//! offending value, and afterwards nothing is attached or mapped that was
//! not before (the DMA devices hold no mappings, the IOMMU no translation).

#[path = "share_common/mod.rs"]
mod common;

use common::*;
use dma_api::share::{
    Fence, ImporterCaps, ImporterOps, NoOps, Notice, Placement, ShareAccess, ShareError,
    SharedBuffer, SpinWait, Wait, WaitBudget,
};
use dma_api::{Direction, PhysAddr};
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::sysram::SysRamExporter;
use dma_consumers::vfio::VfioBarExporter;
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const PAGE: u64 = 4096;

fn sysram(a: &Assembly) -> (Arc<SysRamExporter>, SharedBuffer) {
    let e = SysRamExporter::new(a.ctx.clone(), bdf(a, "host-bridge"), 3, PAGE).unwrap();
    let b = e.export(PAGE).unwrap();
    (e, b)
}

fn assert_nothing_left(a: &Assembly, buf: &SharedBuffer, names: &[&str]) {
    assert_eq!(buf.live_mappings().unwrap(), 0);
    for n in names {
        let d = dev(a, n);
        assert_eq!((d.live_tables(), d.live_singles()), (0, 0), "{n}");
    }
    assert!(a.ctx.take_drop_errors().is_empty());
}

#[test]
fn attach_with_no_common_placement() {
    let a = reference(IommuMode::Strict);
    let (_e, buf) = sysram(&a);
    let caps = ImporterCaps {
        placements: vec![Placement::PeerBus],
        access: ShareAccess::Read,
        dynamic: true,
    };
    let e = buf
        .attach(dev(&a, "rdma0"), caps, Arc::new(NoOps))
        .unwrap_err();
    let ShareError::NoCommonPlacement {
        importer,
        accepts,
        reasons,
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (*importer, accepts.as_slice()),
        (bdf(&a, "rdma0"), &[Placement::PeerBus][..])
    );
    assert!(reasons.iter().any(|r| r.text.contains("system-ram")), "{e}");
    assert_eq!(buf.attachments().unwrap(), 0);
}

#[test]
fn map_after_detach_and_double_detach() {
    let a = reference(IommuMode::Strict);
    let (_e, buf) = sysram(&a);
    let mut att = buf
        .attach(
            dev(&a, "rdma0"),
            ImporterCaps::any(ShareAccess::Read, true),
            Arc::new(NoOps),
        )
        .unwrap();
    let id = att.id();
    let m = att.map(Direction::ToDevice).unwrap();
    assert_eq!(
        att.detach(),
        Err(ShareError::StillMapped {
            attachment: id,
            live: 1
        })
    );
    att.unmap(m.id()).unwrap();
    att.detach().unwrap();
    assert_eq!(
        att.map(Direction::ToDevice),
        Err(ShareError::Detached { attachment: id })
    );
    assert_eq!(att.detach(), Err(ShareError::Detached { attachment: id }));
    assert_eq!(buf.attachments().unwrap(), 0);
    assert_nothing_left(&a, &buf, &["rdma0"]);
}

#[test]
fn double_unmap_and_access_outside_the_negotiation() {
    let a = reference(IommuMode::Strict);
    let (_e, buf) = sysram(&a);
    let att = buf
        .attach(
            dev(&a, "rdma0"),
            ImporterCaps::any(ShareAccess::Read, true),
            Arc::new(NoOps),
        )
        .unwrap();
    let m = att.map(Direction::ToDevice).unwrap();
    let dma = m.segments()[0].dma;
    att.unmap(m.id()).unwrap();
    assert_eq!(
        att.unmap(m.id()),
        Err(ShareError::NotMapped { mapping: m.id() })
    );
    // Strict IOMMU: the unmapped address faults.
    let mut b = [0u8; 8];
    assert!(a.fabric.dma_read(bdf(&a, "rdma0"), dma, &mut b).is_err());
    assert!(matches!(
        att.map(Direction::FromDevice),
        Err(ShareError::AccessDenied {
            asked: Direction::FromDevice,
            ..
        })
    ));
    assert_nothing_left(&a, &buf, &["rdma0"]);
}

#[test]
fn pin_rules() {
    let a = reference(IommuMode::Strict);
    let (_e, buf) = sysram(&a);
    // A non-dynamic importer must pin before it maps; unpin needs a pin.
    let att = buf
        .attach(
            dev(&a, "rdma0"),
            ImporterCaps::any(ShareAccess::Read, false),
            Arc::new(NoOps),
        )
        .unwrap();
    let id = att.id();
    assert_eq!(att.unpin(), Err(ShareError::NotPinned { attachment: id }));
    assert_eq!(
        att.map(Direction::ToDevice),
        Err(ShareError::NotPinned { attachment: id })
    );
    att.pin().unwrap();
    assert_eq!(att.pin(), Err(ShareError::AlreadyPinned { attachment: id }));
    let m = att.map(Direction::ToDevice).unwrap();
    att.unmap(m.id()).unwrap();
    att.unpin().unwrap();
    // An exporter without the capability: pin refused, non-dynamic refused.
    let v = VfioBarExporter::new(a.ctx.clone(), bdf(&a, "nvme0"), PhysAddr::new(NVME0_CMB));
    let vb = v.export(&[(0, PAGE)]).unwrap();
    let nvme0 = bdf(&a, "nvme0");
    let e = vb
        .attach(
            dev(&a, "nvme1"),
            ImporterCaps::any(ShareAccess::Read, false),
            Arc::new(NoOps),
        )
        .unwrap_err();
    assert_eq!(e, ShareError::PinUnsupported { exporter: nvme0 });
    assert_eq!(vb.attachments().unwrap(), 0);
    let dynamic = vb
        .attach(
            dev(&a, "nvme1"),
            ImporterCaps::any(ShareAccess::Read, true),
            Arc::new(NoOps),
        )
        .unwrap();
    assert_eq!(
        dynamic.pin(),
        Err(ShareError::PinUnsupported { exporter: nvme0 })
    );
    assert_nothing_left(&a, &buf, &["rdma0", "nvme1"]);
}

/// Counts the pauses of a bounded wait.
#[derive(Default)]
struct Count(AtomicU32);

impl Wait for Count {
    fn pause(&self, _: u32) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_importer_that_never_acknowledges_revocation_is_reported() {
    let a = reference(IommuMode::Strict);
    let v = VfioBarExporter::new(a.ctx.clone(), bdf(&a, "nvme0"), PhysAddr::new(NVME0_CMB));
    let buf = v.export(&[(0, PAGE), (0x10_000, PAGE)]).unwrap();
    let gpu = bdf(&a, "gpu0");
    let mut att = buf
        .attach(
            dev(&a, "gpu0"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(NoOps),
        )
        .unwrap();
    let m = att.map(Direction::FromDevice).unwrap();
    let wait = Count::default();
    let e = v.reset(WaitBudget { rounds: 3 }, &wait).unwrap_err();
    assert_eq!(
        e,
        ShareError::RevokeUnacknowledged {
            importers: vec![gpu]
        }
    );
    assert_eq!(
        wait.0.load(Ordering::SeqCst),
        3,
        "a bounded wait, not a hang"
    );
    // Its mapping was torn down: the device faults, nothing is mapped.
    assert!(dev_write(&a, gpu, &m, &vec![0xab; 2 * PAGE as usize]).is_err());
    assert_eq!(cpu_read(&a, PhysAddr::new(NVME0_CMB), 8), vec![0; 8]);
    assert_eq!(
        att.unmap(m.id()),
        Err(ShareError::NotMapped { mapping: m.id() })
    );
    assert!(matches!(
        att.map(Direction::FromDevice),
        Err(ShareError::Revoked { .. })
    ));
    att.detach().unwrap();
    assert_eq!(buf.attachments().unwrap(), 0);
    assert_nothing_left(&a, &buf, &["gpu0"]);
}

/// An importer that calls back into the buffer from its notification.
#[derive(Default)]
struct Reenters {
    att: Mutex<Option<dma_api::share::Attachment>>,
    buf: OnceLock<SharedBuffer>,
    seen: Mutex<Vec<ShareError>>,
}

impl ImporterOps for Reenters {
    fn invalidate(&self, n: &mut Notice<'_>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some(att) = self.att.lock().unwrap().as_ref() {
            seen.push(att.map(Direction::FromDevice).unwrap_err());
        }
        if let Some(buf) = self.buf.get() {
            seen.push(buf.revoke(WaitBudget::NONE, &SpinWait).unwrap_err());
        }
        let _ = n;
    }
}

struct Shim(Arc<Reenters>);

impl ImporterOps for Shim {
    fn invalidate(&self, n: &mut Notice<'_>) {
        self.0.invalidate(n)
    }
}

#[test]
fn a_re_entrant_call_from_a_notification_is_an_error_not_a_deadlock() {
    let a = reference(IommuMode::Strict);
    let layout = VramLayout {
        bar: PhysAddr::new(GPU_BAR),
        vram: 64 << 30,
        window: 256 << 20,
    };
    let g = DGpu::new(a.ctx.clone(), bdf(&a, "gpu0"), layout, true);
    let buf = g.export(0, PAGE).unwrap();
    let r = Arc::new(Reenters::default());
    let att = buf
        .attach(
            dev(&a, "nvme1"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(Shim(r.clone())),
        )
        .unwrap();
    *r.att.lock().unwrap() = Some(att);
    let _ = r.buf.set(buf.clone());
    buf.migrate(WaitBudget::default(), &SpinWait).unwrap();
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ShareError::ReEntrant { call: "map" },
            ShareError::ReEntrant { call: "revoke" }
        ]
    );
    // Break the cycle (the importer holds its own attachment): detaches.
    drop(r.att.lock().unwrap().take());
    assert_eq!(buf.attachments().unwrap(), 0);
}

#[test]
fn invalidation_waits_for_fences_and_changes_nothing_on_timeout() {
    let a = reference(IommuMode::Strict);
    let layout = VramLayout {
        bar: PhysAddr::new(GPU_BAR),
        vram: 64 << 30,
        window: 256 << 20,
    };
    let g = DGpu::new(a.ctx.clone(), bdf(&a, "gpu0"), layout, true);
    let buf = g.export(0, PAGE).unwrap();
    let att = buf
        .attach(
            dev(&a, "nvme1"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(NoOps),
        )
        .unwrap();
    let fence = Fence::new();
    att.add_fence(fence.clone()).unwrap();
    let wait = Count::default();
    let e = buf.migrate(WaitBudget { rounds: 2 }, &wait).unwrap_err();
    assert_eq!(
        e,
        ShareError::FenceTimeout {
            importer: bdf(&a, "nvme1")
        }
    );
    assert_eq!(
        buf.placement_ranges().unwrap(),
        vec![(PhysAddr::new(GPU_BAR), PAGE)],
        "not migrated"
    );
    fence.signal();
    buf.migrate(WaitBudget { rounds: 2 }, &wait).unwrap();
    assert_ne!(buf.placement_ranges().unwrap()[0].0, PhysAddr::new(GPU_BAR));
}

#[test]
fn bad_exports() {
    let a = reference(IommuMode::Strict);
    let v = VfioBarExporter::new(a.ctx.clone(), bdf(&a, "nvme0"), PhysAddr::new(NVME0_CMB));
    assert_eq!(v.export(&[]).unwrap_err(), ShareError::EmptyExport);
    assert!(matches!(
        v.export(&[(0, 0)]),
        Err(ShareError::ZeroLength { index: 0, .. })
    ));
    assert!(matches!(
        v.export(&[(0, PAGE), (0x10_000 + 8, PAGE)]),
        Err(ShareError::Unaligned { index: 1, .. })
    ));
    // Another device's BAR is not nvme0's to share.
    let gpu_bar = GPU_BAR - NVME0_CMB;
    assert!(matches!(
        v.export(&[(gpu_bar, PAGE)]),
        Err(ShareError::NotExportable { index: 0, .. })
    ));
    // Past the BAR: not one range of the memory map.
    assert!(matches!(
        v.export(&[((64 << 20) - PAGE, 2 * PAGE)]),
        Err(ShareError::UnknownMemory { index: 0, .. })
    ));
}
