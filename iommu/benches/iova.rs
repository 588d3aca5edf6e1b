//! IOVA allocator against its peers (rust-anchors.md §6), side by side:
//! vm-allocator 0.1.4 (`AddressAllocator`, first-fit AVL without gap
//! augmentation), range-alloc 0.1.5 (`RangeAllocator`, best-fit Vec scan),
//! offset-allocator 0.2.0 (TLSF-like, O(1), no alignment support: it is
//! handed the same sizes but cannot honour alignment, a handicap in its
//! favour).
//!
//! All allocators work in 4 KiB page units. Workloads:
//! * `fill_1page`: fill N one-page ranges from empty, and free every other
//!   one then allocate them again (time per whole fill / refill);
//! * `churn_1page/<live>`: prefill `live` one-page ranges, then each iteration
//!   frees a pseudo-random live range and allocates one page (a map/unmap pair);
//! * `churn_mixed/<live>`: same with sizes from {1,2,4,8,16,32} pages, aligned
//!   to their size (NVMe/RDMA-like);
//! * `fast_path`: the rcache path (`alloc_fast`/`free_fast`) with 1k live;
//! * `two_threads`: 2 threads each doing alloc/free pairs on one shared
//!   allocator: our per-CPU cache vs a global `Mutex`.
//!
//! Ours: `tree` is [`IovaDomain`] (augmented treap, no cache), `fast` is
//! [`CachedIovaDomain`] (magazines in front).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dma_api::Iova;
use dma_iommu::iova::{CachedIovaDomain, IovaDomain, IovaRange};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SPACE_PAGES: u64 = 1 << 24; // 64 GiB of 4 KiB pages
const SIZES: [u64; 6] = [1, 2, 4, 8, 16, 32];

/// One allocator under test, in page units.
trait PageAlloc {
    type H: Copy;
    fn alloc(&mut self, pages: u64) -> Self::H;
    fn free(&mut self, h: Self::H);
}

struct OursTree(IovaDomain);
impl PageAlloc for OursTree {
    type H = IovaRange;
    fn alloc(&mut self, pages: u64) -> IovaRange {
        self.0
            .alloc(pages, Iova::new(SPACE_PAGES * 4096 - 1), true)
            .expect("space")
    }
    fn free(&mut self, h: IovaRange) {
        self.0.free(h.start()).expect("allocated");
    }
}

struct OursFast(CachedIovaDomain);
impl PageAlloc for OursFast {
    type H = IovaRange;
    fn alloc(&mut self, pages: u64) -> IovaRange {
        self.0
            .alloc_fast_on(0, pages, Iova::new(SPACE_PAGES * 4096 - 1), true)
            .expect("space")
    }
    fn free(&mut self, h: IovaRange) {
        self.0.free_fast_on(0, h).expect("allocated");
    }
}

struct VmAlloc(vm_allocator::AddressAllocator);
impl PageAlloc for VmAlloc {
    type H = vm_allocator::RangeInclusive;
    fn alloc(&mut self, pages: u64) -> Self::H {
        self.0
            .allocate(pages, pages, vm_allocator::AllocPolicy::FirstMatch)
            .expect("space")
    }
    fn free(&mut self, h: Self::H) {
        self.0.free(&h).expect("allocated");
    }
}

struct RangeAlloc(range_alloc::RangeAllocator<u64>);
impl PageAlloc for RangeAlloc {
    type H = (u64, u64);
    fn alloc(&mut self, pages: u64) -> (u64, u64) {
        let r = self.0.allocate_range_aligned(pages, pages).expect("space");
        (r.start, r.end)
    }
    fn free(&mut self, h: (u64, u64)) {
        self.0.free_range(h.0..h.1);
    }
}

struct OffsetAlloc(offset_allocator::Allocator<u32>);
impl PageAlloc for OffsetAlloc {
    type H = offset_allocator::Allocation<u32>;
    fn alloc(&mut self, pages: u64) -> Self::H {
        self.0.allocate(pages as u32).expect("space")
    }
    fn free(&mut self, h: Self::H) {
        self.0.free(h);
    }
}

