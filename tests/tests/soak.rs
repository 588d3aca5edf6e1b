//! Soak: 4 threads × many mixed map/unmap/sync operations over the reference
//! server, strict and lazy, with dma-debug on; afterwards nothing is left:
//! no live IOVA, no page-table leaf, no swiotlb slot, no dma-debug report.
//!
//! Kept out of the default run (it is long):
//! `cargo test --release -p unidma-tests --test soak -- --ignored`
//! (`UNIDMA_SOAK_OPS` sets the operations per thread; default 10 000 000).

use dma_api::{Direction, DmaAttrs, DmaDevice, PhysAddr};
use dma_sim::assembly::{Assembly, AssemblyOptions, IommuMode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use unidma_tests::*;

/// xorshift64*: reproducible per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

enum Live {
    Single(dma_api::DmaAddr, u64, Direction, usize),
    Table(scatterlist::SgTable, Direction, usize),
}

/// Live mappings never share a cache line (dma-debug would rightly report
/// it for device writes): each takes one of 16 disjoint 64 KiB slots.
const SLOT: u64 = 0x1_0000;

fn worker(d: &Arc<DmaDevice>, base: PhysAddr, peer: Option<PhysAddr>, seed: u64, ops: u64) {
    let mut rng = Rng(seed | 1);
    let mut live: Vec<Live> = Vec::new();
    let mut free: Vec<usize> = (0..16).collect();
    let dirs = [
        Direction::ToDevice,
        Direction::FromDevice,
        Direction::Bidirectional,
    ];
    for _ in 0..ops {
        let r = rng.next();
        let dir = dirs[(r % 3) as usize];
        match (r >> 8) % 8 {
            0..=2 if !free.is_empty() => {
                let slot = free.swap_remove((r >> 48) as usize % free.len());
                let off = slot as u64 * SLOT + (r >> 16) % 0x100 * 64;
                let len = 1 + (r >> 40) % 0x3000;
                let dma = d
                    .map_phys(PhysAddr::new(base.raw() + off), len, dir, DmaAttrs::empty())
                    .unwrap();
                live.push(Live::Single(dma, len, dir, slot));
            }
            3 if !free.is_empty() => {
                let slot = free.swap_remove((r >> 48) as usize % free.len());
                let off = slot as u64 * SLOT;
                let mut ranges = vec![(
                    PhysAddr::new(base.raw() + off),
                    0x1000 + (r >> 40) % 0x1000 / 64 * 64,
                )];
                ranges.push((PhysAddr::new(base.raw() + off + 0x8000), 0x800));
                if let (Some(p), true) = (peer, dir == Direction::FromDevice) {
                    ranges.push((PhysAddr::new(p.raw() + off), 0x1000));
                }
                let mut t = d.table_from_ranges(&ranges, 1 << 16).unwrap();
                d.map_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
                live.push(Live::Table(t, dir, slot));
            }
            4 => {
                if let Some(Live::Single(dma, len, dir, _)) = live.last() {
                    d.sync_single_for_cpu(*dma, *len, *dir).unwrap();
                    d.sync_single_for_device(*dma, *len, *dir).unwrap();
                }
            }
            _ => {
                if live.is_empty() {
                    continue;
                }
                let i = (r >> 20) as usize % live.len();
                match live.swap_remove(i) {
                    Live::Single(dma, len, dir, slot) => {
                        d.unmap_phys(dma, len, dir, DmaAttrs::empty()).unwrap();
                        free.push(slot);
                    }
                    Live::Table(mut t, dir, slot) => {
                        d.unmap_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
                        free.push(slot);
                    }
                }
            }
        }
    }
    for l in live {
        match l {
            Live::Single(dma, len, dir, _) => {
                d.unmap_phys(dma, len, dir, DmaAttrs::empty()).unwrap()
            }
            Live::Table(mut t, dir, _) => d.unmap_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap(),
        }
    }
}

fn assert_clean(a: &Assembly, mode: IommuMode) {
    // Close every flush-queue window.
    a.advance(Duration::from_secs(1)).unwrap();
    if let Some(io) = &a.iommu {
        for g in io.domains.values() {
            let Some(dom) = &g.dma else { continue };
            dom.iovad().flush_all();
            let iovas = dom.iovad().with_domain(|d| d.allocated_count());
            assert_eq!(iovas, 0, "{mode:?}: live IOVAs in group {:?}", g.members);
            let io = io.iommu.lock().unwrap();
            let leaves = io.page_table(g.id).map_or(0, |pt| pt.leaf_count());
            assert_eq!(leaves, 0, "{mode:?}: page-table leaves in {:?}", g.members);
        }
    }
    assert_eq!(a.swiotlb.used_slots(), 0, "{mode:?}: swiotlb slots");
    for ep in a.endpoints() {
        assert_eq!(ep.device.live_singles() + ep.device.live_tables(), 0);
        if let Some(dbg) = &ep.debug {
            assert_eq!(dbg.reports(), vec![], "{mode:?}: dma-debug on {}", ep.bdf);
            assert_eq!(dbg.active_count(), 0);
        }
    }
    assert_eq!(a.ctx.take_drop_errors(), vec![]);
}

#[test]
#[ignore = "soak test: run with --ignored (long)"]
fn soak_mixed_operations_leave_nothing_behind() {
    let ops: u64 = std::env::var("UNIDMA_SOAK_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    for mode in [IommuMode::Strict, IommuMode::Lazy] {
        let a = reference(AssemblyOptions {
            iommu: mode,
            debug: true,
            ..AssemblyOptions::default()
        });
        let t0 = Instant::now();
        // Each thread its own device and its own 2 MiB of scratch RAM;
        // nvme1 also writes rdma0's registered p2pmem.
        let jobs = [
            ("03:00.0", 0u64, None),
            ("04:00.0", 2, Some(PhysAddr::new(0x40_0400_0000))),
            ("05:00.0", 4, None),
            ("07:00.0", 6, None),
        ];
        std::thread::scope(|s| {
            for (i, (dev, slot, peer)) in jobs.iter().enumerate() {
                let d = a.device(bdf(dev)).unwrap().clone();
                let base = scratch(&a, *slot);
                let peer = *peer;
                s.spawn(move || worker(&d, base, peer, 0x9e37_79b9 * (i as u64 + 1), ops));
            }
        });
        let took = t0.elapsed();
        assert_clean(&a, mode);
        eprintln!(
            "soak {mode:?}: 4 threads x {ops} ops in {took:?} ({:.0} ns/op/thread)",
            took.as_nanos() as f64 / ops as f64
        );
    }
}
