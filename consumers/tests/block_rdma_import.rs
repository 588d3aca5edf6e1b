//! Imported buffers and registrations with the bytes on the fabric:
//!
//! * block: a namespace read straight into a dGPU's exported VRAM object
//!   (no data byte through RAM); an imported buffer over the queue limits is
//!   refused with nothing left mapped;
//! * RDMA: a memory region over RAM and a peer's p2pmem, mapped through the
//!   generic path (each segment its own route), and a memory region over an
//!   imported VRAM object; the NIC's RDMA writes land where the mapping
//!   promised, its reads return them.

#[path = "block_common/mod.rs"]
mod common;

use common::*;
use dma_api::share::ShareAccess;
use dma_api::{PhysAddr, SegmentRoute};
use dma_consumers::block::{BlockError, BlockRequest, LimitViolation, Op};
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::nvme::{Namespace, Nvme, NvmeController, NvmeError};
use dma_consumers::rdma::{MrKind, RdmaError, RdmaNic};
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;
use std::sync::Arc;

/// gpu0's registered VRAM window (BAR 1, first 256 MiB).
const VRAM: u64 = 0x50_0000_0000;

fn gpu(a: &Assembly) -> Arc<DGpu> {
    let layout = VramLayout {
        bar: PhysAddr::new(VRAM),
        vram: 256 << 20,
        window: 256 << 20,
    };
    DGpu::new(a.ctx.clone(), a.find("gpu0").unwrap().bdf, layout, false)
}

#[test]
fn a_block_read_lands_straight_in_an_imported_gpu_buffer() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let nvme = Nvme::probe(a.find("nvme0").unwrap().device.clone()).unwrap();
        let q = nvme.queue(true).unwrap();
        let mut ctrl = NvmeController::new(nvme.device().bdf(), Namespace::new(1 << 16));
        let len = 0x8000;
        let data = pattern(len, 5);
        let src = PhysAddr::new(HIGH);
        a.fabric.cpu_write(src, &data).unwrap();
        let io = nvme
            .submit_block(&q, &BlockRequest::new(Op::Write, 16, &[(src, len)]))
            .unwrap();
        ctrl.execute(&FabricWire(&a), io.command()).unwrap();
        io.complete().unwrap();

        let g = gpu(&a);
        let buf = g.export(0x10_0000, len).unwrap();
        let imp = nvme.import(&buf, ShareAccess::Write).unwrap();
        a.fabric.reset_counters();
        let d0 = ctrl.descriptor_bytes();
        let io = imp.submit_block(&q, Op::Read, 16).unwrap();
        let routes: Vec<_> = io
            .mapping()
            .unwrap()
            .segments()
            .iter()
            .map(|s| s.route)
            .collect();
        assert!(
            routes.iter().all(|r| *r != SegmentRoute::Ram),
            "{mode:?}: {routes:?}"
        );
        ctrl.execute(&FabricWire(&a), io.command()).unwrap();
        io.complete().unwrap();
        assert_eq!(cpu_read(&a, g.vram_addr(0x10_0000), len), data, "{mode:?}");
        assert_eq!(
            a.fabric.ram_bytes(),
            ctrl.descriptor_bytes() - d0,
            "{mode:?}: only the PRP list came from RAM"
        );
        assert_eq!(imp.attachment().live_mappings().unwrap(), 0);
        imp.detach().unwrap();
    }
}

#[test]
fn an_imported_buffer_over_the_queue_limits_is_refused_and_unmapped() {
    let a = assembly(IommuMode::Strict);
    let nvme = Nvme::probe(a.find("nvme0").unwrap().device.clone()).unwrap();
    let q = nvme.queue(true).unwrap();
    let g = gpu(&a);
    let buf = g.export(0, 9 << 20).unwrap();
    let imp = nvme.import(&buf, ShareAccess::Write).unwrap();
    match imp.submit_block(&q, Op::Read, 0).unwrap_err() {
        NvmeError::Block(BlockError::OverLimits {
            violation: LimitViolation::TooLarge { max_hw_bytes },
            ..
        }) => assert_eq!(max_hw_bytes, 8 << 20),
        e => panic!("{e}"),
    }
    assert_eq!(imp.attachment().live_mappings().unwrap(), 0);
    assert_eq!(buf.live_mappings().unwrap(), 0);
    imp.detach().unwrap();
}

#[test]
fn a_physical_mr_over_ram_and_peer_memory_takes_the_nics_writes_where_promised() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let nic = RdmaNic::new(a.find("rdma0").unwrap().device.clone());
        let ram = PhysAddr::new(HIGH + 0x1000);
        let cmb = PhysAddr::new(NVME0_BAR2 + 0x2000);
        let mr = nic.reg_mr(&[(ram, 0x3000), (cmb, 0x2000)]).unwrap();
        let routes: Vec<_> = mr.segments().iter().map(|s| s.route).collect();
        assert_eq!(routes.last(), Some(&SegmentRoute::PeerBus), "{mode:?}");
        assert_eq!(mr.segments().last().unwrap().dma.raw(), cmb.raw());
        let data = pattern(0x3000, 8);
        a.fabric.reset_counters();
        // An RDMA WRITE straddling the RAM/peer boundary.
        mr.nic_write(&FabricWire(&a), 0x1800, &data).unwrap();
        assert_eq!(
            cpu_read(&a, PhysAddr::new(ram.raw() + 0x1800), 0x1800),
            data[..0x1800]
        );
        assert_eq!(cpu_read(&a, cmb, 0x1800), data[0x1800..]);
        assert_eq!(a.fabric.ram_bytes(), 0x1800, "{mode:?}: only the RAM part");
        assert_eq!(mr.nic_read(&FabricWire(&a), 0x1800, 0x3000).unwrap(), data);
        assert_eq!(
            mr.nic_read(&FabricWire(&a), 0x4000, 0x2000).unwrap_err(),
            RdmaError::OutOfRange {
                offset: 0x4000,
                len: 0x2000,
                region: 0x5000
            }
        );
        mr.deregister().unwrap();
        assert_eq!(nic.device().live_tables(), 0);
    }
}

#[test]
fn an_mr_over_an_imported_gpu_buffer_takes_the_nics_writes() {
    let a = assembly(IommuMode::Strict);
    let nic = RdmaNic::new(a.find("rdma0").unwrap().device.clone());
    let g = gpu(&a);
    let buf = g.export(0, 0x4000).unwrap();
    let mr = nic
        .register(&buf, ShareAccess::Write, MrKind::Revocable)
        .unwrap();
    let data = pattern(0x4000, 11);
    a.fabric.reset_counters();
    mr.nic_write(&FabricWire(&a), 0, &data).unwrap();
    assert_eq!(cpu_read(&a, g.vram_addr(0), 0x4000), data);
    assert_eq!(
        a.fabric.ram_bytes(),
        0,
        "peer write through the host bridge"
    );
    mr.deregister().unwrap();
}
