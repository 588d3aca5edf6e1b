//! VFIO-style BAR slices: a three-range export of nvme0's CMB, imported by
//! gpu0 (through the host bridge, translated by the IOMMU). Each range is
//! linked at its own running IOVA offset, so gpu0's writes land in all
//! three slices; with Linux's offset-0 bug (every range linked at offset
//! 0) the same check fails. A reset revokes the buffer during streaming:
//! it completes only when the in-flight command has unmapped, later
//! accesses fault or are refused, maps fail with `Revoked`, and after the
//! restore a re-attach works.

#[path = "share_common/mod.rs"]
mod common;
#[path = "nvme_controller/mod.rs"]
mod controller;

use common::*;
use dma_api::share::{
    ImporterCaps, LinkOffsets, NoOps, Phase, Placement, ShareAccess, ShareError, Wait, WaitBudget,
};
use dma_api::{Direction, PhysAddr, SegmentRoute};
use dma_consumers::nvme::{ImportedIo, Nvme, NvmeError, Op};
use dma_consumers::rdma::{MrKind, MrState, RdmaNic};
use dma_consumers::vfio::VfioBarExporter;
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;
use std::sync::{Arc, Mutex};

const SLICES: [(u64, u64); 3] = [(0x0, 0x1000), (0x10_000, 0x2000), (0x30_000, 0x1000)];
const TOTAL: u64 = 0x4000;

fn vfio(a: &Assembly) -> Arc<VfioBarExporter> {
    VfioBarExporter::new(a.ctx.clone(), bdf(a, "nvme0"), PhysAddr::new(NVME0_CMB))
}

/// gpu0 writes a pattern through its mapping of the three slices; the CPU
/// reads each slice back. `Err` says what went wrong.
fn three_ranges_read_back(a: &Assembly, offsets: LinkOffsets) -> Result<(), String> {
    let v = vfio(a);
    let buf = v.export(&SLICES).map_err(|e| e.to_string())?;
    let gpu = bdf(a, "gpu0");
    let att = buf
        .attach(
            dev(a, "gpu0"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(NoOps),
        )
        .map_err(|e| e.to_string())?;
    let m = att
        .map_with(Direction::FromDevice, offsets)
        .map_err(|e| format!("map: {e}"))?;
    let data = pattern(TOTAL, 0x42);
    dev_write(a, gpu, &m, &data).map_err(|f| format!("fault: {f:?}"))?;
    att.unmap(m.id()).map_err(|e| e.to_string())?;
    let mut at = 0;
    for &(off, len) in &SLICES {
        let got = cpu_read(a, PhysAddr::new(NVME0_CMB + off), len);
        if got != data[at as usize..(at + len) as usize] {
            return Err(format!("slice at {off:#x} holds other bytes"));
        }
        at += len;
    }
    Ok(())
}

#[test]
fn three_slices_are_linked_at_running_offsets_and_read_back() {
    let a = reference(IommuMode::Strict);
    let v = vfio(&a);
    let buf = v.export(&SLICES).unwrap();
    let att = buf
        .attach(
            dev(&a, "gpu0"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(NoOps),
        )
        .unwrap();
    assert_eq!(
        att.negotiation().unwrap().placement,
        Placement::PeerHostBridge
    );
    let m = att.map(Direction::FromDevice).unwrap();
    let base = m.segments()[0].dma.raw();
    let mut off = 0;
    for (s, &(_, len)) in m.segments().iter().zip(&SLICES) {
        assert_eq!(
            (s.dma.raw() - base, s.len),
            (off, len),
            "one IOVA, running offsets"
        );
        assert_eq!(s.route, SegmentRoute::PeerHostBridge);
        off += len;
    }
    att.unmap(m.id()).unwrap();
    drop(att);
    three_ranges_read_back(&a, LinkOffsets::Running).unwrap();
}

#[test]
fn the_linux_offset_zero_bug_is_caught() {
    let a = reference(IommuMode::Strict);
    let e = three_ranges_read_back(&a, LinkOffsets::AllZero).unwrap_err();
    // The second slice's link collides with the first at offset 0 (an
    // IOMMU that overwrote instead would alias the slices: the read-back
    // check would fail the same test).
    assert!(e.contains("is already mapped"), "{e}");
}

#[test]
fn three_slices_without_an_iommu() {
    let a = reference(IommuMode::Off);
    three_ranges_read_back(&a, LinkOffsets::Running).unwrap();
}

#[test]
fn vfio_buffers_cannot_be_pinned() {
    let a = reference(IommuMode::Strict);
    let buf = vfio(&a).export(&SLICES).unwrap();
    let e = buf
        .attach(
            dev(&a, "gpu0"),
            ImporterCaps::any(ShareAccess::Write, false),
            Arc::new(NoOps),
        )
        .unwrap_err();
    assert_eq!(
        e,
        ShareError::PinUnsupported {
            exporter: bdf(&a, "nvme0")
        }
    );
    let att = buf
        .attach(
            dev(&a, "gpu0"),
            ImporterCaps::any(ShareAccess::Write, true),
            Arc::new(NoOps),
        )
        .unwrap();
    assert_eq!(
        att.pin(),
        Err(ShareError::PinUnsupported {
            exporter: bdf(&a, "nvme0")
        })
    );
    drop(att);
    assert_eq!(buf.attachments().unwrap(), 0);
}

/// The in-flight command completes while the revocation waits: the
/// controller finishes it, the driver completes it (unmap).
struct FinishInFlight<'a> {
    a: &'a Assembly,
    who: dma_api::Bdf,
    io: Mutex<Option<ImportedIo<'a>>>,
    media: Vec<u8>,
    pauses: Mutex<u32>,
}

impl Wait for FinishInFlight<'_> {
    fn pause(&self, _: u32) {
        *self.pauses.lock().unwrap() += 1;
        if let Some(io) = self.io.lock().unwrap().take() {
            controller::execute(self.a, self.who, io.command(), &self.media);
            io.complete().unwrap();
        }
    }
}

