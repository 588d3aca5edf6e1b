//! Cost of the decorators per map + sync + unmap, over a backend that does
//! nothing (identity addresses), with 1024 other mappings active so the
//! debug lookups work on a populated table; `empty_layer` is the delegation
//! mechanism alone (a middleware that changes nothing), to compare with
//! `bare`. `map_sg_unmap_sg` does the same for a 16-entry table. Every cycle
//! is run once and checked (no error, no dma-debug report) before timing.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use dma_api::debug::DmaDebug;
use dma_api::middleware::{
    FaultInject, FaultOps, Identity, InjectError, Layered, Tracing, Trigger,
};
use dma_api::port::{DmaBackend, MapRequest, SegPlan, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use scatterlist::{DmaFlags, Pfn, SgTable, PAGE_SIZE};
use std::hint::black_box;

struct Null;

impl DmaBackend for Null {
    fn name(&self) -> &str {
        "null"
    }
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        Ok(DmaAddr::new(req.phys.raw()))
    }
    fn unmap(&self, _: DmaAddr, _: &MapRequest) -> Result<(), DmaError> {
        Ok(())
    }
    fn map_sg(
        &self,
        t: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<usize, DmaError> {
        for e in t.iter_mut() {
            let (phys, len) = (e.phys().raw(), u64::from(e.len()));
            e.set_dma(DmaAddr::new(phys), len, DmaFlags::EMPTY)?;
        }
        let n = t.orig_nents();
        t.set_nents(n)?;
        Ok(n)
    }
    fn unmap_sg(
        &self,
        t: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        t.clear_dma();
        Ok(())
    }
    fn sync_for_cpu(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn sync_for_device(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn need_sync(&self, _: DmaAddr) -> bool {
        false
    }
    fn max_mapping_size(&self) -> u64 {
        u64::MAX
    }
    fn opt_mapping_size(&self) -> u64 {
        u64::MAX
    }
    fn merge_boundary(&self) -> u64 {
        0
    }
}

fn req(i: u64) -> MapRequest {
    MapRequest {
        phys: PhysAddr::new(0x1000_0000 + i * 0x1000),
        len: 1500,
        dir: Direction::FromDevice,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    }
}

fn cycle(b: &dyn DmaBackend, r: &MapRequest) -> Result<(), DmaError> {
    let dma = b.map(r)?;
    b.sync_for_cpu(dma, r.len, r.dir)?;
    b.unmap(black_box(dma), r)
}

/// A 16-entry RAM table of 2-page entries, and its plan.
fn table() -> (SgTable, Vec<SegPlan>) {
    let pfns: Vec<Pfn> = (0..16u64)
        .flat_map(|i| [Pfn::new(0x20_000 + 3 * i), Pfn::new(0x20_001 + 3 * i)])
        .collect();
    let t = SgTable::from_pages(&pfns, 0, pfns.len() as u64 * PAGE_SIZE, u64::MAX)
        .expect("bench table builds");
    assert_eq!(t.orig_nents(), 16);
    let plan = t
        .iter()
        .map(|e| SegPlan {
            phys: e.phys(),
            target: SegTarget::Ram,
        })
        .collect();
    (t, plan)
}

fn sg_cycle(b: &dyn DmaBackend, t: &mut SgTable, plan: &[SegPlan]) -> Result<(), DmaError> {
    let (dir, attrs) = (Direction::ToDevice, DmaAttrs::empty());
    b.map_sg(t, plan, dir, attrs)?;
    b.unmap_sg(black_box(t), plan, dir, attrs)
}

fn bench(c: &mut Criterion) {
    let r = req(5000);
    let mut g = c.benchmark_group("map_sync_unmap");
    cycle(&Null, &r).expect("bare cycle");
    g.bench_function("bare", |b| b.iter(|| cycle(&Null, black_box(&r))));
    // The delegation mechanism alone: a layer that changes nothing.
    let e = Layered::wrap(Null, Identity);
    cycle(&e, &r).expect("empty layer cycle");
    g.bench_function("empty_layer", |b| b.iter(|| cycle(&e, black_box(&r))));
    let d = DmaDebug::new(Null);
    for i in 0..1024 {
        d.map(&req(i)).expect("background mapping");
    }
    cycle(&d, &r).expect("debug cycle");
    assert!(d.reports().is_empty(), "{:?}", d.reports());
    g.bench_function("debug", |b| b.iter(|| cycle(&d, black_box(&r))));
    let t = Tracing::ring(Null, 4096);
    cycle(&t, &r).expect("tracing cycle");
    g.bench_function("tracing", |b| b.iter(|| cycle(&t, black_box(&r))));
    let f = FaultInject::new(
        Null,
        FaultOps::all(),
        Trigger::Never,
        InjectError::NoResources,
    );
    cycle(&f, &r).expect("fault-never cycle");
    g.bench_function("fault_never", |b| b.iter(|| cycle(&f, black_box(&r))));
    g.finish();

    let mut g = c.benchmark_group("map_sg_unmap_sg");
    let (mut tb, plan) = table();
    sg_cycle(&Null, &mut tb, &plan).expect("bare sg cycle");
    g.bench_function("bare", |b| {
        b.iter(|| sg_cycle(&Null, black_box(&mut tb), black_box(&plan)))
    });
    sg_cycle(&d, &mut tb, &plan).expect("debug sg cycle");
    assert!(d.reports().is_empty(), "{:?}", d.reports());
    g.bench_function("debug", |b| {
        b.iter(|| sg_cycle(&d, black_box(&mut tb), black_box(&plan)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
