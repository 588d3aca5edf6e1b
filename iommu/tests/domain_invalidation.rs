//! Domains, IOTLB and strict/lazy invalidation (dma-iommu.c flush queue).

use std::time::Duration;

use dma_iommu::domain::{FqMode, StaleEntry, PER_CPU_FQ_SIZE};
use dma_iommu::pgtable::{AnyFormat, Prot, VtdSs};
use dma_iommu::walker::{Access, Fault};
use dma_iommu::{
    DomainError, DomainType, GroupId, Iommu, IommuFault, Iova, IovaSource, PhysAddr, QueueOutcome,
    SimClock,
};
use proptest::prelude::*;

const RW: Prot = Prot::READ.union(Prot::WRITE);
const G: GroupId = GroupId(7);

fn vtd() -> AnyFormat {
    AnyFormat::VtdSs(VtdSs::new(4).unwrap())
}

fn setup(ty: DomainType) -> (Iommu, dma_iommu::DomainId) {
    let mut io = Iommu::new(SimClock::new());
    let d = io.alloc_domain(ty, vtd()).unwrap();
    io.attach_group(G, true, d).unwrap();
    (io, d)
}

fn not_present(r: Result<PhysAddr, IommuFault>) -> bool {
    matches!(r, Err(IommuFault::Walk(Fault::NotPresent { .. })))
}

#[test]
fn strict_unmap_then_flush_faults_and_frees_only_after_flush() {
    let (mut io, d) = setup(DomainType::Dma);
    io.map(
        d,
        Iova::new(0x10_0000),
        PhysAddr::new(0x8000_0000),
        0x4000,
        RW,
    )
    .unwrap();
    assert_eq!(
        io.translate(G, Iova::new(0x10_2010), Access::Write),
        Ok(PhysAddr::new(0x8000_2010))
    );
    let frames = io.page_table(d).unwrap().table_frames();
    assert_eq!(frames, 4); // root + 3 levels

    let tok = io.unmap(d, Iova::new(0x10_0000), 0x4000).unwrap();
    assert_eq!(tok.unmapped(), 0x4000);
    // Only 16 KiB of a 2 MiB level-0 table is covered: no table is detached.
    assert!(tok.freed_tables().is_empty());
    // Before the flush the cached translation still works: this is the
    // window strict mode closes.
    assert_eq!(
        io.translate(G, Iova::new(0x10_2010), Access::Read),
        Ok(PhysAddr::new(0x8000_2010))
    );
    assert_eq!(io.stale_entries(d).len(), 1);
    assert!(
        io.released_iovas(d).is_empty(),
        "IOVA must not be reusable before the flush"
    );

    io.flush(tok).unwrap();
    assert!(not_present(io.translate(
        G,
        Iova::new(0x10_2010),
        Access::Read
    )));
    assert!(io.stale_entries(d).is_empty());
    assert_eq!(io.released_iovas(d), &[(Iova::new(0x10_0000), 0x4000)]);
    assert_eq!(io.stale_window_bound(d), Some(Duration::ZERO));
}

#[test]
fn strict_flush_releases_detached_tables_only_after_invalidation() {
    let (mut io, d) = setup(DomainType::Dma);
    // A 2 MiB range whose physical side is only 4K aligned: 512 4K leaves in
    // one level-0 table.
    io.map(
        d,
        Iova::new(0x8000_0000),
        PhysAddr::new(0x1_0000_1000),
        0x20_0000,
        RW,
    )
    .unwrap();
    assert_eq!(io.page_table(d).unwrap().leaf_count(), 512);
    assert_eq!(
        io.translate(G, Iova::new(0x8000_0000), Access::Read),
        Ok(PhysAddr::new(0x1_0000_1000))
    );
    let before = io.page_table(d).unwrap().table_frames();
    // Unmapping the whole 2 MiB covers the level-0 table: it is detached.
    let tok = io.unmap(d, Iova::new(0x8000_0000), 0x20_0000).unwrap();
    assert_eq!(tok.unmapped(), 0x20_0000);
    assert_eq!(tok.freed_tables().len(), 1);
    let freed = tok.freed_tables().to_vec();
    {
        let m = io.page_table(d).unwrap().mem().read().unwrap();
        assert!(
            freed.iter().all(|&t| m.is_allocated(t)),
            "still allocated until the flush"
        );
    }
    assert_eq!(io.page_table(d).unwrap().table_frames(), before);
    io.flush(tok).unwrap();
    let m = io.page_table(d).unwrap().mem().read().unwrap();
    assert!(freed.iter().all(|&t| !m.is_allocated(t)));
    drop(m);
    assert_eq!(io.page_table(d).unwrap().table_frames(), before - 1);
    assert!(not_present(io.translate(
        G,
        Iova::new(0x8000_0000),
        Access::Read
    )));
}