#[test]
fn revoke_during_streaming_waits_for_unmaps_then_refuses_until_restored() {
    let a = reference(IommuMode::Strict);
    let v = vfio(&a);
    let buf = v.export(&SLICES[..2]).unwrap();
    let len = 0x3000;
    let nvme = Nvme::probe(dev(&a, "nvme2")).unwrap();
    let who = nvme.device().bdf();
    let imp = nvme.import(&buf, ShareAccess::Write).unwrap();
    assert_eq!(
        imp.attachment().negotiation().unwrap().placement,
        Placement::PeerHostBridge
    );
    let nic = RdmaNic::new(dev(&a, "rdma0"));
    let mr = nic
        .register(&buf, ShareAccess::Write, MrKind::Revocable)
        .unwrap();

    // Streaming: one command done, the next in flight.
    let first = pattern(len, 1);
    let io = imp.submit(Op::Read).unwrap();
    controller::execute(&a, who, io.command(), &first);
    io.complete().unwrap();
    assert_eq!(
        cpu_read(&a, PhysAddr::new(NVME0_CMB), 0x1000),
        first[..0x1000]
    );
    let io = imp.submit(Op::Read).unwrap();
    let stale = io.mapping().unwrap().segments()[0].dma;

    let wait = FinishInFlight {
        a: &a,
        who,
        io: Mutex::new(Some(io)),
        media: pattern(len, 2),
        pauses: Mutex::new(0),
    };
    v.reset(WaitBudget { rounds: 8 }, &wait).unwrap();
    assert_eq!(
        *wait.pauses.lock().unwrap(),
        1,
        "completed once the in-flight command unmapped"
    );
    drop(wait);
    assert_eq!(buf.phase().unwrap(), Phase::Revoked);
    assert_eq!(buf.live_mappings().unwrap(), 0);
    // The in-flight command's bytes landed before the revocation completed.
    assert_eq!(
        cpu_read(&a, PhysAddr::new(NVME0_CMB), 0x1000),
        pattern(len, 2)[..0x1000]
    );

    // After revocation no importer access reaches the buffer.
    let before = cpu_read(&a, PhysAddr::new(NVME0_CMB), 0x1000);
    assert!(
        a.fabric.dma_write(who, stale, &[0xee; 64]).is_err(),
        "nvme2 faults at the IOMMU"
    );
    assert_eq!(cpu_read(&a, PhysAddr::new(NVME0_CMB), 0x1000), before);
    assert_eq!(mr.state(), MrState::Revoked);
    assert!(
        matches!(mr.dma_at(0), Err(ShareError::Revoked { .. })),
        "the NIC's MR refuses"
    );
    // Maps fail with Revoked; so does a new attach; the dispatcher refuses
    // anyone's own mapping of the slices.
    assert!(matches!(
        imp.submit(Op::Read),
        Err(NvmeError::Share(ShareError::Revoked { .. }))
    ));
    assert!(matches!(
        nvme.import(&buf, ShareAccess::Write),
        Err(NvmeError::Share(ShareError::Revoked { .. }))
    ));
    let d = dev(&a, "nvme1").explain_map(PhysAddr::new(NVME0_CMB), 0x1000, Direction::FromDevice);
    assert!(d.error.unwrap().to_string().contains("revoked"));

    // Restored: a re-attach streams again.
    v.restore().unwrap();
    mr.deregister().unwrap();
    imp.detach().unwrap();
    let imp = nvme.import(&buf, ShareAccess::Write).unwrap();
    let third = pattern(len, 3);
    let io = imp.submit(Op::Read).unwrap();
    controller::execute(&a, who, io.command(), &third);
    io.complete().unwrap();
    assert_eq!(
        cpu_read(&a, PhysAddr::new(NVME0_CMB + 0x10_000), 0x2000),
        third[0x1000..]
    );
    imp.detach().unwrap();
    assert_eq!(buf.attachments().unwrap(), 0);
}
