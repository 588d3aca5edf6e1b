//! `map_sg` + `unmap_sg` of a 256-entry table through the IOMMU backend
//! (VT-d 4-level table, coherent trusted PCI device), strict (`Dma`) and lazy
//! (`DmaFq`), for an all-RAM table and for one whose every other entry is
//! host-bridge peer memory (mapped MMIO). Entries are 4 KiB and physically
//! discontiguous, so each needs its own page-table map call.
//!
//! `baseline/pt_only` is the page-table work alone (256 `Iommu::map` calls,
//! one unmap, one strict flush) for the overhead of the DMA layer on top.
//!
//! `two_step_sparse/destroy/{1GiB,64GiB}`: the two-step API's
//! `try_alloc` + one 2 MiB `link` at the far end + `sync` + `destroy` of the
//! whole reservation; its cost must follow the 2 MiB mapped, not the size
//! reserved (holes are skipped by table level).
//!
//! Criterion reports throughput in entries; ns per segment = 1e9 / thrpt.
//! The printed summary line gives ns per segment directly.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dma_api::port::{DmaBackend, SegPlan, SegTarget};
use dma_api::{Bdf, Direction, DmaAttrs, PhysAddr};
use dma_iommu::dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
use dma_iommu::pgtable::{AnyFormat, VtdSs};
use dma_iommu::{DomainType, GroupId, Iommu, PhysMem, SimClock};
use scatterlist::{ProviderId, SegKind, SgTable};

const NSEG: u64 = 256;

fn backend(ty: DomainType) -> IommuDmaBackend {
    let mem = Arc::new(RwLock::new(PhysMem::new()));
    let mut io = Iommu::with_mem(mem, SimClock::new());
    let d = io
        .alloc_domain(ty, AnyFormat::VtdSs(VtdSs::new(4).expect("vtd")))
        .expect("domain");
    let g = GroupId(1);
    io.attach_group(g, true, d).expect("attach");
    let iommu: SharedIommu = Arc::new(Mutex::new(io));
    let dom = DmaDomain::new(iommu, d, 1).expect("cookie");
    let bdf: Bdf = "0000:01:00.0".parse().expect("bdf");
    IommuDmaBackend::new(dom, IommuDevice::pci(bdf, g)).expect("backend")
}

/// 256 discontiguous 4 KiB entries; with `peer`, every odd one is a peer BAR
/// reached through the host bridge.
fn table(peer: bool) -> (SgTable, Vec<SegPlan>) {
    let mut t = SgTable::new();
    let mut plan = Vec::new();
    for i in 0..NSEG {
        let is_peer = peer && i % 2 == 1;
        let phys = if is_peer {
            0x20_0000_0000 + i * 0x2000
        } else {
            0x1_0000_0000 + i * 0x2000
        };
        let kind = if is_peer {
            SegKind::PeerBar(ProviderId::new(1))
        } else {
            SegKind::Ram
        };
        let one =
            SgTable::from_ranges(&[(PhysAddr::new(phys), 0x1000)], kind, 1 << 20).expect("entry");
        t = t.chain(one).expect("chain");
        plan.push(SegPlan {
            phys: PhysAddr::new(phys),
            target: if is_peer {
                SegTarget::PeerHostBridge
            } else {
                SegTarget::Ram
            },
        });
    }
    (t, plan)
}

