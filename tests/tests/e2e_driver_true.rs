//! The DMA API trusts nothing a driver claims, proven on the fabric: a kind
//! is what the memory map says, peer memory is what a provider registered,
//! the two-step IOVA API goes through the same door as every other mapping,
//! and a table that cannot be mapped whole says which entry failed and can be
//! mapped with exactly that entry staged through RAM.

use dma_api::fallback::map_sgtable_or_fallback;
use dma_api::port::{PolicyDecision, ProviderPolicy};
use dma_api::{Bdf, Direction, DmaAttrs, DmaError, ErrorKind, IovaLink, PhysAddr, SegKind};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use scatterlist::SgTable;
use std::sync::Arc;
use unidma_tests::*;

const NVME0: &str = "03:00.0";
const NVME1: &str = "04:00.0";
const NVME0_BAR0: u64 = 0xc000_0000; // registers: never registered as p2pmem
const RDMA0_BAR: u64 = 0x40_0400_0000; // registered p2pmem, same switch
const GPU0_BAR1: u64 = 0x50_0000_0000; // registered p2pmem, behind ACS redirect

/// A BAR presented as RAM is refused by name: before kinds came from the
/// memory map, this table mapped as cacheable RAM and the device's write
/// landed in the BAR, skipping the owner's policy.
#[test]
fn a_bar_presented_as_ram_cannot_be_mapped_as_ram() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = reference_with(mode);
        let d = a.device(bdf(NVME1)).unwrap();
        let ram = scratch(&a, 0);
        let forged = PhysAddr::new(RDMA0_BAR + 0x1000);
        let mut t = SgTable::from_ranges(&[(ram, 0x1000), (forged, 0x1000)], SegKind::Ram, 1 << 20)
            .unwrap();
        let e = d
            .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap_err();
        let rdma0 = a.ctx.provider_of(bdf("05:00.0")).unwrap();
        assert_eq!(
            e,
            DmaError::KindMismatch {
                index: 1,
                phys: forged,
                len: 0x1000,
                claimed: SegKind::Ram,
                actual: Some(SegKind::PeerBar(rdma0)),
            },
            "{mode:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(!t.is_dma_mapped());
        assert_eq!(d.live_tables(), 0);
        // Built through the classifier, the same ranges map, the BAR entry
        // as the peer memory it is (a bus address across the switch).
        let mut t = d
            .table_from_ranges(&[(ram, 0x1000), (forged, 0x1000)], 1 << 20)
            .unwrap();
        d.map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        let segs = dma_api::segments(&t).collect::<Vec<_>>();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].dma.raw(), forged.raw(), "bus address, {mode:?}");
        let data = pattern(0x1000, 3);
        dev_write(&a, bdf(NVME1), segs[1].dma, &data).unwrap();
        assert_eq!(cpu_read(&a, forged, 0x1000), data);
        d.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
    }
}

/// Another device's register BAR is nobody's peer memory.
#[test]
fn an_unregistered_register_bar_is_refused_by_name() {
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME1)).unwrap();
    let regs = PhysAddr::new(NVME0_BAR0);
    let e = d
        .map_phys(regs, 0x100, Direction::FromDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::NotPeerMemory {
            provider: bdf(NVME0),
            bar: Some(0),
            phys: regs,
            len: 0x100
        }
    );
    // Once nvme0 registers it, the same map goes through: it is the owner's
    // choice, not the client's.
    let reg = a.ctx.add_p2pmem(bdf(NVME0), 0, 0, 0, None).unwrap();
    let dma = d
        .map_phys(regs, 0x100, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    dev_write(&a, bdf(NVME1), dma, &[0x5a; 0x100]).unwrap();
    assert_eq!(cpu_read(&a, regs, 0x100), vec![0x5a; 0x100]);
    d.unmap_phys(dma, 0x100, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    drop(reg);
    assert!(matches!(
        d.map_phys(regs, 0x100, Direction::FromDevice, DmaAttrs::empty()),
        Err(DmaError::NotPeerMemory { .. })
    ));
}

struct Refuse;
impl ProviderPolicy for Refuse {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        PolicyDecision::Refuse("exporter revoked the buffer".into())
    }
}

