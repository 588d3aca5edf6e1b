//! A process address space with a device VMA on the reference server
//! (IOMMU strict): pages backed by gpu0's device-private memory, by RAM and
//! by rdma0's registered BAR.
//!
//! * `range_fault`: gpu0 (the owner) gets its device-private pages as they
//!   are; rdma0, allowed to write through the BAR alias, gets the alias;
//!   nvme0 (no rule) migrates them to RAM; a refused pair fails typed.
//! * rdma0's peer mapping of the VMA is invalidated when the range
//!   migrates: its old DMA address faults on the strict IOMMU, and after it
//!   re-maps its writes land in the RAM copy the CPU reads.
//! * munmap invalidates every device that has the range mapped.

use dma_api::hmm::{Backing, DevicePrivateMemory, HmmError, HmmPfn, VirtAddr};
use dma_api::{Direction, PhysAddr, PAGE_SIZE};
use dma_consumers::hmm::{HmmGpu, PairRule};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::engine::FabricEngine;
use dma_sim::machine::Machine;
use dma_sim::mm::ProcessMm;
use dma_sim::Assembly;
use std::sync::Arc;

const VRAM: u64 = 0x50_0100_0000;
const VA: u64 = 0x7f00_0000_0000;

struct World {
    a: Assembly,
    g: Arc<HmmGpu>,
    mm: Arc<ProcessMm>,
    _dp: Arc<DevicePrivateMemory>,
}

fn world() -> World {
    let opts = AssemblyOptions {
        iommu: IommuMode::Strict,
        ..AssemblyOptions::default()
    };
    let a = Assembly::build(Machine::reference().unwrap(), opts).unwrap();
    let dp = DevicePrivateMemory::new(a.ctx.clone());
    let gpu = a.find("gpu0").unwrap().device.clone();
    let engine = FabricEngine::new(a.fabric.clone(), gpu.bdf());
    let g = HmmGpu::probe(&dp, gpu, engine, PhysAddr::new(VRAM), 4).unwrap();
    let mm = ProcessMm::new(dp.clone());
    // [VA, +4 pages): device-private; [+4, +6): RAM; [+6, +7): rdma0's BAR.
    mm.mmap(
        VirtAddr::new(VA),
        Backing::DevicePrivate(g.page(0).unwrap()),
        4 * PAGE_SIZE,
    )
    .unwrap();
    mm.mmap(
        VirtAddr::new(VA + 4 * PAGE_SIZE),
        Backing::Ram(a.layout.scratch.0),
        2 * PAGE_SIZE,
    )
    .unwrap();
    mm.mmap(
        VirtAddr::new(VA + 6 * PAGE_SIZE),
        Backing::Bar(PhysAddr::new(0x40_0400_0000)),
        PAGE_SIZE,
    )
    .unwrap();
    World { a, g, mm, _dp: dp }
}

#[test]
fn range_fault_answers_per_device() {
    let w = world();
    let gpu = w.g.bdf();
    let nic = w.a.find("rdma0").unwrap().bdf;
    let nvme = w.a.find("nvme0").unwrap().bdf;
    let nvme1 = w.a.find("nvme1").unwrap().bdf;
    w.g.set_rule(nic, Direction::FromDevice, PairRule::Alias);
    w.g.set_rule(nvme1, Direction::ToDevice, PairRule::Refuse);
    let va = VirtAddr::new(VA);
    let own =
        w.mm.range_fault(va, 7 * PAGE_SIZE, gpu, Direction::ToDevice)
            .unwrap();
    assert_eq!(own[1], HmmPfn::DevicePrivate(w.g.page(1).unwrap()));
    assert_eq!(own[4], HmmPfn::Ram(w.a.layout.scratch.0));
    assert_eq!(own[6], HmmPfn::PeerBar(PhysAddr::new(0x40_0400_0000)));
    let alias =
        w.mm.range_fault(va, 2 * PAGE_SIZE, nic, Direction::FromDevice)
            .unwrap();
    assert_eq!(alias[1], HmmPfn::PeerBar(PhysAddr::new(VRAM + PAGE_SIZE)));
    let e =
        w.mm.range_fault(va, PAGE_SIZE, nvme1, Direction::ToDevice)
            .unwrap_err();
    assert!(matches!(e, HmmError::Refused { .. }), "{e}");
    // Nothing migrated yet; nvme0 migrates exactly the two pages it walks.
    assert_eq!(
        w.mm.backing(va),
        Some(Backing::DevicePrivate(w.g.page(0).unwrap()))
    );
    let mig =
        w.mm.range_fault(va, 2 * PAGE_SIZE, nvme, Direction::ToDevice)
            .unwrap();
    assert!(matches!(mig[0], HmmPfn::Ram(_)));
    assert!(matches!(w.mm.backing(va), Some(Backing::Ram(_))));
    assert!(matches!(
        w.mm.backing(VirtAddr::new(VA + 2 * PAGE_SIZE)),
        Some(Backing::DevicePrivate(_))
    ));
    // The owner now sees RAM where its page migrated.
    let own =
        w.mm.range_fault(va, PAGE_SIZE, gpu, Direction::ToDevice)
            .unwrap();
    assert!(matches!(own[0], HmmPfn::Ram(_)));
}