fn round_trip(b: &IommuDmaBackend, t: &mut SgTable, plan: &[SegPlan]) {
    let n = b
        .map_sg(t, plan, Direction::Bidirectional, DmaAttrs::empty())
        .expect("map_sg");
    debug_assert!(n >= 1);
    black_box(n);
    b.unmap_sg(t, plan, Direction::Bidirectional, DmaAttrs::empty())
        .expect("unmap_sg");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_sg_256");
    g.throughput(Throughput::Elements(NSEG));
    for (mode, ty) in [("strict", DomainType::Dma), ("lazy", DomainType::DmaFq)] {
        for (kind, peer) in [("ram", false), ("half_peer", true)] {
            let b = backend(ty);
            let (mut t, plan) = table(peer);
            // Checked once before timing: the table maps to at least one DMA
            // segment and unmaps.
            let n = b
                .map_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
                .expect("map_sg");
            assert!(n >= 1 && n <= NSEG as usize, "{mode}/{kind}: {n} segments");
            b.unmap_sg(&mut t, &plan, Direction::Bidirectional, DmaAttrs::empty())
                .expect("unmap_sg");
            // Summary: ns per segment over a fixed run.
            let iters = 2000u32;
            let start = Instant::now();
            for _ in 0..iters {
                round_trip(&b, &mut t, &plan);
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(iters) / NSEG as f64;
            println!("map_sg_256/{mode}/{kind}: {ns:.1} ns per segment (map+unmap)");
            g.bench_function(BenchmarkId::new(mode, kind), |bch| {
                bch.iter(|| round_trip(&b, &mut t, &plan))
            });
        }
    }
    // Baseline: the page-table work alone (256 maps at consecutive IOVAs,
    // one unmap of the span, strict flush), no IOVA allocation or sg logic.
    {
        let mem = Arc::new(RwLock::new(PhysMem::new()));
        let mut io = Iommu::with_mem(mem, SimClock::new());
        let d = io
            .alloc_domain(
                DomainType::Dma,
                AnyFormat::VtdSs(VtdSs::new(4).expect("vtd")),
            )
            .expect("domain");
        let rw = dma_iommu::Prot::READ | dma_iommu::Prot::WRITE | dma_iommu::Prot::CACHE;
        let base = 0x8000_0000u64;
        // Checked once before timing: every page translates, then none.
        for i in 0..NSEG {
            io.map(
                d,
                dma_iommu::Iova::new(base + i * 0x1000),
                PhysAddr::new(0x1_0000_0000 + i * 0x2000),
                0x1000,
                rw,
            )
            .expect("map");
        }
        for i in 0..NSEG {
            let pa = io
                .page_table(d)
                .expect("table")
                .iova_to_phys(dma_iommu::Iova::new(base + i * 0x1000 + 8));
            assert_eq!(pa, Some(PhysAddr::new(0x1_0000_0000 + i * 0x2000 + 8)));
        }
        let t = io
            .unmap(d, dma_iommu::Iova::new(base), NSEG * 0x1000)
            .expect("unmap");
        io.flush(t).expect("flush");
        assert_eq!(
            io.page_table(d)
                .expect("table")
                .iova_to_phys(dma_iommu::Iova::new(base)),
            None
        );
        g.bench_function(BenchmarkId::new("baseline", "pt_only"), |bch| {
            bch.iter(|| {
                for i in 0..NSEG {
                    io.map(
                        d,
                        dma_iommu::Iova::new(base + i * 0x1000),
                        PhysAddr::new(0x1_0000_0000 + i * 0x2000),
                        0x1000,
                        rw,
                    )
                    .expect("map");
                }
                let t = io
                    .unmap(d, dma_iommu::Iova::new(base), NSEG * 0x1000)
                    .expect("unmap");
                io.flush(t).expect("flush");
            })
        });
    }
    g.finish();
}

fn bench_two_step_sparse(c: &mut Criterion) {
    const MIB2: u64 = 2 << 20;
    let mut g = c.benchmark_group("two_step_sparse");
    let b = backend(DomainType::Dma);
    let ops = b.iova_ops().expect("two-step API");
    for (name, size) in [("1GiB", 1u64 << 30), ("64GiB", 64u64 << 30)] {
        // Checked once before timing (below): the whole sequence succeeds.
        let mut checked = false;
        g.bench_function(BenchmarkId::new("destroy", name), |bch| {
            if !checked {
                checked = true;
                let phys = PhysAddr::new(0x1_0000_0000);
                let st = ops.try_alloc(phys, size).expect("try_alloc");
                ops.link(
                    &st,
                    phys,
                    size - MIB2,
                    MIB2,
                    Direction::ToDevice,
                    DmaAttrs::empty(),
                )
                .expect("link");
                ops.sync(&st, size - MIB2, MIB2).expect("sync");
                ops.destroy(st, size, Direction::ToDevice, DmaAttrs::empty())
                    .expect("destroy");
            }
            bch.iter(|| {
                let phys = PhysAddr::new(0x1_0000_0000);
                let st = ops.try_alloc(phys, size).expect("try_alloc");
                ops.link(
                    &st,
                    phys,
                    size - MIB2,
                    MIB2,
                    Direction::ToDevice,
                    DmaAttrs::empty(),
                )
                .expect("link");
                ops.sync(&st, size - MIB2, MIB2).expect("sync");
                ops.destroy(st, size, Direction::ToDevice, DmaAttrs::empty())
                    .expect("destroy");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_two_step_sparse);
criterion_main!(benches);
