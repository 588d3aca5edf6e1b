//! map_sg + unmap_sg of a 256-segment table through `DmaDevice` over the
//! IOMMU backend of the assembled reference server (strict and lazy
//! domains): all RAM, half peer memory by bus address (rdma0 across the
//! switch: no IOMMU work), half peer memory through the host bridge (gpu0:
//! IOMMU-mapped MMIO). `backend_only` maps the same RAM table with a
//! precomputed plan straight through the backend, so the difference is the
//! dispatcher's cost.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use dma_api::port::{SegPlan, SegTarget};
use dma_api::{Direction, DmaAttrs, PhysAddr, SegKind};
use dma_sim::assembly::{Assembly, AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use scatterlist::SgTable;

const SEGS: u64 = 256;

fn table(a: &Assembly, peer: Option<(&str, u64)>) -> SgTable {
    let base = a.layout.scratch.0.raw();
    let mut t = SgTable::new();
    for i in 0..SEGS {
        let (phys, kind) = match peer {
            Some((owner, bar)) if i % 2 == 1 => (
                bar + i * 0x2000,
                SegKind::PeerBar(a.ctx.provider_of(owner.parse().unwrap()).unwrap()),
            ),
            // Discontiguous pages: nothing merges.
            _ => (base + i * 0x2000, SegKind::Ram),
        };
        let one = SgTable::from_ranges(&[(PhysAddr::new(phys), 0x1000)], kind, 1 << 31).unwrap();
        t = t.chain(one).unwrap();
    }
    t
}

fn bench(c: &mut Criterion) {
    for mode in [IommuMode::Strict, IommuMode::Lazy] {
        let m = Machine::reference().unwrap();
        let a = Assembly::build(
            m,
            AssemblyOptions {
                iommu: mode,
                ..AssemblyOptions::default()
            },
        )
        .unwrap();
        let d = a.device("04:00.0".parse().unwrap()).unwrap().clone();
        let tag = if mode == IommuMode::Strict {
            "strict"
        } else {
            "lazy"
        };
        let cases: [(&str, Option<(&str, u64)>); 3] = [
            ("ram", None),
            ("half_peer_bus", Some(("05:00.0", 0x40_0400_0000))),
            ("half_peer_host_bridge", Some(("06:00.0", 0x50_0000_0000))),
        ];
        for (name, peer) in cases {
            let mut t = table(&a, peer);
            c.bench_function(&format!("map_sg_iommu/{tag}/{name}/device"), |b| {
                b.iter(|| {
                    let n = d
                        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
                        .unwrap();
                    d.unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
                        .unwrap();
                    n
                })
            });
        }
        let mut t = table(&a, None);
        let plan: Vec<SegPlan> = t
            .iter()
            .map(|e| SegPlan {
                phys: e.phys(),
                target: SegTarget::Ram,
            })
            .collect();
        let be = d.raw_backend().clone();
        c.bench_function(&format!("map_sg_iommu/{tag}/ram/backend_only"), |b| {
            b.iter(|| {
                let n = be
                    .map_sg(&mut t, &plan, Direction::FromDevice, DmaAttrs::empty())
                    .unwrap();
                be.unmap_sg(&mut t, &plan, Direction::FromDevice, DmaAttrs::empty())
                    .unwrap();
                n
            })
        });
        // Keep lazy flush queues from growing without bound between cases.
        a.advance(std::time::Duration::from_millis(20))
            .expect("lazy flush queues drain");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