#[test]
fn migration_invalidates_the_peer_mapping() {
    let w = world();
    let nic = w.a.find("rdma0").unwrap().device.clone();
    w.g.set_rule(nic.bdf(), Direction::FromDevice, PairRule::Alias);
    let va = VirtAddr::new(VA);
    let m =
        w.mm.map_for_device(&nic, va, 2 * PAGE_SIZE, Direction::FromDevice)
            .unwrap();
    assert!(m.reasons(0)[0].text.contains("BAR alias"));
    let old = m.dma(0).unwrap();
    w.a.fabric
        .dma_write(nic.bdf(), old, b"peer-to-peer")
        .unwrap();
    assert_eq!(&w.g.read_local(0).unwrap()[..12], b"peer-to-peer");
    let live = nic.live_singles();

    // The range migrates: the mapping is torn down at once.
    assert_eq!(w.mm.migrate_to_ram(va, 2 * PAGE_SIZE).unwrap(), 2);
    assert!(!m.is_valid());
    assert_eq!(m.dma(0), None);
    assert_eq!(nic.live_singles(), live - 2);
    // The old address faults on the strict IOMMU; nothing lands.
    w.a.fabric.take_faults();
    assert!(w
        .a
        .fabric
        .dma_write(nic.bdf(), old, b"stale write!")
        .is_err());
    assert_eq!(w.a.fabric.take_faults().len(), 1);
    assert_eq!(&w.g.read_local(0).unwrap()[..12], b"peer-to-peer");

    // Re-mapped, the device reaches the new place: RAM.
    let m2 =
        w.mm.map_for_device(&nic, va, 2 * PAGE_SIZE, Direction::FromDevice)
            .unwrap();
    w.a.fabric
        .dma_write(nic.bdf(), m2.dma(0).unwrap(), b"after remap!")
        .unwrap();
    let mut b = [0u8; 12];
    w.mm.cpu_read(va, &mut b).unwrap();
    assert_eq!(&b, b"after remap!");
    drop(m2);
    assert_eq!(nic.live_singles(), live - 2);
    assert!(w.a.ctx.take_drop_errors().is_empty());
}

#[test]
fn cpu_fault_and_munmap_reach_every_device() {
    let w = world();
    let nic = w.a.find("rdma0").unwrap().device.clone();
    let nvme = w.a.find("nvme0").unwrap().device.clone();
    w.g.set_rule(nic.bdf(), Direction::FromDevice, PairRule::Alias);
    let va = VirtAddr::new(VA);
    w.g.write_local(3, 0, b"gpu wrote this").unwrap();
    let a =
        w.mm.map_for_device(&nic, va, 7 * PAGE_SIZE, Direction::FromDevice)
            .unwrap();
    let b =
        w.mm.map_for_device(
            &nvme,
            VirtAddr::new(VA + 4 * PAGE_SIZE),
            2 * PAGE_SIZE,
            Direction::ToDevice,
        )
        .unwrap();
    // A CPU read of page 3 migrates it: the NIC's mapping (which covers it)
    // goes, nvme0's (which does not) stays.
    let mut buf = [0u8; 14];
    w.mm.cpu_read(VirtAddr::new(VA + 3 * PAGE_SIZE), &mut buf)
        .unwrap();
    assert_eq!(&buf, b"gpu wrote this");
    assert!(!a.is_valid());
    assert!(b.is_valid());
    // munmap of the RAM pages reaches nvme0.
    w.mm.munmap(VirtAddr::new(VA + 4 * PAGE_SIZE), 2 * PAGE_SIZE)
        .unwrap();
    assert!(!b.is_valid());
    assert_eq!(w.mm.backing(VirtAddr::new(VA + 4 * PAGE_SIZE)), None);
    let e =
        w.mm.map_for_device(
            &nvme,
            VirtAddr::new(VA + 4 * PAGE_SIZE),
            PAGE_SIZE,
            Direction::ToDevice,
        )
        .unwrap_err();
    assert!(matches!(e, HmmError::Unmapped { .. }), "{e}");
    // A backing whose kind the memory map contradicts is refused.
    let e =
        w.mm.mmap(
            VirtAddr::new(VA + 64 * PAGE_SIZE),
            Backing::Bar(w.a.layout.scratch.0),
            PAGE_SIZE,
        )
        .unwrap_err();
    assert!(matches!(e, HmmError::WrongKind { .. }), "{e}");
    assert!(w.a.ctx.take_drop_errors().is_empty());
}
