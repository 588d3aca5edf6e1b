//! Buffer sharing on the reference server (IOMMU strict):
//!
//! * `attach_map_unmap_detach/64` — a 64-range system-RAM buffer attached by
//!   rdma0, mapped (one IOVA, 64 links at running offsets), unmapped and
//!   detached; its peer in the same run is what a driver does without
//!   sharing: `table_from_ranges` + `map_sgtable` + `unmap_sgtable` of the
//!   same 64 ranges on the same device;
//! * `attach_map_unmap_detach/scattered-64` — the same with the 64 pages
//!   scattered (every other page of 128): 64 links, no run to merge; peer:
//!   `map_sgtable` of the same ranges;
//! * `invalidate/16` — one invalidation notifying 16 dynamic importers; its
//!   peer is the same call with 1 importer.
//!
//! Every timed call is checked once before timing (never an error path).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use dma_api::share::{
    Attachment, Exporter, ExporterCaps, ImporterCaps, ImporterOps, Notice, ShareAccess,
    SharedBuffer, SpinWait, WaitBudget,
};
use dma_api::{Bdf, Direction, DmaAttrs, PhysAddr};
use dma_consumers::sysram::SysRamExporter;
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions};
use std::hint::black_box;
use std::sync::Arc;

const PAGE: u64 = 4096;

struct Quiet;

impl ImporterOps for Quiet {
    fn invalidate(&self, _: &mut Notice<'_>) {}
}

/// Exports whatever ranges it is given (system RAM).
struct Pages(Bdf);

impl Exporter for Pages {
    fn device(&self) -> Bdf {
        self.0
    }
    fn caps(&self) -> ExporterCaps {
        ExporterCaps::default()
    }
}

fn setup() -> (Assembly, Arc<SysRamExporter>, SharedBuffer) {
    let a = Assembly::build(Machine::reference().unwrap(), AssemblyOptions::default()).unwrap();
    let hb = a.find("host-bridge").unwrap().bdf;
    let e = SysRamExporter::new(a.ctx.clone(), hb, 64, PAGE).unwrap();
    let b = e.export(PAGE).unwrap();
    (a, e, b)
}

fn cycle(buf: &SharedBuffer, dev: &Arc<dma_api::DmaDevice>) -> u64 {
    let caps = ImporterCaps::any(ShareAccess::Read, true);
    let mut att = buf.attach(dev.clone(), caps, Arc::new(Quiet)).unwrap();
    let m = att.map(Direction::ToDevice).unwrap();
    let n = m.segments().len() as u64;
    att.unmap(m.id()).unwrap();
    att.detach().unwrap();
    n
}

fn plain(dev: &dma_api::DmaDevice, ranges: &[(PhysAddr, u64)]) -> usize {
    let mut t = dev.table_from_ranges(ranges, 1 << 20).unwrap();
    let n = dev
        .map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    n
}

fn bench(c: &mut Criterion) {
    let (a, e, buf) = setup();
    let dev = a.find("rdma0").unwrap().device.clone();
    let ranges: Vec<(PhysAddr, u64)> = e.pages().iter().map(|&p| (p, PAGE)).collect();
    assert_eq!(cycle(&buf, &dev), 64);
    assert!(plain(&dev, &ranges) >= 1);
    let mut g = c.benchmark_group("attach_map_unmap_detach");
    g.bench_function("share/64", |b| b.iter(|| black_box(cycle(&buf, &dev))));
    g.bench_function("map_sgtable/64", |b| {
        b.iter(|| black_box(plain(&dev, black_box(&ranges))))
    });
    // Scattered: every other page of a 128-page allocation.
    let hb = a.find("host-bridge").unwrap().bdf;
    let pool = SysRamExporter::new(a.ctx.clone(), hb, 128, PAGE).unwrap();
    let scattered: Vec<(PhysAddr, u64)> =
        pool.pages().iter().step_by(2).map(|&p| (p, PAGE)).collect();
    assert!(scattered
        .windows(2)
        .all(|w| w[1].0.raw() != w[0].0.raw() + PAGE));
    let sbuf = SharedBuffer::export(&a.ctx, Arc::new(Pages(hb)), &scattered).unwrap();
    assert_eq!(cycle(&sbuf, &dev), 64);
    assert!(plain(&dev, &scattered) >= 1);
    g.bench_function("share/scattered-64", |b| {
        b.iter(|| black_box(cycle(&sbuf, &dev)))
    });
    g.bench_function("map_sgtable/scattered-64", |b| {
        b.iter(|| black_box(plain(&dev, black_box(&scattered))))
    });
    g.finish();

    let mut g = c.benchmark_group("invalidate");
    for n in [1usize, 16] {
        let atts: Vec<Attachment> = (0..n)
            .map(|_| {
                buf.attach(
                    dev.clone(),
                    ImporterCaps::any(ShareAccess::Read, true),
                    Arc::new(Quiet),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(buf.invalidate(WaitBudget::NONE, &SpinWait).unwrap(), n);
        g.bench_function(format!("importers/{n}"), |b| {
            b.iter(|| black_box(buf.invalidate(WaitBudget::NONE, &SpinWait)))
        });
        drop(atts);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
