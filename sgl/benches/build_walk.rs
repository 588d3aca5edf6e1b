//! Build a table from 1 Mi pfns (random contiguous runs of 1..=64 pages, fixed
//! seed) and walk it (sum of lengths), against a plain copy of the pfn array.
//! Target: build + walk within 1.5x of the copy, best and median. Besides
//! criterion's report, a best / median of 30 summary prints ns/page for each
//! and the ratios.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scatterlist::{PageSource, Pfn, SgTable, PAGE_SIZE};
use std::time::Instant;

const PAGES: usize = 1 << 20;

fn pfns() -> Vec<Pfn> {
    let mut rng = SmallRng::seed_from_u64(0x5eed_5c47);
    let mut v = Vec::with_capacity(PAGES);
    let mut next = 0x10_0000u64;
    while v.len() < PAGES {
        let run = rng.gen_range(1..=64u64);
        // Jump so runs never touch: every run is its own entry.
        next += rng.gen_range(2..1 << 16);
        for p in next..next + run {
            if v.len() == PAGES {
                break;
            }
            v.push(Pfn::new(p));
        }
        next += run;
    }
    v
}

/// Builds and walks the table. The input is valid by construction and
/// checked once before timing, so a failure is a broken bench, never a timed
/// error path.
fn build_walk(pfns: &[Pfn]) -> u64 {
    let size = pfns.len() as u64 * PAGE_SIZE;
    SgTable::from_pages(pfns, 0, size, u64::MAX)
        .expect("bench input builds a table")
        .iter()
        .map(|e| u64::from(e.len()))
        .sum()
}

/// (best, median) ns/page over `rounds` runs. Best is the figure to compare on
/// a shared machine: preemption only ever adds time.
fn ns_per_page(mut f: impl FnMut(), rounds: usize) -> (f64, f64) {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / PAGES as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (
        v.first().copied().unwrap_or(0.0),
        v.get(rounds / 2).copied().unwrap_or(0.0),
    )
}

fn bench(c: &mut Criterion) {
    let src = pfns();
    let size = src.len() as u64 * PAGE_SIZE;
    // Checked once before timing: the table builds, covers every byte, and
    // has one entry per run (runs never touch by construction).
    let table = SgTable::from_pages(&src, 0, size, u64::MAX).expect("bench input builds a table");
    let entries = table.orig_nents();
    let mut runs = Vec::with_capacity(PAGES / 16);
    src[..].run_starts(0, PAGES, |i, p| runs.push((i, p)));
    assert_eq!(entries, runs.len(), "one entry per run");
    assert_eq!(table.total_len(), size);
    assert_eq!(build_walk(&src), size);
    let mut g = c.benchmark_group("sgl_1m_pages");
    g.throughput(Throughput::Elements(PAGES as u64));
    g.bench_function("copy_vec_clone", |b| b.iter(|| black_box(src.clone())));
    let mut dst = vec![Pfn::new(0); PAGES];
    g.bench_function("copy_from_slice", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        })
    });
    g.bench_function("build_and_walk", |b| {
        b.iter(|| black_box(build_walk(black_box(&src))))
    });
    g.finish();

    // Summary: best of 30 rounds each.
    let clone = ns_per_page(|| drop(black_box(src.clone())), 30);
    let copy = ns_per_page(
        || {
            dst.copy_from_slice(black_box(&src));
            black_box(&dst);
        },
        30,
    );
    let build = ns_per_page(
        || {
            black_box(build_walk(black_box(&src)));
        },
        30,
    );
    let scan = ns_per_page(
        || {
            runs.clear();
            black_box(&src[..]).run_starts(0, PAGES, |i, p| runs.push((i, p)));
            black_box(&runs);
        },
        30,
    );
    let walk = ns_per_page(
        || {
            black_box(black_box(&table).total_len());
        },
        30,
    );
    // The break-mask kernel the build picks on this CPU (RFC 5.1).
    let kernel = if cfg!(not(target_arch = "x86_64")) {
        "portable"
    } else if avx2() {
        "AVX2"
    } else {
        "SSE2"
    };
    println!(
        "\nsgl build+walk summary (best / median of 30): {PAGES} pages -> {entries} entries, \
         {kernel} kernel\n  \
         copy (Vec clone)       {:.3} / {:.3} ns/page\n  \
         copy (copy_from_slice) {:.3} / {:.3} ns/page\n  \
         build + walk           {:.3} / {:.3} ns/page\n  \
         (of which run scan {:.3}, walk {:.3})\n  \
         ratio (best / median) build/clone {:.2}x / {:.2}x, \
         build/copy_from_slice {:.2}x / {:.2}x (target <= 1.5x)",
        clone.0,
        clone.1,
        copy.0,
        copy.1,
        build.0,
        build.1,
        scan.0,
        walk.0,
        build.0 / clone.0,
        build.1 / clone.1,
        build.0 / copy.0,
        build.1 / copy.1
    );
}

/// Whether the build's scan runs its AVX2 kernel here (it checks the same).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
