//! Cost of the arch port's hot paths: RAM→bus translation through
//! dma-ranges, building a cache program and lowering it to machine code.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dma_api::{AddrWindow, ArchDevice, BusAddr, DmaAttrs, DmaMask, PhysAddr, SegKind, SyncOp};

fn bench(c: &mut Criterion) {
    let ranges = [
        AddrWindow {
            cpu_start: PhysAddr::new(0x8000_0000),
            bus_start: BusAddr::new(0),
            size: 0x4000_0000,
        },
        AddrWindow {
            cpu_start: PhysAddr::new(0x1_0000_0000),
            bus_start: BusAddr::new(0x8000_0000),
            size: 0x1_0000_0000,
        },
    ];
    let dev = match ArchDevice::from_windows(ranges, false, DmaMask::BITS_64) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    for arch in dma_arch::all() {
        let n = arch.name();
        c.bench_function(&format!("{n}/ram_to_bus"), |b| {
            b.iter(|| {
                arch.ram_to_bus(
                    &dev,
                    black_box(PhysAddr::new(0x1_2345_6000)),
                    black_box(0x1000),
                    DmaAttrs::empty(),
                )
            })
        });
        c.bench_function(&format!("{n}/program_4k_unaligned"), |b| {
            b.iter(|| {
                arch.cache_program(
                    black_box(PhysAddr::new(0x1_2345_6010)),
                    black_box(0x1000),
                    SegKind::Ram,
                    SyncOp::Invalidate,
                )
            })
        });
        let p = match arch.cache_program(
            PhysAddr::new(0x1_2345_6010),
            0x1000,
            SegKind::Ram,
            SyncOp::Invalidate,
        ) {
            Ok(p) => p,
            Err(e) => panic!("{n}: {e}"),
        };
        c.bench_function(&format!("{n}/lower_4k_unaligned"), |b| {
            b.iter(|| arch.lower(black_box(&p)))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