#[test]
fn lazy_stale_entry_translates_until_the_10ms_timer_flush() {
    let (mut io, d) = setup(DomainType::DmaFq);
    io.map(
        d,
        Iova::new(0x20_0000),
        PhysAddr::new(0x9000_0000),
        0x1000,
        RW,
    )
    .unwrap();
    assert_eq!(
        io.translate(G, Iova::new(0x20_0040), Access::Read),
        Ok(PhysAddr::new(0x9000_0040))
    );
    let tok = io.unmap(d, Iova::new(0x20_0000), 0x1000).unwrap();
    assert_eq!(io.queue(tok, 0).unwrap(), QueueOutcome::Queued);

    // The PTE is gone (the walker faults) but the IOTLB still translates.
    let pt = io.page_table(d).unwrap();
    assert_eq!(pt.iova_to_phys(Iova::new(0x20_0000)), None);
    assert_eq!(
        io.stale_entries(d),
        vec![StaleEntry {
            iova: Iova::new(0x20_0000),
            pa_page: PhysAddr::new(0x9000_0000),
            filled_at: Default::default()
        }]
    );
    io.clock().advance(Duration::from_micros(9_999));
    assert_eq!(io.poll().unwrap(), 0);
    assert_eq!(
        io.translate(G, Iova::new(0x20_0040), Access::Write),
        Ok(PhysAddr::new(0x9000_0040))
    );
    assert!(io.released_iovas(d).is_empty());
    assert_eq!(io.current_stale_window(d), Duration::from_micros(9_999));

    io.clock().advance(Duration::from_micros(1));
    assert_eq!(io.poll().unwrap(), 1);
    assert!(not_present(io.translate(
        G,
        Iova::new(0x20_0040),
        Access::Read
    )));
    assert_eq!(io.released_iovas(d), &[(Iova::new(0x20_0000), 0x1000)]);
    assert_eq!(io.max_observed_window(d), Duration::from_millis(10));
    assert_eq!(io.stale_window_bound(d), Some(Duration::from_millis(10)));
}

#[test]
fn single_queue_uses_one_second_timeout() {
    let mut io = Iommu::new(SimClock::new());
    io.set_fq_mode(FqMode::Single);
    let d = io.alloc_domain(DomainType::DmaFq, vtd()).unwrap();
    io.attach_group(G, true, d).unwrap();
    io.map(d, Iova::new(0x1000), PhysAddr::new(0x1000), 0x1000, RW)
        .unwrap();
    io.translate(G, Iova::new(0x1000), Access::Read).unwrap();
    let tok = io.unmap(d, Iova::new(0x1000), 0x1000).unwrap();
    io.queue(tok, 3).unwrap();
    io.clock().advance(Duration::from_millis(999));
    io.poll().unwrap();
    assert!(
        io.translate(G, Iova::new(0x1000), Access::Read).is_ok(),
        "stale for up to 1 s"
    );
    io.clock().advance(Duration::from_millis(1));
    assert_eq!(io.poll().unwrap(), 1);
    assert!(io.translate(G, Iova::new(0x1000), Access::Read).is_err());
    assert_eq!(io.stale_window_bound(d), Some(Duration::from_secs(1)));
}