/// The two-step IOVA API asks the same questions as `map_phys`: a refused
/// provider range and a revoked one cannot be linked, and a reachable peer
/// comes back as a bus address instead of being linked. Before, `link` took a
/// bare physical address and mapped whatever it was given.
#[test]
fn the_two_step_iova_api_goes_through_the_dispatcher() {
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME1)).unwrap();
    assert!(d.has_iova_api());
    let gpu = PhysAddr::new(GPU0_BAR1);
    let st = d.iova_try_alloc(gpu, 0x2000).unwrap().unwrap();

    // Refused by the registered range's policy.
    a.ctx
        .set_range_policy(bdf("06:00.0"), gpu, Arc::new(Refuse))
        .unwrap();
    let e = d
        .iova_link(
            &st,
            gpu,
            0,
            0x2000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert!(matches!(e, DmaError::ProviderRefused { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Fallback);
    // Nothing was linked: the device's write through the reservation faults.
    let iova = dma_api::DmaAddr::from_iova(st.base);
    assert!(dev_write(&a, bdf(NVME1), iova, &[1; 64]).is_err());
    d.iova_destroy(st, 0, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();

    // Revoked: nvme0 registers its registers BAR, then unregisters it.
    let regs = PhysAddr::new(NVME0_BAR0);
    let reg = a.ctx.add_p2pmem(bdf(NVME0), 0, 0, 0, None).unwrap();
    reg.unregister().unwrap();
    let st = d.iova_try_alloc(regs, 0x1000).unwrap().unwrap();
    let e = d
        .iova_link(
            &st,
            regs,
            0,
            0x1000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert!(matches!(e, DmaError::NotPeerMemory { .. }), "{e}");
    d.iova_destroy(st, 0, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();

    // A bus-address peer is not linked: the caller gets its bus address.
    let rdma = PhysAddr::new(RDMA0_BAR);
    let st = d.iova_try_alloc(rdma, 0x1000).unwrap().unwrap();
    let l = d
        .iova_link(
            &st,
            rdma,
            0,
            0x1000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(
        l,
        IovaLink::Bus(dma_api::DmaAddr::from_bus(dma_api::BusAddr::new(RDMA0_BAR)))
    );
    d.iova_destroy(st, 0, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();

    // RAM links and moves bytes.
    let ram = scratch(&a, 1);
    let st = d.iova_try_alloc(ram, 0x2000).unwrap().unwrap();
    assert_eq!(
        d.iova_link(
            &st,
            ram,
            0,
            0x2000,
            Direction::FromDevice,
            DmaAttrs::empty()
        ),
        Ok(IovaLink::Linked)
    );
    d.iova_sync(&st, 0, 0x2000).unwrap();
    let data = pattern(0x2000, 9);
    dev_write(&a, bdf(NVME1), dma_api::DmaAddr::from_iova(st.base), &data).unwrap();
    assert_eq!(cpu_read(&a, ram, 0x2000), data);
    d.iova_destroy(st, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
}

/// Forced bouncing (a confidential guest): peer MMIO through the host bridge
/// cannot be bounced. The table's error names that entry; the table-level
/// fallback stages only it through RAM and the bytes land everywhere they
/// should.
#[test]
fn a_mixed_table_names_the_failing_entry_and_the_fallback_bounces_only_it() {
    let opts = AssemblyOptions {
        iommu: IommuMode::Off,
        force_bounce: true,
        ..AssemblyOptions::default()
    };
    let a = reference(opts);
    let d = a.device(bdf(NVME0)).unwrap();
    let (r0, r2) = (scratch(&a, 0), scratch(&a, 2));
    let gpu = PhysAddr::new(GPU0_BAR1 + 0x3000);
    let ranges = [(r0, 0x1000), (gpu, 0x1000), (r2, 0x800)];
    let mut t = d.table_from_ranges(&ranges, 1 << 20).unwrap();
    let e = d
        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap_err();
    let DmaError::TableEntry {
        index, phys, cause, ..
    } = &e
    else {
        panic!("not a table-entry error: {e}");
    };
    assert_eq!((*index, *phys), (1, gpu), "{e}");
    assert!(matches!(**cause, DmaError::MmioNotBounceable { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Fallback);
    assert_eq!(d.live_tables(), 0);

    // The per-entry plan says the same without mapping anything.
    let plans = d.plan_entries(&t, Direction::FromDevice, DmaAttrs::empty());
    assert!(plans[0].is_ok() && plans[2].is_ok());
    assert!(matches!(
        &plans[1],
        Err(DmaError::TableEntry { index: 1, .. })
    ));

    let before = a.ctx.ram_in_use();
    let peer = a.peer_memory();
    let f = map_sgtable_or_fallback(d, &t, Direction::FromDevice, DmaAttrs::empty(), peer).unwrap();
    assert_eq!(f.bounced().len(), 1);
    assert_eq!((f.bounced()[0].index, f.bounced()[0].orig), (1, gpu));
    assert_eq!(f.bounced()[0].reason, e);
    // The device writes its three segments.
    let data = pattern(0x2800, 5);
    let mut at = 0usize;
    for s in dma_api::segments(f.table()) {
        let n = s.len as usize;
        dev_write(&a, bdf(NVME0), s.dma, &data[at..at + n]).unwrap();
        at += n;
    }
    assert_eq!(at, data.len());
    f.complete().unwrap();
    assert_eq!(cpu_read(&a, r0, 0x1000), data[..0x1000]);
    assert_eq!(
        cpu_read(&a, gpu, 0x1000),
        data[0x1000..0x2000],
        "copied back"
    );
    assert_eq!(cpu_read(&a, r2, 0x800), data[0x2000..]);
    assert_eq!(a.ctx.ram_in_use(), before, "the staging RAM is freed");
    assert_eq!(d.live_tables(), 0);
}

/// Issue 11, bug 3: a `CpuView` must read where the device's accesses land:
/// a peer BAR's backing (through the context's memory port) and an owner's
/// redirect target, not RAM at the original address.
#[test]
fn cpu_view_reads_peer_bar_and_redirected_memory_where_the_device_wrote() {
    use dma_api::{CpuBuffer, FromDevice};
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME1)).unwrap();
    // Peer BAR (bus address across the switch).
    let bar = PhysAddr::new(RDMA0_BAR + 0x4000);
    let m = CpuBuffer::new(bar, 0x100)
        .unwrap()
        .map::<FromDevice>(d, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x100, 11);
    dev_write(&a, bdf(NVME1), m.dma_addr(), &data).unwrap();
    let v = m.sync_for_cpu().map_err(|(_, e)| e).unwrap();
    let mut got = vec![0u8; 0x100];
    v.read(0, &mut got).unwrap();
    assert_eq!(got, data, "the view reads the BAR's backing");
    assert_eq!(
        v.read(0xf0, &mut [0u8; 0x20]),
        Err(DmaError::OutOfBounds {
            offset: 0xf0,
            len: 0x20,
            size: 0x100
        })
    );
    v.unmap().unwrap();

    // Redirected: the APU's "VRAM" aperture is really its carve-out; the
    // owner sends peers there.
    struct ToCarveOut;
    impl ProviderPolicy for ToCarveOut {
        fn decide(
            &self,
            _: Bdf,
            phys: PhysAddr,
            _: u64,
            _: SegKind,
            _: Direction,
        ) -> PolicyDecision {
            PolicyDecision::Redirect(PhysAddr::new(0x8000_0000 + (phys.raw() - 0xc200_0000)))
        }
    }
    let apu = a.ctx.provider_of(bdf("00:08.0")).unwrap();
    a.ctx.set_policy(apu, Arc::new(ToCarveOut));
    let aperture = PhysAddr::new(0xc200_1000);
    let m = CpuBuffer::new(aperture, 0x80)
        .unwrap()
        .map::<FromDevice>(d, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x80, 12);
    dev_write(&a, bdf(NVME1), m.dma_addr(), &data).unwrap();
    assert_eq!(
        cpu_read(&a, PhysAddr::new(0x8000_1000), 0x80),
        data,
        "landed in the carve-out"
    );
    let v = m.sync_for_cpu().map_err(|(_, e)| e).unwrap();
    let mut got = vec![0u8; 0x80];
    v.read(0, &mut got).unwrap();
    assert_eq!(got, data, "the view reads the redirect target");
    v.unmap().unwrap();
}

/// A block driver learns the direction per request: a run-time-direction
/// table under forced bouncing; a sub-range sync for the CPU copies exactly
/// that range back from the bounce buffers.
#[test]
fn a_run_time_direction_table_syncs_exactly_the_range_asked() {
    use dma_api::MappedTable;
    let opts = AssemblyOptions {
        iommu: IommuMode::Off,
        force_bounce: true,
        ..AssemblyOptions::default()
    };
    let a = reference(opts);
    let d = a.device(bdf(NVME0)).unwrap();
    let (b0, b1) = (scratch(&a, 0), scratch(&a, 1));
    // A read request: the device writes memory.
    let dir = request_dir(true);
    let t = d
        .table_from_ranges(&[(b0, 0x1000), (b1, 0x1000)], 1 << 20)
        .unwrap();
    let m = MappedTable::map(d, t, dir, DmaAttrs::empty())
        .map_err(|(_, e)| e)
        .unwrap();
    assert_eq!(m.dir(), Direction::FromDevice);
    let segs: Vec<_> = m.segments().collect();
    assert_eq!(segs.len(), 2);
    let data = pattern(0x2000, 13);
    dev_write(&a, bdf(NVME0), segs[0].dma, &data[..0x1000]).unwrap();
    dev_write(&a, bdf(NVME0), segs[1].dma, &data[0x1000..]).unwrap();
    // Bytes 0xf00..0x1100 straddle the two segments.
    m.sync_range_for_cpu(0xf00, 0x200).unwrap();
    assert_eq!(
        cpu_read(&a, PhysAddr::new(b0.raw() + 0xf00), 0x100),
        data[0xf00..0x1000]
    );
    assert_eq!(cpu_read(&a, b1, 0x100), data[0x1000..0x1100]);
    assert_ne!(
        cpu_read(&a, b0, 0x100),
        data[..0x100],
        "outside the range: not yet synced"
    );
    assert!(matches!(
        m.sync_range_for_cpu(0x1f00, 0x200),
        Err(DmaError::OutOfBounds { .. })
    ));
    let t = m.unmap().unwrap();
    assert_eq!(t.orig_nents(), 2);
    assert_eq!(
        cpu_read(&a, b0, 0x1000),
        data[..0x1000],
        "unmap copies the rest back"
    );
    assert_eq!(d.live_tables(), 0);
}

/// The direction of a block request, as `rq_dma_dir` computes it.
fn request_dir(is_read: bool) -> Direction {
    if is_read {
        Direction::FromDevice
    } else {
        Direction::ToDevice
    }
}
