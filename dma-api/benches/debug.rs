//! Cost of the decorators per map + sync + unmap, over a backend that does
//! nothing (identity addresses), with 1024 other mappings active so the
//! debug lookups work on a populated table; `empty_layer` is the delegation
//! mechanism alone (a middleware that changes nothing), to compare with
//! `bare`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use dma_api::debug::DmaDebug;
use dma_api::middleware::{
    FaultInject, FaultOps, Identity, InjectError, Layered, Tracing, Trigger,
};
use dma_api::port::{DmaBackend, MapRequest, SegPlan, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use scatterlist::SgTable;
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
        Ok(t.orig_nents())
    }
    fn unmap_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
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

fn cycle(b: &dyn DmaBackend, r: &MapRequest) {
    let dma = b.map(r).unwrap_or(DmaAddr::MAX);
    let _ = b.sync_for_cpu(dma, r.len, r.dir);
    let _ = b.unmap(black_box(dma), r);
}

fn bench(c: &mut Criterion) {
    let r = req(5000);
    let mut g = c.benchmark_group("map_sync_unmap");
    g.bench_function("bare", |b| b.iter(|| cycle(&Null, black_box(&r))));
    // The delegation mechanism alone: a layer that changes nothing.
    let e = Layered::wrap(Null, Identity);
    g.bench_function("empty_layer", |b| b.iter(|| cycle(&e, black_box(&r))));
    let d = DmaDebug::new(Null);
    for i in 0..1024 {
        let _ = d.map(&req(i));
    }
    g.bench_function("debug", |b| b.iter(|| cycle(&d, black_box(&r))));
    let t = Tracing::ring(Null, 4096);
    g.bench_function("tracing", |b| b.iter(|| cycle(&t, black_box(&r))));
    let f = FaultInject::new(
        Null,
        FaultOps::all(),
        Trigger::Never,
        InjectError::NoResources,
    );
    g.bench_function("fault_never", |b| b.iter(|| cycle(&f, black_box(&r))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
