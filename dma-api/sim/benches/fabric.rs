//! Fabric speed on the reference server: routing one TLP, and moving 64 KiB
//! to RAM and peer-to-peer (MPS 256: 256 TLPs each routed). No target: the
//! fabric is a test instrument; this keeps its cost visible.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dma_api::types::DmaAddr;
use dma_api::Bdf;
use dma_sim::fabric::Fabric;
use dma_sim::machine::Machine;

fn bench(c: &mut Criterion) {
    let f = Fabric::from_machine(&Machine::reference().unwrap());
    let nvme1: Bdf = "04:00.0".parse().unwrap();
    let gpu: Bdf = "06:00.0".parse().unwrap();
    let data = vec![0x5au8; 64 * 1024];
    let (cmb, ram) = (DmaAddr::new(0x40_0000_0000), DmaAddr::new(0x1000_0000));
    // Every timed operation succeeds (checked first), so no error path is
    // ever timed; a failure inside the loop is a broken bench and stops it.
    assert!(f.route_of(nvme1, cmb, true).is_ok());
    assert!(f.route_of(gpu, cmb, true).is_ok());
    assert!(f.dma_write(nvme1, ram, &data).is_ok());
    assert!(f.dma_write(nvme1, cmb, &data).is_ok());
    c.bench_function("route_of/p2p_across_switch", |b| {
        b.iter(|| f.route_of(black_box(nvme1), cmb, true).expect("routes"))
    });
    c.bench_function("route_of/redirected_via_host_bridge", |b| {
        b.iter(|| f.route_of(black_box(gpu), cmb, true).expect("routes"))
    });
    let mut g = c.benchmark_group("dma_write_64k");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("ram", |b| {
        b.iter(|| f.dma_write(nvme1, ram, black_box(&data)).expect("lands"))
    });
    g.bench_function("p2p_across_switch", |b| {
        b.iter(|| f.dma_write(nvme1, cmb, black_box(&data)).expect("lands"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
