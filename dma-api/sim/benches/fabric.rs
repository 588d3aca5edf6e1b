//! Fabric speed on the reference server.
//!
//! * `route_of/*` — routing one TLP (a P2P write across the switch, and one
//!   redirected through the host bridge).
//! * `dma_write_1m/*` — a device writes 1 MiB (MPS 256: 4096 TLPs, every one
//!   counted on its links): `ram` to RAM through the host bridge's
//!   dma-ranges (no IOMMU attached), `iommu` to a buffer the device mapped
//!   through the assembled machine's IOMMU (strict, VT-d; translated page by
//!   page through the IOTLB), `p2p_across_switch` into a peer's BAR, against
//!   `memcpy`: a copy of the same 1 MiB between two `Vec<u8>`.
//!   Target: `ram` and `iommu` move bytes at >= 0.5x memcpy throughput.
//!
//! After criterion, an interleaved comparison (alternating blocks, best and
//! median block per side) prints the throughput ratios the target is checked
//! against: a shared machine's load hits both sides alike.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dma_api::types::{DmaAddr, PhysAddr};
use dma_api::{Bdf, Direction, DmaAttrs};
use dma_sim::fabric::Fabric;
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions, IommuMode};
use std::time::Instant;

const LEN: usize = 1 << 20;

/// Best and median ns per call of each side, over `blocks` alternating
/// blocks of `per_block` calls.
fn interleaved(
    blocks: usize,
    per_block: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> ((f64, f64), (f64, f64)) {
    let mut ta = Vec::with_capacity(blocks);
    let mut tb = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..per_block {
            a();
        }
        ta.push(t.elapsed().as_nanos() as f64 / per_block as f64);
        let t = Instant::now();
        for _ in 0..per_block {
            b();
        }
        tb.push(t.elapsed().as_nanos() as f64 / per_block as f64);
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (
            v.first().copied().unwrap_or(0.0),
            v.get(v.len() / 2).copied().unwrap_or(0.0),
        )
    };
    (stats(&mut ta), stats(&mut tb))
}

fn bench(c: &mut Criterion) {
    let f = Fabric::from_machine(&Machine::reference().expect("reference machine"));
    let nvme1: Bdf = "04:00.0".parse().expect("bdf");
    let gpu: Bdf = "06:00.0".parse().expect("bdf");
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let (cmb, ram) = (DmaAddr::new(0x40_0000_0000), DmaAddr::new(0x1000_0000));

    // The IOMMU case: nvme0 of the assembled machine maps 1 MiB of scratch
    // RAM for the device to write.
    let asm = Assembly::build(
        Machine::reference().expect("reference machine"),
        AssemblyOptions {
            iommu: IommuMode::Strict,
            ..Default::default()
        },
    )
    .expect("reference machine assembles");
    let nvme0 = asm.find("nvme0").expect("nvme0").bdf;
    let buf = PhysAddr::new(asm.layout.scratch.0.raw() + 0x10_0000);
    let iova = asm
        .device(nvme0)
        .expect("nvme0 device")
        .map_phys(buf, LEN as u64, Direction::FromDevice, DmaAttrs::empty())
        .expect("maps");

    // Every timed operation succeeds and lands (checked first), so no error
    // path is ever timed; a failure inside the loop is a broken bench.
    assert!(f.route_of(nvme1, cmb, true).is_ok());
    assert!(f.route_of(gpu, cmb, true).is_ok());
    let mut back = vec![0u8; LEN];
    f.dma_write(nvme1, ram, &data).expect("lands in RAM");
    f.cpu_read(PhysAddr::new(ram.raw()), &mut back)
        .expect("reads");
    assert!(back == data, "the RAM write landed");
    f.dma_write(nvme1, cmb, &data[..64 * 1024])
        .expect("lands in the CMB");
    asm.fabric
        .dma_write(nvme0, iova, &data)
        .expect("lands through the IOMMU");
    asm.fabric.cpu_read(buf, &mut back).expect("reads");
    assert!(back == data, "the IOMMU write landed");
    assert!(asm.fabric.ram_bytes() == LEN as u64, "counted once");

    c.bench_function("route_of/p2p_across_switch", |b| {
        b.iter(|| f.route_of(black_box(nvme1), cmb, true).expect("routes"))
    });
    c.bench_function("route_of/redirected_via_host_bridge", |b| {
        b.iter(|| f.route_of(black_box(gpu), cmb, true).expect("routes"))
    });
    let mut dst = vec![0u8; LEN];
    let mut g = c.benchmark_group("dma_write_1m");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&data));
            black_box(&dst);
        })
    });
    g.bench_function("ram", |b| {
        b.iter(|| f.dma_write(nvme1, ram, black_box(&data)).expect("lands"))
    });
    g.bench_function("iommu", |b| {
        b.iter(|| {
            asm.fabric
                .dma_write(nvme0, iova, black_box(&data))
                .expect("lands")
        })
    });
    g.finish();
    let mut g = c.benchmark_group("dma_write_64k");
    g.throughput(Throughput::Bytes(64 * 1024));
    g.bench_function("p2p_across_switch", |b| {
        b.iter(|| {
            f.dma_write(nvme1, cmb, black_box(&data[..64 * 1024]))
                .expect("lands")
        })
    });
    g.finish();

    let mut memcpy = || {
        dst.copy_from_slice(black_box(&data));
        black_box(&dst);
    };
    let (m1, r) = interleaved(30, 20, &mut memcpy, || {
        f.dma_write(nvme1, ram, black_box(&data)).expect("lands")
    });
    let (m2, i) = interleaved(30, 20, &mut memcpy, || {
        asm.fabric
            .dma_write(nvme0, iova, black_box(&data))
            .expect("lands")
    });
    let gib = |ns: f64| LEN as f64 / ns / 1.073_741_824;
    println!(
        "\nfabric 1 MiB write vs memcpy, interleaved (best / median of 30 blocks of 20):\n  \
         memcpy       {:.1} / {:.1} us  ({:.1} GiB/s best)\n  \
         ram          {:.1} / {:.1} us  ({:.1} GiB/s best)  throughput {:.2}x / {:.2}x memcpy\n  \
         memcpy       {:.1} / {:.1} us\n  \
         iommu        {:.1} / {:.1} us  ({:.1} GiB/s best)  throughput {:.2}x / {:.2}x memcpy\n  \
         (target >= 0.5x)",
        m1.0 / 1e3,
        m1.1 / 1e3,
        gib(m1.0),
        r.0 / 1e3,
        r.1 / 1e3,
        gib(r.0),
        m1.0 / r.0,
        m1.1 / r.1,
        m2.0 / 1e3,
        m2.1 / 1e3,
        i.0 / 1e3,
        i.1 / 1e3,
        gib(i.0),
        m2.0 / i.0,
        m2.1 / i.1,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
