//! Device-private memory on the reference server (IOMMU strict): gpu0
//! registers 8 device-private pages backed by VRAM in its registered BAR
//! window.
//!
//! * The GPU writes every page; the CPU reads two of them through the
//!   registry: exactly those two migrate, by the GPU's own DMA writes on the
//!   fabric (8 KiB delivered into RAM), and the bytes are the GPU's.
//! * Three devices, per-pair answers: rdma0 gets the BAR alias; for reads
//!   the oracle still refuses it (the root complex does not forward peer
//!   reads), for writes its bytes land in VRAM peer-to-peer (nothing
//!   through RAM),
//!   nvme0 gets a migration and reads the RAM copy, nvme1 is refused with a
//!   typed error naming the pair and nothing stays mapped.
//! * A bad alias, an unregistered page, a range the memory map does not call
//!   device-private are each refused typed.

use dma_api::hmm::{DevicePrivateMemory, HmmError, PeerAnswer};
use dma_api::mem::CpuMemory;
use dma_api::share::ReasonSource;
use dma_api::{Direction, PhysAddr, PAGE_SIZE};
use dma_consumers::hmm::{HmmGpu, PairRule};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::engine::FabricEngine;
use dma_sim::machine::Machine;
use dma_sim::Assembly;
use std::sync::Arc;

/// Where in gpu0's registered 256 MiB BAR window the pages live.
const VRAM: u64 = 0x50_0100_0000;
const PAGES: u64 = 8;

fn setup() -> (Assembly, Arc<DevicePrivateMemory>, Arc<HmmGpu>) {
    let opts = AssemblyOptions {
        iommu: IommuMode::Strict,
        ..AssemblyOptions::default()
    };
    let a = Assembly::build(Machine::reference().unwrap(), opts).unwrap();
    let mem = DevicePrivateMemory::new(a.ctx.clone());
    let gpu = a.find("gpu0").unwrap().device.clone();
    let engine = FabricEngine::new(a.fabric.clone(), gpu.bdf());
    let g = HmmGpu::probe(&mem, gpu, engine, PhysAddr::new(VRAM), PAGES).unwrap();
    (a, mem, g)
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..PAGE_SIZE)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

#[test]
fn cpu_read_migrates_exactly_the_touched_pages() {
    let (a, mem, g) = setup();
    for i in 0..PAGES {
        g.write_local(i, 0, &pattern(i as u8)).unwrap();
    }
    a.fabric.reset_counters();
    // The CPU reads page 2 whole and the first half of page 5.
    let mut two = vec![0u8; PAGE_SIZE as usize];
    mem.read(g.page(2).unwrap(), &mut two).unwrap();
    let mut five = vec![0u8; 2048];
    mem.read(g.page(5).unwrap(), &mut five).unwrap();
    assert_eq!(two, pattern(2));
    assert_eq!(five, pattern(5)[..2048]);
    assert_eq!(
        mem.migrated_pages(),
        vec![g.page(2).unwrap(), g.page(5).unwrap()]
    );
    // The GPU's copy engine wrote both pages into RAM over the fabric.
    let c = a.fabric.counters();
    assert_eq!(c.bytes_written, 2 * PAGE_SIZE);
    assert_eq!(a.fabric.ram_bytes(), 2 * PAGE_SIZE);
    assert!(a.fabric.faults().is_empty());
    // The RAM copy holds the bytes; a CPU write lands there too.
    let ram = mem.ram_copy(g.page(2).unwrap()).unwrap();
    let mut b = vec![0u8; PAGE_SIZE as usize];
    a.fabric.cpu_read(ram, &mut b).unwrap();
    assert_eq!(b, pattern(2));
    mem.write(PhysAddr::new(g.page(2).unwrap().raw() + 8), b"migrated")
        .unwrap();
    a.fabric
        .cpu_read(PhysAddr::new(ram.raw() + 8), &mut b[..8])
        .unwrap();
    assert_eq!(&b[..8], b"migrated");
    // Reading again moves nothing more.
    mem.read(g.page(2).unwrap(), &mut two).unwrap();
    assert_eq!(a.fabric.counters().bytes_written, 2 * PAGE_SIZE);
    // The kind came from the memory map: the dispatcher still refuses a
    // direct DMA map of device-private memory.
    let nic = a.find("rdma0").unwrap().device.clone();
    let e = nic
        .map_phys(
            g.page(0).unwrap(),
            PAGE_SIZE,
            Direction::ToDevice,
            Default::default(),
        )
        .unwrap_err();
    assert!(matches!(e, dma_api::DmaError::DevicePrivate { .. }), "{e}");
}