#[test]
fn entry_is_released_only_after_a_flush_that_started_after_it_was_queued() {
    let (mut io, d) = setup(DomainType::DmaFq);
    for i in 0..3u64 {
        io.map(
            d,
            Iova::new(i << 12),
            PhysAddr::new(0x100_0000 + (i << 12)),
            0x1000,
            RW,
        )
        .unwrap();
    }
    let a = io.unmap(d, Iova::new(0), 0x1000).unwrap();
    io.queue(a, 0).unwrap(); // counter 0
    let started = io.flush_start(d).unwrap(); // start_cnt = 1
                                              // B is cached and unmapped while the flush is in flight.
    io.translate(G, Iova::new(0x1000), Access::Read).unwrap();
    let b = io.unmap(d, Iova::new(0x1000), 0x1000).unwrap();
    io.queue(b, 0).unwrap(); // counter 1
    io.flush_finish(d, started).unwrap(); // finish_cnt = 1
                                          // B's cached translation survived the in-flight flush.
    assert_eq!(
        io.translate(G, Iova::new(0x1000), Access::Read),
        Ok(PhysAddr::new(0x100_1000))
    );
    let c = io.unmap(d, Iova::new(0x2000), 0x1000).unwrap();
    io.queue(c, 0).unwrap(); // reaps: A (0 < 1) yes, B (1 < 1) no
    assert_eq!(io.released_iovas(d), &[(Iova::new(0), 0x1000)]);
    assert_eq!(io.queued(d), 2);
    io.flush_iotlb_all(d).unwrap();
    io.clock().advance(Duration::from_millis(10));
    io.poll().unwrap();
    assert_eq!(io.released_iovas(d).len(), 3);
    assert!(io.translate(G, Iova::new(0x1000), Access::Read).is_err());
}

#[test]
fn full_per_cpu_ring_flushes_synchronously() {
    let (mut io, d) = setup(DomainType::DmaFq);
    for i in 0..=PER_CPU_FQ_SIZE as u64 {
        io.map(d, Iova::new(i << 12), PhysAddr::new(i << 12), 0x1000, RW)
            .unwrap();
        let t = io.unmap(d, Iova::new(i << 12), 0x1000).unwrap();
        io.queue(t, 1).unwrap();
    }
    // The 257th found the ring full: flush, release all 256, then queue.
    assert_eq!(io.released_iovas(d).len(), PER_CPU_FQ_SIZE);
    assert_eq!(io.queued(d), 1);
    // Another CPU's ring is independent.
    let t = io.unmap(d, Iova::new(0), 0x1000).unwrap();
    assert_eq!(t.unmapped(), 0);
    io.queue(t, 0).unwrap();
    assert_eq!(io.queued(d), 2);
}

#[derive(Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<(Iova, u64)>>>);
impl IovaSource for Log {
    fn free_iova(&mut self, iova: Iova, size: u64) {
        self.0.lock().unwrap().push((iova, size));
    }
}

#[test]
fn untrusted_groups_are_strict_and_never_passthrough() {
    let mut io = Iommu::new(SimClock::new());
    let id = io.alloc_domain(DomainType::Identity, vtd()).unwrap();
    assert_eq!(
        io.attach_group(G, false, id),
        Err(DomainError::UntrustedPassthrough { group: G })
    );
    let d = io.alloc_domain(DomainType::DmaFq, vtd()).unwrap();
    let log = Log::default();
    let seen = std::sync::Arc::clone(&log.0);
    io.set_iova_source(d, Box::new(log)).unwrap();
    io.attach_group(G, false, d).unwrap();
    assert_eq!(io.domain_type(d), Some(DomainType::Dma));
    assert!(matches!(
        io.set_domain_type(d, DomainType::DmaFq),
        Err(DomainError::BadTypeChange { .. })
    ));
    io.map(d, Iova::new(0x1000), PhysAddr::new(0x2000), 0x1000, RW)
        .unwrap();
    io.translate(G, Iova::new(0x1000), Access::Read).unwrap();
    let t = io.unmap(d, Iova::new(0x1000), 0x1000).unwrap();
    assert_eq!(io.queue(t, 0).unwrap(), QueueOutcome::FlushedNow);
    assert!(io.translate(G, Iova::new(0x1000), Access::Read).is_err());
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(Iova::new(0x1000), 0x1000)]
    );
}

