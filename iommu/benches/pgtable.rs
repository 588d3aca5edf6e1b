//! Map/unmap 1 GiB in 4 KiB and in 2 MiB pages: our tables (VT-d second
//! stage, AMD v1, ARM LPAE stage 1, all 4-level, in simulated RAM) side by
//! side with the `x86_64` crate's `MappedPageTable` over heap-backed frames.
//! `per-page`: one `map`/`unmap` call per page, as `dma_map_page`-style
//! callers do; flush tokens are ignored on the peer side and released
//! immediately on ours. `pages`: one `map_pages`/`unmap_pages` call for the
//! whole GiB (Linux's batched io-pgtable ops).
//!
//! The closing summary (`summary`) times every implementation in the same
//! rounds, in rotating order, and prints best / median ratios to the x86_64
//! crate: the figures RFC.md §5.5 quotes (run alone with a filter matching
//! no criterion group, e.g. `-- none`).
//!
//! Every workload runs once, checked, before it is timed (the walker reads
//! back what was mapped; unmaps return the full size), so no timing can hide
//! an error.
//!
//! `unsafe` is needed only for the peer's `PageTableFrameMapping` /
//! `FrameAllocator` traits and `map_to`; the library itself stays safe.
#![allow(unsafe_code)]
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dma_iommu::pgtable::{AmdV1, ArmLpae, ArmStage, Granule, PageTable, Prot, PtFormat, VtdSs};
use dma_iommu::{Iova, PhysAddr};
use x86_64::structures::paging::mapper::{MappedPageTable, Mapper};
use x86_64::structures::paging::{
    Page, PageTable as X86Table, PageTableFlags, PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr as XPhys, VirtAddr};

#[path = "common/x86_frames.rs"]
mod x86_frames;
use x86_frames::Frames;

const GIB: u64 = 1 << 30;
const IOVA_BASE: u64 = 0x40_0000_0000;
const PA_BASE: u64 = 0x1_0000_0000;
const RW: Prot = Prot::READ.union(Prot::WRITE);

// ---------------------------------------------------------------- ours

fn vtdss() -> VtdSs {
    VtdSs::new(4).expect("vtdss")
}
fn amdv1() -> AmdV1 {
    AmdV1::new(4).expect("amdv1")
}
fn arm() -> ArmLpae {
    ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).expect("arm lpae")
}

fn ours_map<F: PtFormat>(pt: &mut PageTable<F>, page: u64) {
    let mut off = 0;
    while off < GIB {
        pt.map(
            Iova::new(IOVA_BASE + off),
            PhysAddr::new(PA_BASE + off),
            page,
            RW,
        )
        .expect("checked before timing");
        off += page;
    }
}

fn ours_unmap<F: PtFormat>(pt: &mut PageTable<F>, page: u64) {
    let mut off = 0;
    while off < GIB {
        let (n, g) = pt.unmap(Iova::new(IOVA_BASE + off), page);
        debug_assert_eq!(n, page);
        pt.release(g);
        off += page;
    }
}

fn ours_map_pages<F: PtFormat>(pt: &mut PageTable<F>, page: u64) {
    let mut mapped = 0;
    pt.map_pages(
        Iova::new(IOVA_BASE),
        PhysAddr::new(PA_BASE),
        page,
        GIB / page,
        RW,
        &mut mapped,
    )
    .expect("checked before timing");
}

fn ours_unmap_pages<F: PtFormat>(pt: &mut PageTable<F>, page: u64) {
    let (n, g) = pt.unmap_pages(Iova::new(IOVA_BASE), page, GIB / page);
    debug_assert_eq!(n, GIB);
    pt.release(g);
}

