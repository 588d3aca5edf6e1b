//! A provider may redirect one of its ranges to several RAM ranges (a buffer
//! migrated to scattered system pages), proven on the fabric: a table entry
//! becomes one DMA segment per RAM range and the caller's table comes back
//! as it was on unmap; the two-step IOVA API links each range at its own
//! running offset, so the IOVA range reads as the one range asked for; a
//! single mapping has no one address for it and says so; lengths that do
//! not add up are the provider's bug, typed.

use dma_api::port::{PolicyDecision, ProviderPolicy};
use dma_api::{
    Bdf, Direction, DmaAddr, DmaAttrs, DmaError, ErrorKind, IovaLink, PhysAddr, SegKind,
};
use dma_sim::assembly::{Assembly, IommuMode};
use std::sync::Arc;
use unidma_tests::*;

const NVME1: &str = "04:00.0";
const GPU0: &str = "06:00.0";
const GPU0_BAR1: u64 = 0x50_0000_0000; // registered p2pmem

struct Scattered(Vec<(PhysAddr, u64)>);
impl ProviderPolicy for Scattered {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        PolicyDecision::RedirectRanges(self.0.clone())
    }
}

/// Two RAM pages that are not adjacent, the GPU's buffer as it now lives.
fn pieces(a: &Assembly) -> Vec<(PhysAddr, u64)> {
    let base = scratch(a, 4);
    vec![(base.checked_add(0x3000).unwrap(), 0x1000), (base, 0x1000)]
}

/// The reference server (strict IOMMU) with gpu0's registered range
/// redirected to [`pieces`]: the assembly, the range, the pieces.
fn scattered_gpu() -> (Assembly, PhysAddr, Vec<(PhysAddr, u64)>) {
    let a = reference_with(IommuMode::Strict);
    let gpu = PhysAddr::new(GPU0_BAR1);
    let p = pieces(&a);
    a.ctx
        .set_range_policy(bdf(GPU0), gpu, Arc::new(Scattered(p.clone())))
        .unwrap();
    (a, gpu, p)
}