fn ours_tree() -> OursTree {
    OursTree(IovaDomain::new(4096, Iova::ZERO).unwrap())
}
fn ours_fast() -> OursFast {
    OursFast(CachedIovaDomain::new(
        IovaDomain::new(4096, Iova::ZERO).unwrap(),
        1,
    ))
}
fn vm() -> VmAlloc {
    // Base 0x1000: vm-allocator 0.1.4 cannot free a range starting at 1
    // (`start - 2` underflows in its merge step).
    VmAlloc(vm_allocator::AddressAllocator::new(0x1000, SPACE_PAGES - 0x1000).unwrap())
}
fn ra() -> RangeAlloc {
    RangeAlloc(range_alloc::RangeAllocator::new(1..SPACE_PAGES))
}
fn oa(live: usize) -> OffsetAlloc {
    OffsetAlloc(offset_allocator::Allocator::with_max_allocs(
        SPACE_PAGES as u32,
        (live as u32 + 1024).max(4096),
    ))
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Prefills `live` ranges, then measures free-random + alloc pairs.
fn churn<A: PageAlloc>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    live: usize,
    mixed: bool,
    mut a: A,
) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let size = |rng: &mut Rng| {
        if mixed {
            SIZES[(rng.next() % 6) as usize]
        } else {
            1
        }
    };
    let mut handles: Vec<A::H> = (0..live).map(|_| a.alloc(size(&mut rng))).collect();
    // Punch random holes so the space is fragmented before measuring.
    for _ in 0..live {
        let i = (rng.next() % live as u64) as usize;
        a.free(handles[i]);
        handles[i] = a.alloc(size(&mut rng));
    }
    c.bench_function(BenchmarkId::new(name, live), |b| {
        b.iter(|| {
            let i = (rng.next() % live as u64) as usize;
            a.free(handles[i]);
            handles[i] = black_box(a.alloc(size(&mut rng)));
        })
    });
}