#[test]
fn blocked_identity_and_detached_groups() {
    let mut io = Iommu::new(SimClock::new());
    let b = io.alloc_domain(DomainType::Blocked, vtd()).unwrap();
    let i = io.alloc_domain(DomainType::Identity, vtd()).unwrap();
    io.attach_group(GroupId(1), true, b).unwrap();
    io.attach_group(GroupId(2), true, i).unwrap();
    assert_eq!(
        io.translate(GroupId(1), Iova::new(0x1000), Access::Read),
        Err(IommuFault::Blocked { group: GroupId(1) })
    );
    assert_eq!(
        io.translate(GroupId(2), Iova::new(0x1234), Access::Write),
        Ok(PhysAddr::new(0x1234))
    );
    assert_eq!(
        io.translate(GroupId(3), Iova::new(0), Access::Read),
        Err(IommuFault::NoDomain { group: GroupId(3) })
    );
    assert!(matches!(
        io.map(b, Iova::new(0), PhysAddr::new(0), 0x1000, RW),
        Err(DomainError::NotTranslating {
            ty: DomainType::Blocked,
            ..
        })
    ));
    // Dma -> DmaFq is the one allowed live change.
    let d = io.alloc_domain(DomainType::Dma, vtd()).unwrap();
    io.set_domain_type(d, DomainType::DmaFq).unwrap();
    assert!(io.set_domain_type(d, DomainType::Dma).is_err());
}

#[test]
fn iotlb_caches_permissions() {
    let (mut io, d) = setup(DomainType::Dma);
    io.map(
        d,
        Iova::new(0x3000),
        PhysAddr::new(0x5000),
        0x1000,
        Prot::READ,
    )
    .unwrap();
    assert!(io.translate(G, Iova::new(0x3000), Access::Read).is_ok());
    assert!(matches!(
        io.translate(G, Iova::new(0x3000), Access::Write),
        Err(IommuFault::Walk(Fault::Permission {
            access: Access::Write,
            ..
        }))
    ));
    assert_eq!(io.iotlb().stats.hits, 1);
    assert_eq!(io.iotlb().stats.misses, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Whatever the schedule, with the timer firing at its deadline no
    /// unmapped IOVA stays translatable (or unreleased) longer than the
    /// flush-queue timeout.
    #[test]
    fn lazy_stale_window_is_bounded_by_timeout(
        steps in prop::collection::vec((0u64..64, 0u64..4000, 0usize..2), 1..200),
        single in any::<bool>(),
    ) {
        let mut io = Iommu::new(SimClock::new());
        io.set_fq_mode(if single { FqMode::Single } else { FqMode::PerCpu { cpus: 2 } });
        let d = io.alloc_domain(DomainType::DmaFq, vtd()).unwrap();
        io.attach_group(G, true, d).unwrap();
        let bound = io.stale_window_bound(d).unwrap();
        let mut mapped = std::collections::BTreeSet::new();
        for (page, micros, cpu) in steps {
            let iova = Iova::new(page << 12);
            if mapped.insert(page) {
                io.map(d, iova, PhysAddr::new(0x1000_0000 + (page << 12)), 0x1000, RW).unwrap();
                io.translate(G, iova, Access::Read).unwrap();
            } else {
                mapped.remove(&page);
                let t = io.unmap(d, iova, 0x1000).unwrap();
                io.queue(t, cpu).unwrap();
            }
            // Advance time, firing timers exactly at their deadlines.
            let target = io.clock().now().after(Duration::from_micros(micros * if single { 100 } else { 1 }));
            while let Some(t) = io.next_timer().filter(|&t| t <= target) {
                io.clock().advance(t.since(io.clock().now()));
                io.poll().unwrap();
            }
            io.clock().advance(target.since(io.clock().now()));
            prop_assert!(io.current_stale_window(d) <= bound);
            // A stale IOTLB entry exists only for an unmapped page whose
            // unmap is still waiting in the queue.
            let stale = io.stale_entries(d);
            prop_assert!(stale.is_empty() || io.queued(d) > 0);
            for s in stale {
                prop_assert!(!mapped.contains(&(s.iova.raw() >> 12)));
            }
        }
        prop_assert!(io.max_observed_window(d) <= bound);
    }
}