/// One checked run of a workload: every page translates (the hardware
/// walker over the simulated RAM and `iova_to_phys` agree), then everything
/// unmaps and nothing translates any more.
fn check_ours<F: PtFormat + Copy>(fmt: F, page: u64, batched: bool) {
    let mut pt = PageTable::new(fmt).expect("table");
    if batched {
        let mut mapped = 0;
        pt.map_pages(
            Iova::new(IOVA_BASE),
            PhysAddr::new(PA_BASE),
            page,
            GIB / page,
            RW,
            &mut mapped,
        )
        .expect("map_pages");
        assert_eq!(mapped, GIB, "{}: map_pages mapped", fmt.name());
    } else {
        ours_map(&mut pt, page);
    }
    assert_eq!(pt.leaf_count() as u64, GIB / page, "{}", fmt.name());
    let regs = pt.hw_regs();
    {
        let mem = pt.mem().read().expect("ram");
        for off in [0, page - 8, GIB / 2 + 0x1230, GIB - 8] {
            let w = dma_iommu::walker::walk(&regs, &*mem, Iova::new(IOVA_BASE + off))
                .expect("walker translates");
            assert_eq!(w.pa, PhysAddr::new(PA_BASE + off), "{}", fmt.name());
        }
    }
    if batched {
        let (n, g) = pt.unmap_pages(Iova::new(IOVA_BASE), page, GIB / page);
        assert_eq!(n, GIB, "{}: unmap_pages", fmt.name());
        pt.release(g);
    } else {
        let mut off = 0;
        while off < GIB {
            let (n, g) = pt.unmap(Iova::new(IOVA_BASE + off), page);
            assert_eq!(n, page, "{}: unmap at {off:#x}", fmt.name());
            pt.release(g);
            off += page;
        }
    }
    assert_eq!(pt.leaf_count(), 0, "{}", fmt.name());
    assert_eq!(pt.iova_to_phys(Iova::new(IOVA_BASE)), None);
}

// ---------------------------------------------------------------- x86_64 peer

struct Peer {
    frames: Frames,
    root: Box<X86Table>,
}

impl Peer {
    fn new() -> Self {
        Self {
            frames: Frames::default(),
            root: Box::new(X86Table::new()),
        }
    }

    fn mapper(&mut self) -> MappedPageTable<'_, Frames> {
        // SAFETY: `root` is a valid level-4 table and every frame referenced
        // from it is mapped by `frames` (see the trait impl above).
        unsafe { MappedPageTable::new(&mut self.root, self.frames.clone()) }
    }

    fn map(&mut self, page: u64) {
        if page == 4096 {
            self.map_4k()
        } else {
            self.map_2m()
        }
    }

    fn unmap(&mut self, page: u64) {
        if page == 4096 {
            self.unmap_4k()
        } else {
            self.unmap_2m()
        }
    }

    fn map_4k(&mut self) {
        let mut alloc = self.frames.clone();
        let mut m = self.mapper();
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            let frame = PhysFrame::<Size4KiB>::containing_address(XPhys::new(PA_BASE + off));
            // SAFETY: the "memory" is never dereferenced; only table entries change.
            unsafe { m.map_to(page, frame, flags, &mut alloc) }
                .unwrap()
                .ignore();
            off += 4096;
        }
    }

    fn unmap_4k(&mut self) {
        let mut m = self.mapper();
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            m.unmap(page).unwrap().1.ignore();
            off += 4096;
        }
    }

    fn map_2m(&mut self) {
        let mut alloc = self.frames.clone();
        let mut m = self.mapper();
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            let frame = PhysFrame::<Size2MiB>::containing_address(XPhys::new(PA_BASE + off));
            // SAFETY: as above.
            unsafe { m.map_to(page, frame, flags, &mut alloc) }
                .unwrap()
                .ignore();
            off += 1 << 21;
        }
    }

    fn unmap_2m(&mut self) {
        let mut m = self.mapper();
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            m.unmap(page).unwrap().1.ignore();
            off += 1 << 21;
        }
    }
}

// ---------------------------------------------------------------- benches