#[test]
fn three_devices_get_their_own_answers() {
    let (a, mem, g) = setup();
    let nic = a.find("rdma0").unwrap().device.clone();
    let nvme0 = a.find("nvme0").unwrap().device.clone();
    let nvme1 = a.find("nvme1").unwrap().device.clone();
    g.set_rule(nic.bdf(), Direction::ToDevice, PairRule::Alias);
    g.set_rule(nvme1.bdf(), Direction::ToDevice, PairRule::Refuse);
    // nvme0 has no rule: it migrates, as Linux does for every peer.
    let range = (g.page(0).unwrap(), 2 * PAGE_SIZE);

    // rdma0 reading: the owner hands out the alias, but the oracle judges
    // it like any peer memory: gpu0's port redirects to the root complex,
    // which does not forward peer reads. The chain holds both answers.
    let e = mem
        .map_for_peer(&nic, range.0, range.1, Direction::ToDevice)
        .unwrap_err();
    match &e {
        HmmError::Dma { reasons, error, .. } => {
            assert!(matches!(error, dma_api::DmaError::P2pUnreachable { .. }));
            assert_eq!(reasons[0].source, ReasonSource::Policy);
            assert!(reasons[0].text.contains("BAR alias"), "{e}");
            assert!(reasons.iter().any(|r| r.source == ReasonSource::Oracle
                && r.text.contains("does not forward peer-to-peer reads")));
        }
        other => panic!("{other}"),
    }
    assert!(mem.migrated_pages().is_empty());
    // rdma0 writing: the alias, peer-to-peer through the host bridge.
    g.set_rule(nic.bdf(), Direction::FromDevice, PairRule::Alias);
    let m = mem
        .map_for_peer(&nic, range.0, range.1, Direction::FromDevice)
        .unwrap();
    assert!(
        matches!(m.pages()[0].answer, Some(PeerAnswer::BarAlias(a)) if a == PhysAddr::new(VRAM))
    );
    a.fabric.reset_counters();
    for (i, p) in m.pages().iter().enumerate() {
        a.fabric
            .dma_write(nic.bdf(), p.dma, &pattern(0x40 + i as u8))
            .unwrap();
        assert_eq!(g.read_local(i as u64).unwrap(), pattern(0x40 + i as u8));
    }
    assert_eq!(a.fabric.counters().bytes_written, 2 * PAGE_SIZE);
    assert_eq!(a.fabric.ram_bytes(), 0, "peer-to-peer: nothing through RAM");
    assert!(mem.migrated_pages().is_empty());
    m.unmap().unwrap();

    // nvme0: migrated, then reads the RAM copy.
    a.fabric.reset_counters();
    let m = mem
        .map_for_peer(&nvme0, range.0, range.1, Direction::ToDevice)
        .unwrap();
    assert_eq!(m.pages()[1].answer, Some(PeerAnswer::Migrate));
    assert_eq!(mem.migrated_pages().len(), 2);
    for (i, p) in m.pages().iter().enumerate() {
        assert_eq!(Some(p.target), mem.ram_copy(p.page));
        let mut b = vec![0u8; PAGE_SIZE as usize];
        a.fabric.dma_read(nvme0.bdf(), p.dma, &mut b).unwrap();
        assert_eq!(b, pattern(0x40 + i as u8));
    }
    // Migration writes (2 pages) and nvme0's reads (2 pages) through RAM.
    assert_eq!(a.fabric.ram_bytes(), 4 * PAGE_SIZE);
    m.unmap().unwrap();

    // nvme1: refused, typed, with the pair in the chain; nothing mapped.
    let live = nvme1.live_singles();
    let e = mem
        .map_for_peer(&nvme1, g.page(4).unwrap(), PAGE_SIZE, Direction::ToDevice)
        .unwrap_err();
    match &e {
        HmmError::Refused {
            owner,
            client,
            reasons,
            ..
        } => {
            assert_eq!((*owner, *client), (g.bdf(), nvme1.bdf()));
            assert!(reasons[0].text.contains("does not share"), "{e}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(nvme1.live_singles(), live);
    // The same client asking to write has no rule: migration.
    let w = mem
        .map_for_peer(&nvme1, g.page(4).unwrap(), PAGE_SIZE, Direction::FromDevice)
        .unwrap();
    assert_eq!(w.pages()[0].answer, Some(PeerAnswer::Migrate));
    w.unmap().unwrap();
    assert!(a.ctx.take_drop_errors().is_empty());
}

#[test]
fn a_refusal_midway_leaves_nothing_mapped() {
    let (a, mem, g) = setup();
    let nic = a.find("rdma0").unwrap().device.clone();
    g.set_rule(nic.bdf(), Direction::ToDevice, PairRule::Alias);
    // Past the registered range: page 0..PAGES maps, the next is unowned.
    g.set_rule(nic.bdf(), Direction::FromDevice, PairRule::Alias);
    let before = nic.live_singles();
    let e = mem
        .map_for_peer(
            &nic,
            g.page(PAGES - 2).unwrap(),
            3 * PAGE_SIZE,
            Direction::FromDevice,
        )
        .unwrap_err();
    assert!(matches!(e, HmmError::NotRegistered { .. }), "{e}");
    assert_eq!(nic.live_singles(), before);
    assert!(a.ctx.take_drop_errors().is_empty());
}

#[test]
fn registration_checks_the_memory_map() {
    let (a, mem, g) = setup();
    // The range is registered already.
    let e = mem
        .register(g.clone(), g.page(0).unwrap(), PAGE_SIZE)
        .unwrap_err();
    assert!(matches!(e, HmmError::Overlap { .. }), "{e}");
    // RAM is not device-private memory, whatever the caller says.
    let ram = a.layout.scratch.0;
    let e = mem.register(g.clone(), ram, PAGE_SIZE).unwrap_err();
    assert!(matches!(e, HmmError::NotDevicePrivate { .. }), "{e}");
    let e = mem
        .register(g.clone(), PhysAddr::new(ram.raw() + 1), PAGE_SIZE)
        .unwrap_err();
    assert!(matches!(e, HmmError::Unaligned { .. }), "{e}");
}

#[test]
fn a_reserved_region_can_be_released() {
    use dma_api::hmm::{release_region, request_free_region};
    let (a, mem, g) = setup();
    let gen = a.ctx.memmap.read().generation();
    let second = request_free_region(&a.ctx, g.bdf(), 4 * PAGE_SIZE).unwrap();
    assert!(second.raw() > g.page(PAGES - 1).unwrap().raw());
    let third = request_free_region(&a.ctx, g.bdf(), PAGE_SIZE).unwrap();
    release_region(&a.ctx, g.bdf(), second).unwrap();
    // Only that range went; the memory map changed generation.
    assert!(a.ctx.memmap.read().kind_of(second).is_none());
    assert!(a.ctx.memmap.read().kind_of(third).is_some());
    assert!(a.ctx.memmap.read().kind_of(g.page(0).unwrap()).is_some());
    assert!(a.ctx.memmap.read().generation() > gen);
    let e = mem.register(g.clone(), second, PAGE_SIZE).unwrap_err();
    assert!(matches!(e, HmmError::NotDevicePrivate { .. }), "{e}");
    // Twice, or a range that is not device-private of this owner: refused.
    let e = release_region(&a.ctx, g.bdf(), second).unwrap_err();
    assert!(matches!(e, HmmError::NotDevicePrivate { .. }), "{e}");
    let nic = a.find("rdma0").unwrap().bdf;
    let e = release_region(&a.ctx, nic, third).unwrap_err();
    assert!(matches!(e, HmmError::NotDevicePrivate { .. }), "{e}");
}

#[test]
fn explaining_a_peer_map_traces_the_alias_and_changes_nothing() {
    let (a, mem, g) = setup();
    let nic = a.find("rdma0").unwrap().device.clone();
    let nvme = a.find("nvme0").unwrap().device.clone();
    g.set_rule(nic.bdf(), Direction::ToDevice, PairRule::Alias);
    let page = g.page(1).unwrap();
    let live = nic.live_singles();
    // The alias for a read: the owner allows, the oracle's route says no.
    let x = mem
        .explain_for_peer(&nic, page, Direction::ToDevice)
        .unwrap();
    assert_eq!(
        x.answer,
        Some(PeerAnswer::BarAlias(PhysAddr::new(VRAM + PAGE_SIZE)))
    );
    let d = x.decision.unwrap();
    let route = d.route.as_ref().unwrap();
    assert!(!route.read);
    assert!(d.error.is_some());
    assert!(x.reasons.iter().any(|r| r.source == ReasonSource::Oracle));
    assert_eq!(nic.live_singles(), live);
    // A migration is explained, not done.
    let x = mem
        .explain_for_peer(&nvme, page, Direction::ToDevice)
        .unwrap();
    assert_eq!(x.answer, Some(PeerAnswer::Migrate));
    assert!(x.decision.is_none());
    assert!(mem.migrated_pages().is_empty());
}