/// §6 (a) and (b): fill `n` one-page ranges into an empty allocator, and
/// free every other one then allocate them again (fragmented refill).
/// Reported time is per whole fill / refill; divide by n (or n/2).
fn fill_and_refill<A: PageAlloc>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    make: impl Fn() -> A,
) {
    // Checked once before timing: the fill and the refill succeed (the
    // allocators panic on failure) and hand out distinct ranges.
    {
        let mut a = make();
        let hs: Vec<A::H> = (0..n).map(|_| a.alloc(1)).collect();
        for h in hs.iter().step_by(2) {
            a.free(*h);
        }
        for _ in (0..n).step_by(2) {
            black_box(a.alloc(1));
        }
    }
    g.bench_function(BenchmarkId::new(format!("fill/{name}"), n), |b| {
        b.iter_batched(
            &make,
            |mut a| {
                for _ in 0..n {
                    black_box(a.alloc(1));
                }
                a
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new(format!("refill_holes/{name}"), n), |b| {
        b.iter_batched(
            || {
                let mut a = make();
                let hs: Vec<A::H> = (0..n).map(|_| a.alloc(1)).collect();
                for h in hs.iter().step_by(2) {
                    a.free(*h);
                }
                (a, hs)
            },
            |(mut a, hs)| {
                for _ in (0..n).step_by(2) {
                    black_box(a.alloc(1));
                }
                (a, hs)
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

fn fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("fill_1page");
    g.sample_size(10);
    for n in [1_000usize, 10_000, 64_000] {
        fill_and_refill(&mut g, "ours_tree", n, ours_tree);
        fill_and_refill(&mut g, "offset-allocator", n, || oa(n));
        fill_and_refill(&mut g, "range-alloc", n, ra);
        if n <= 10_000 {
            fill_and_refill(&mut g, "vm-allocator", n, vm);
        }
    }
    g.finish();
}

fn churn_1page(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn_1page");
    g.sample_size(10);
    for live in [1_000usize, 10_000, 100_000] {
        churn(&mut g, "ours_tree", live, false, ours_tree());
        churn(&mut g, "ours_fast", live, false, ours_fast());
        churn(&mut g, "offset-allocator", live, false, oa(live));
        churn(&mut g, "range-alloc", live, false, ra());
        if live <= 10_000 {
            // O(n) per allocation: 100k live would take minutes to fill.
            churn(&mut g, "vm-allocator", live, false, vm());
        }
    }
    g.finish();
}

fn churn_mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn_mixed");
    g.sample_size(10);
    for live in [1_000usize, 100_000] {
        churn(&mut g, "ours_tree", live, true, ours_tree());
        churn(&mut g, "ours_fast", live, true, ours_fast());
        churn(&mut g, "offset-allocator(no-align)", live, true, oa(live));
        churn(&mut g, "range-alloc", live, true, ra());
        if live <= 10_000 {
            churn(&mut g, "vm-allocator", live, true, vm());
        }
    }
    g.finish();
}

/// The rcache fast path alone: with 1k live ranges, an alloc+free pair of the
/// same size on a warm cache, against offset-allocator's alloc+free pair.
fn fast_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("fast_path");
    g.sample_size(20);
    let live = 1_000;
    let mut f = ours_fast();
    let held: Vec<_> = (0..live).map(|_| f.alloc(1)).collect();
    black_box(&held);
    let warm = f.alloc(1);
    f.free(warm);
    g.bench_function("ours_fast alloc+free 1p", |b| {
        b.iter(|| {
            let r = f.alloc(black_box(1));
            f.free(black_box(r));
        })
    });
    let mut o = oa(live);
    let held: Vec<_> = (0..live).map(|_| o.alloc(1)).collect();
    black_box(&held);
    g.bench_function("offset-allocator alloc+free 1p", |b| {
        b.iter(|| {
            let r = o.alloc(black_box(1));
            o.free(black_box(r));
        })
    });
    let mut t = ours_tree();
    let held: Vec<_> = (0..live).map(|_| t.alloc(1)).collect();
    black_box(&held);
    g.bench_function("ours_tree alloc+free 1p", |b| {
        b.iter(|| {
            let r = t.alloc(black_box(1));
            t.free(black_box(r));
        })
    });
    g.finish();
}

/// Runs `iters` alloc/free pairs of mixed sizes on each of 2 threads and
/// returns the wall time.
fn two_threads_run(iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            let work = &work;
            s.spawn(move || work(t, iters));
        }
    });
    start.elapsed()
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_threads");
    g.sample_size(10);
    let limit = Iova::new(SPACE_PAGES * 4096 - 1);
    let ours = Arc::new(CachedIovaDomain::new(
        IovaDomain::new(4096, Iova::ZERO).unwrap(),
        2,
    ));
    // Checked once before timing: both threads' pairs succeed and everything
    // they allocated is free again (cached or in the tree).
    two_threads_run(1000, |t, n| {
        for i in 0..n {
            let pages = SIZES[((i as usize) + t) % 6];
            let r = ours.alloc_fast_on(t, pages, limit, true).expect("alloc");
            assert!(r.last() <= limit && r.pages() >= pages);
            ours.free_fast_on(t, r).expect("free");
        }
    });
    assert_eq!(
        ours.with_domain(|d| d.allocated_count()) as u64,
        ours.stats().cached
    );
    g.bench_function("ours_fast per-cpu", |b| {
        b.iter_custom(|iters| {
            two_threads_run(iters, |t, n| {
                let mut held = Vec::with_capacity(16);
                for i in 0..n {
                    let pages = SIZES[((i as usize) + t) % 6];
                    held.push(ours.alloc_fast_on(t, pages, limit, true).unwrap());
                    if held.len() == 16 {
                        for r in held.drain(..) {
                            ours.free_fast_on(t, r).unwrap();
                        }
                    }
                }
                for r in held.drain(..) {
                    ours.free_fast_on(t, r).unwrap();
                }
            })
        })
    });
    let tree = Mutex::new(IovaDomain::new(4096, Iova::ZERO).unwrap());
    g.bench_function("ours_tree global mutex", |b| {
        b.iter_custom(|iters| {
            two_threads_run(iters, |t, n| {
                let mut held = Vec::with_capacity(16);
                for i in 0..n {
                    let pages = SIZES[((i as usize) + t) % 6];
                    held.push(tree.lock().unwrap().alloc(pages, limit, true).unwrap());
                    if held.len() == 16 {
                        for r in held.drain(..) {
                            tree.lock().unwrap().free(r.start()).unwrap();
                        }
                    }
                }
                for r in held.drain(..) {
                    tree.lock().unwrap().free(r.start()).unwrap();
                }
            })
        })
    });
    let off = Mutex::new(oa(4096).0);
    g.bench_function("offset-allocator global mutex", |b| {
        b.iter_custom(|iters| {
            two_threads_run(iters, |t, n| {
                let mut held = Vec::with_capacity(16);
                for i in 0..n {
                    let pages = SIZES[((i as usize) + t) % 6] as u32;
                    held.push(off.lock().unwrap().allocate(pages).unwrap());
                    if held.len() == 16 {
                        for r in held.drain(..) {
                            off.lock().unwrap().free(r);
                        }
                    }
                }
                for r in held.drain(..) {
                    off.lock().unwrap().free(r);
                }
            })
        })
    });
    g.finish();
}

/// IOVA space fragmentation after a long mixed churn: 20k live ranges of
/// {1..32} pages in a 4 GiB space (the 32-bit DMA window), 2M free+alloc
/// pairs, then the largest free extent against the total free space, for our
/// tree, our cached domain (cached ranges count as allocated) and
/// offset-allocator (whose largest region is rounded to its size bins).
/// Printed, not timed; the timed part is one more churn pair on the result.
fn fragmentation(c: &mut Criterion) {
    const PAGES: u64 = 1 << 20;
    const LIVE: usize = 20_000;
    const OPS: usize = 2_000_000;
    let limit = Iova::new(PAGES * 4096 - 1);
    // The same pseudo-random sequence of sizes and victims for each.
    let sizes = |rng: &mut Rng| SIZES[(rng.next() % 6) as usize];
    let mut tree = IovaDomain::new(4096, Iova::ZERO).unwrap();
    {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut held: Vec<IovaRange> = (0..LIVE)
            .map(|_| tree.alloc(sizes(&mut rng), limit, true).expect("space"))
            .collect();
        for _ in 0..OPS {
            let i = (rng.next() % LIVE as u64) as usize;
            tree.free(held[i].start()).expect("allocated");
            held[i] = tree.alloc(sizes(&mut rng), limit, true).expect("space");
        }
    }
    let t = tree.free_space(limit);
    let fast = CachedIovaDomain::new(IovaDomain::new(4096, Iova::ZERO).unwrap(), 1);
    {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut held: Vec<IovaRange> = (0..LIVE)
            .map(|_| {
                fast.alloc_fast_on(0, sizes(&mut rng), limit, true)
                    .expect("space")
            })
            .collect();
        for _ in 0..OPS {
            let i = (rng.next() % LIVE as u64) as usize;
            fast.free_fast_on(0, held[i]).expect("allocated");
            held[i] = fast
                .alloc_fast_on(0, sizes(&mut rng), limit, true)
                .expect("space");
        }
    }
    let f = fast.with_domain(|d| d.free_space(limit));
    let mut off = offset_allocator::Allocator::<u32>::with_max_allocs(PAGES as u32, 65_536);
    {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut held: Vec<offset_allocator::Allocation<u32>> = (0..LIVE)
            .map(|_| off.allocate(sizes(&mut rng) as u32).expect("space"))
            .collect();
        for _ in 0..OPS {
            let i = (rng.next() % LIVE as u64) as usize;
            off.free(held[i]);
            held[i] = off.allocate(sizes(&mut rng) as u32).expect("space");
        }
    }
    let o = off.storage_report();
    let pm = |largest: u64, total: u64| (largest * 1000).checked_div(total).unwrap_or(1000);
    eprintln!(
        "fragmentation after {OPS} mixed churn pairs, {LIVE} live, 4 GiB space \
         (largest free / total free, pages): ours_tree {}/{} = {}.{}% in {} extents; \
         ours_fast {}/{} = {}.{}% in {} extents; offset-allocator {}/{} = {}.{}%",
        t.largest,
        t.total,
        t.largest_permille() / 10,
        t.largest_permille() % 10,
        t.extents,
        f.largest,
        f.total,
        f.largest_permille() / 10,
        f.largest_permille() % 10,
        f.extents,
        o.largest_free_region,
        o.total_free_space,
        pm(
            u64::from(o.largest_free_region),
            u64::from(o.total_free_space)
        ) / 10,
        pm(
            u64::from(o.largest_free_region),
            u64::from(o.total_free_space)
        ) % 10,
    );
    assert!(t.total > 0 && f.total > 0 && o.total_free_space > 0);
    let mut g = c.benchmark_group("fragmented");
    g.sample_size(10);
    g.bench_function("ours_tree alloc+free 8p", |b| {
        b.iter(|| {
            let r = tree.alloc(8, limit, true).expect("space");
            tree.free(black_box(r).start()).expect("allocated");
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    fill,
    churn_1page,
    churn_mixed,
    fast_path,
    two_threads,
    fragmentation
);
criterion_main!(benches);
