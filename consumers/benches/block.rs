//! Block request mapping and PRP construction on the reference server:
//!
//! * `block_map/{direct,iommu,p2p}/{4k,128k,1m}` — `BlockQueue::map` then
//!   `unmap` of a request on nvme0's queue: `direct` with the IOMMU off
//!   (per-segment path), `iommu` with it strict (one IOVA reservation,
//!   two-step links), `p2p` strict with the data in rdma0's p2pmem (bus
//!   addresses, nothing linked). Requests are 64 KiB segments every other
//!   64 KiB (4 KiB: one segment). Each has its peer in the same run,
//!   `table/…`: `table_from_ranges` + `map_sgtable` + `unmap_sgtable` of the
//!   same ranges on the same device (the path the driver used before the
//!   block layer);
//! * `prp/1m` — the PRP entries and list-page layout of a 1 MiB transfer
//!   at an odd offset (257 pages); peer: collecting the same page
//!   addresses into a vector.
//!
//! Every timed call is checked once before timing (never an error path).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use dma_api::{DmaAddr, DmaAttrs, PhysAddr, Segment, SegmentRoute};
use dma_consumers::block::{BlockQueue, BlockRequest, Op};
use dma_consumers::nvme::{prp, Nvme};
use dma_sim::assembly::IommuMode;
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions};
use std::hint::black_box;

const HIGH: u64 = 0x1_0020_0000;
const RDMA_P2PMEM: u64 = 0x40_0400_0000;

fn queue(mode: IommuMode) -> (Assembly, BlockQueue) {
    let opts = AssemblyOptions {
        iommu: mode,
        ..AssemblyOptions::default()
    };
    let a = Assembly::build(Machine::reference().unwrap(), opts).unwrap();
    let n = Nvme::probe(a.find("nvme0").unwrap().device.clone()).unwrap();
    let q = n.queue(true).unwrap();
    (a, q)
}

fn ranges(base: u64, len: u64) -> Vec<(PhysAddr, u64)> {
    let chunk = len.min(0x1_0000);
    (0..len / chunk)
        .map(|i| (PhysAddr::new(base + 2 * i * chunk), chunk))
        .collect()
}

fn bench_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_map");
    for (path, mode, base) in [
        ("direct", IommuMode::Off, HIGH),
        ("iommu", IommuMode::Strict, HIGH),
        ("p2p", IommuMode::Strict, RDMA_P2PMEM),
    ] {
        let (_a, q) = queue(mode);
        let dev = q.device().clone();
        for (name, len) in [("4k", 0x1000u64), ("128k", 0x2_0000), ("1m", 0x10_0000)] {
            let r = ranges(base, len);
            let req = BlockRequest::new(Op::Write, 0, &r);
            let m = q.map(&req).unwrap();
            assert_eq!(m.segments().iter().map(|s| s.len).sum::<u64>(), len);
            if path == "p2p" {
                assert!(m
                    .segments()
                    .iter()
                    .all(|s| s.route == SegmentRoute::PeerBus));
            }
            m.unmap().unwrap();
            g.bench_function(format!("{path}/{name}"), |b| {
                b.iter(|| q.map(black_box(&req)).unwrap().unmap().unwrap())
            });
            let dir = Op::Write.direction();
            let mut t = dev.table_from_ranges(&r, u64::from(u32::MAX)).unwrap();
            dev.map_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
            dev.unmap_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
            g.bench_function(format!("table/{path}/{name}"), |b| {
                b.iter(|| {
                    let mut t = dev
                        .table_from_ranges(black_box(&r), u64::from(u32::MAX))
                        .unwrap();
                    dev.map_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
                    dev.unmap_sgtable(&mut t, dir, DmaAttrs::empty()).unwrap();
                })
            });
        }
    }
    g.finish();
}

fn bench_prp(c: &mut Criterion) {
    let segs = [Segment {
        dma: DmaAddr::new(0x1_0000_0804),
        len: 1 << 20,
        route: SegmentRoute::Ram,
    }];
    let p = prp::plan(&segs).unwrap();
    assert_eq!(p.pages.len(), 256);
    assert_eq!(prp::list_chunks(p.pages.len()).len(), 1);
    let mut g = c.benchmark_group("prp");
    g.bench_function("1m", |b| {
        b.iter(|| {
            let p = prp::plan(black_box(&segs)).unwrap();
            black_box(prp::list_chunks(p.pages.len()));
            p
        })
    });
    g.bench_function("collect-pages/1m", |b| {
        b.iter(|| {
            let s = black_box(&segs)[0];
            let first = (s.dma.raw() & !0xfff) + 0x1000;
            (0..256u64)
                .map(|i| first + i * 0x1000)
                .collect::<Vec<u64>>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_map, bench_prp);
criterion_main!(benches);