#[test]
fn the_two_step_api_links_each_range_at_its_running_offset() {
    let (a, gpu, p) = scattered_gpu();
    let d = a.device(bdf(NVME1)).unwrap();
    let st = d.iova_try_alloc(gpu, 0x2000).unwrap().unwrap();
    let l = d
        .iova_link(
            &st,
            gpu,
            0,
            0x2000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(l, IovaLink::Linked);
    d.iova_sync(&st, 0, 0x2000).unwrap();
    // The device writes the buffer in one go through its IOVA range: each
    // half lands in its own RAM page (linking both at offset 0 would put
    // the second half over the first and leave the second page untouched).
    let data = pattern(0x2000, 3);
    dev_write(&a, bdf(NVME1), DmaAddr::from_iova(st.base), &data).unwrap();
    assert_eq!(cpu_read(&a, p[0].0, 0x1000), data[..0x1000]);
    assert_eq!(cpu_read(&a, p[1].0, 0x1000), data[0x1000..]);
    d.iova_destroy(st, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // Unlinked: the same write faults now.
    assert!(dev_write(&a, bdf(NVME1), DmaAddr::from_iova(st.base), &data).is_err());
}

#[test]
fn a_table_entry_becomes_one_segment_per_range_and_the_table_comes_back() {
    let (a, gpu, p) = scattered_gpu();
    let d = a.device(bdf(NVME1)).unwrap();
    let head = scratch(&a, 1);
    let mut t = d
        .table_from_ranges(&[(head, 0x1000), (gpu, 0x2000)], 0x10_0000)
        .unwrap();
    assert_eq!(t.orig_nents(), 2);
    d.map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // While mapped the CPU side says where the bytes really go.
    let cpu: Vec<(PhysAddr, u32)> = t.iter().map(|e| (e.phys(), e.len())).collect();
    assert_eq!(
        cpu,
        vec![(head, 0x1000), (p[0].0, 0x1000), (p[1].0, 0x1000)]
    );
    // The device writes every DMA segment in order.
    let data = pattern(0x3000, 11);
    let mut at = 0usize;
    for e in t.dma_iter() {
        let n = e.dma_len() as usize;
        dev_write(&a, bdf(NVME1), e.dma_address(), &data[at..at + n]).unwrap();
        at += n;
    }
    assert_eq!(at, 0x3000);
    d.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(cpu_read(&a, head, 0x1000), data[..0x1000]);
    assert_eq!(cpu_read(&a, p[0].0, 0x1000), data[0x1000..0x2000]);
    assert_eq!(cpu_read(&a, p[1].0, 0x1000), data[0x2000..]);
    // The caller's table is back as it built it, and nothing stays mapped.
    let cpu: Vec<(PhysAddr, u64)> = t.iter().map(|e| (e.phys(), u64::from(e.len()))).collect();
    assert_eq!(cpu, vec![(head, 0x1000), (gpu, 0x2000)]);
    assert!(!t.is_dma_mapped());
    assert_eq!(d.live_tables(), 0);
}

#[test]
fn a_single_mapping_has_no_one_address_and_bad_lengths_are_typed() {
    let (a, gpu, p) = scattered_gpu();
    let d = a.device(bdf(NVME1)).unwrap();
    let e = d
        .map_phys(gpu, 0x2000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::RedirectScattered {
            provider: bdf(GPU0),
            pieces: p.clone()
        }
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(d.live_singles(), 0);

    // Adjacent ranges merge: a single mapping works and reads them in order.
    let base = scratch(&a, 2);
    let adjacent = vec![(base, 0x800), (base.checked_add(0x800).unwrap(), 0x1800)];
    a.ctx
        .set_range_policy(bdf(GPU0), gpu, Arc::new(Scattered(adjacent)))
        .unwrap();
    let data = pattern(0x2000, 5);
    cpu_write(&a, base, &data);
    let dma = d
        .map_phys(gpu, 0x2000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dev_read(&a, bdf(NVME1), dma, 0x2000).unwrap(), data);
    d.unmap_phys(dma, 0x2000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();

    // Ranges that do not add up to the length asked for.
    a.ctx
        .set_range_policy(bdf(GPU0), gpu, Arc::new(Scattered(vec![(base, 0x1000)])))
        .unwrap();
    let e = d
        .map_phys(gpu, 0x2000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::RedirectLength {
            provider: bdf(GPU0),
            asked: 0x2000,
            total: Some(0x1000)
        }
    );
    // A range that is not RAM is refused like a single redirect.
    let bad = vec![(base, 0x1000), (gpu, 0x1000)];
    a.ctx
        .set_range_policy(bdf(GPU0), gpu, Arc::new(Scattered(bad)))
        .unwrap();
    let mut t = d.table_from_ranges(&[(gpu, 0x2000)], 0x10_0000).unwrap();
    let e = d
        .map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert!(
        matches!(e.root_cause(), DmaError::BadRedirect { .. }),
        "{e}"
    );
    assert!(!t.is_dma_mapped());
    assert_eq!(d.live_tables(), 0);
}

/// The table-level fallback leaves a scattered redirect to the map (which
/// expands it) instead of refusing the table or staging the entry.
#[test]
fn the_table_fallback_maps_a_scattered_redirect_without_staging_it() {
    let (a, gpu, p) = scattered_gpu();
    let d = a.device(bdf(NVME1)).unwrap();
    let t = d.table_from_ranges(&[(gpu, 0x2000)], 0x10_0000).unwrap();
    let before = a.ctx.ram_in_use();
    let f = dma_api::map_sgtable_or_fallback(
        d,
        &t,
        Direction::FromDevice,
        DmaAttrs::empty(),
        a.peer_memory(),
    )
    .unwrap();
    assert!(f.bounced().is_empty(), "nothing staged");
    let data = pattern(0x2000, 21);
    let mut at = 0usize;
    for s in dma_api::segments(f.table()) {
        let n = s.len as usize;
        dev_write(&a, bdf(NVME1), s.dma, &data[at..at + n]).unwrap();
        at += n;
    }
    assert_eq!(at, 0x2000);
    f.complete().unwrap();
    assert_eq!(cpu_read(&a, p[0].0, 0x1000), data[..0x1000]);
    assert_eq!(cpu_read(&a, p[1].0, 0x1000), data[0x1000..]);
    assert_eq!(a.ctx.ram_in_use(), before);
    assert_eq!(d.live_tables(), 0);
}