fn bench_format<F: PtFormat + Copy>(c: &mut Criterion, name: &str, fmt: F, page: u64, label: &str) {
    check_ours(fmt, page, false);
    check_ours(fmt, page, true);
    let pages = GIB / page;
    let mut g = c.benchmark_group(format!("map_1GiB_{label}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(pages));
    g.bench_function(format!("unidma_{name}"), |b| {
        b.iter_batched(
            || PageTable::new(fmt).expect("table"),
            |mut pt| {
                ours_map(&mut pt, page);
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(format!("unidma_{name}_map_pages"), |b| {
        b.iter_batched(
            || PageTable::new(fmt).expect("table"),
            |mut pt| {
                ours_map_pages(&mut pt, page);
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let mut g = c.benchmark_group(format!("unmap_1GiB_{label}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(pages));
    let mapped = || {
        let mut pt = PageTable::new(fmt).expect("table");
        ours_map(&mut pt, page);
        pt
    };
    g.bench_function(format!("unidma_{name}"), |b| {
        b.iter_batched(
            mapped,
            |mut pt| {
                ours_unmap(&mut pt, page);
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(format!("unidma_{name}_unmap_pages"), |b| {
        b.iter_batched(
            mapped,
            |mut pt| {
                ours_unmap_pages(&mut pt, page);
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_peer(c: &mut Criterion, page: u64, label: &str) {
    let pages = GIB / page;
    // Checked once: every page translates, then nothing does.
    {
        use x86_64::structures::paging::mapper::Translate;
        let mut p = Peer::new();
        p.map(page);
        for off in [0, page - 8, GIB - 8] {
            let a = p.mapper().translate_addr(VirtAddr::new(IOVA_BASE + off));
            assert_eq!(a, Some(XPhys::new(PA_BASE + off)));
        }
        p.unmap(page);
        assert_eq!(p.mapper().translate_addr(VirtAddr::new(IOVA_BASE)), None);
    }
    let mut g = c.benchmark_group(format!("map_1GiB_{label}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(pages));
    g.bench_function("x86_64_mapped", |b| {
        b.iter_batched(
            Peer::new,
            |mut p| {
                p.map(page);
                p
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let mut g = c.benchmark_group(format!("unmap_1GiB_{label}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(pages));
    g.bench_function("x86_64_mapped", |b| {
        b.iter_batched(
            || {
                let mut p = Peer::new();
                p.map(page);
                p
            },
            |mut p| {
                p.unmap(page);
                p
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    for (label, page) in [("4K", 4096u64), ("2M", 1u64 << 21)] {
        bench_peer(c, page, label);
        bench_format(c, "vtdss", vtdss(), page, label);
        bench_format(c, "amdv1", amdv1(), page, label);
        bench_format(c, "arm_lpae", arm(), page, label);
    }
}

/// 64k random 4K-page lookups in a fully mapped 1 GiB (4K pages): the
/// writer's `iova_to_phys`, the hardware walker, and the peer's
/// `translate_addr`.
fn bench_translate(c: &mut Criterion) {
    let mut pt = PageTable::new(vtdss()).expect("table");
    ours_map(&mut pt, 4096);
    let mut peer = Peer::new();
    peer.map_4k();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let probes: Vec<u64> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IOVA_BASE + (x % GIB)
        })
        .collect();
    // Checked once: every probe translates the same on all three paths, so
    // no timed lookup takes a miss path.
    let regs = pt.hw_regs();
    {
        use x86_64::structures::paging::mapper::Translate;
        let m = pt.mem().read().expect("ram");
        let x86 = peer.mapper();
        for &p in &probes {
            let want = PA_BASE + (p - IOVA_BASE);
            assert_eq!(pt.iova_to_phys(Iova::new(p)), Some(PhysAddr::new(want)));
            let w = dma_iommu::walker::walk(&regs, &*m, Iova::new(p)).expect("walker");
            assert_eq!(w.pa, PhysAddr::new(want));
            assert_eq!(x86.translate_addr(VirtAddr::new(p)), Some(XPhys::new(want)));
        }
    }
    let mut g = c.benchmark_group("translate_64k_random");
    g.sample_size(10);
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.bench_function("unidma_iova_to_phys", |b| {
        b.iter(|| {
            probes
                .iter()
                .map(|&p| pt.iova_to_phys(Iova::new(p)).map_or(0, |a| a.raw()))
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.bench_function("unidma_hw_walker", |b| {
        let m = pt.mem().read().expect("ram");
        b.iter(|| {
            probes
                .iter()
                .map(|&p| {
                    dma_iommu::walker::walk(&regs, &m, Iova::new(p)).map_or(0, |w| w.pa.raw())
                })
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.bench_function("x86_64_translate_addr", |b| {
        let m = peer.mapper();
        b.iter(|| {
            use x86_64::structures::paging::mapper::Translate;
            probes
                .iter()
                .map(|&p| m.translate_addr(VirtAddr::new(p)).map_or(0, |a| a.as_u64()))
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.finish();
    eprintln!(
        "table frames for 1 GiB in 4K pages: unidma {} (x {} B), x86_64 {} (+ root)",
        pt.table_frames(),
        4096,
        peer.frames.0.borrow().len()
    );
}

/// One `map` call for the whole 1 GiB with a 4K-aligned (not 2M-aligned)
/// physical base, so the engine itself walks out 262144 4K leaves.
fn bench_range_map(c: &mut Criterion) {
    let one_call = |pt: &mut PageTable<VtdSs>| {
        pt.map(Iova::new(IOVA_BASE), PhysAddr::new(PA_BASE + 4096), GIB, RW)
    };
    {
        let mut pt = PageTable::new(vtdss()).expect("table");
        one_call(&mut pt).expect("one-call map");
        assert_eq!(pt.leaf_count() as u64, GIB / 4096);
    }
    let mut g = c.benchmark_group("map_1GiB_4K_one_call");
    g.sample_size(10);
    g.throughput(Throughput::Elements(GIB / 4096));
    g.bench_function("unidma_vtdss", |b| {
        b.iter_batched(
            || PageTable::new(vtdss()).expect("table"),
            |mut pt| {
                one_call(&mut pt).expect("checked before timing");
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Times of one round: (map, unmap).
type Round = (Duration, Duration);

/// One round of our table: per-page map then unmap of the GiB, or the
/// batched ops. Each is timed alone; setup and drop are not.
fn round_ours<F: PtFormat + Copy>(fmt: F, page: u64, batched: bool) -> Round {
    let mut pt = PageTable::new(fmt).expect("table");
    let t = Instant::now();
    if batched {
        ours_map_pages(&mut pt, page);
    } else {
        ours_map(&mut pt, page);
    }
    let map = t.elapsed();
    let t = Instant::now();
    if batched {
        ours_unmap_pages(&mut pt, page);
    } else {
        ours_unmap(&mut pt, page);
    }
    let unmap = t.elapsed();
    assert_eq!(pt.leaf_count(), 0);
    (map, unmap)
}

fn round_peer(page: u64) -> Round {
    let mut p = Peer::new();
    let t = Instant::now();
    p.map(page);
    let map = t.elapsed();
    let t = Instant::now();
    p.unmap(page);
    (map, t.elapsed())
}

/// (best, median) of `v`.
fn best_median(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let ns = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_nanos() as f64);
    (ns(v.first()), ns(v.get(v.len() / 2)))
}

/// The summary the RFC quotes: every implementation timed in the same
/// interleaved rounds (peer, then each of ours, then again), so load on a
/// shared machine hits all alike; best and median of the rounds, as ratios
/// to the x86_64 crate. Every workload was checked before (`check_ours`,
/// `bench_peer`).
fn summary(_: &mut Criterion) {
    const ROUNDS: usize = 15;
    type Runner = Box<dyn Fn(u64) -> Round>;
    let ours: [(&str, Runner); 6] = [
        ("VT-d", Box::new(|p| round_ours(vtdss(), p, false))),
        ("VT-d pages", Box::new(|p| round_ours(vtdss(), p, true))),
        ("AMD v1", Box::new(|p| round_ours(amdv1(), p, false))),
        ("AMD v1 pages", Box::new(|p| round_ours(amdv1(), p, true))),
        ("ARM LPAE", Box::new(|p| round_ours(arm(), p, false))),
        ("ARM LPAE pages", Box::new(|p| round_ours(arm(), p, true))),
    ];
    println!("\npgtable summary: ratio to x86_64 MappedPageTable, best / median of {ROUNDS} interleaved rounds");
    for (label, page) in [("4K", 4096u64), ("2M", 1u64 << 21)] {
        let mut peer: [Vec<Duration>; 2] = Default::default();
        let mut mine: Vec<[Vec<Duration>; 2]> = ours.iter().map(|_| Default::default()).collect();
        // The order rotates each round, so whatever a run leaves behind
        // (allocator state, caches) falls on every implementation alike.
        for r in 0..ROUNDS {
            for k in 0..=ours.len() {
                let (which, (m, u)) = match (r + k) % (ours.len() + 1) {
                    0 => (&mut peer, round_peer(page)),
                    i => (&mut mine[i - 1], (ours[i - 1].1)(page)),
                };
                which[0].push(m);
                which[1].push(u);
            }
        }
        for (op, k) in [("map", 0), ("unmap", 1)] {
            let (pb, pm) = best_median(&mut peer[k]);
            let mut line = format!(
                "  {op:5} {label}: x86_64 {:>9.1} / {:>9.1} us",
                pb / 1e3,
                pm / 1e3
            );
            for ((name, _), t) in ours.iter().zip(&mut mine) {
                let (b, m) = best_median(&mut t[k]);
                line += &format!(" | {name} {:.2}x / {:.2}x", b / pb, m / pm);
            }
            println!("{line}");
        }
    }
}

criterion_group!(benches, bench, bench_translate, bench_range_map, summary);
criterion_main!(benches);
