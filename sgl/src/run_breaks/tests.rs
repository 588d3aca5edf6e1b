//! Every kernel against the definition, block by block and table by table.

use super::block_scan::{scan_blocks, superblock};
use super::*;
use crate::append::SgAppendTable;
use crate::error::SgError;
use crate::kind::SegKind;
use crate::pages::PageSource;
use crate::table::SgTable;
use crate::PAGE_SIZE;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The definition, pair by pair.
#[cfg(target_arch = "x86_64")]
fn naive(w: &Window) -> u64 {
    let mut m = 0;
    for k in 0..BLOCK {
        if w[k + 1].raw() != w[k].raw().wrapping_add(1) {
            m |= 1 << k;
        }
    }
    m
}

/// Differences that a narrowing compare could confuse with 1: every
/// value whose low half is 1 but whose high half is not 0, halves that
/// saturate to 1 or 0 only if exact (1 + 2^8, 1 + 2^16, ...), and the
/// wrap from `u64::MAX` to 0 (which continues, as Linux's `+ 1` does).
const TRICKY: [u64; 16] = [
    1,
    0,
    2,
    u64::MAX,
    1 | 1 << 8,
    1 | 1 << 16,
    1 | 1 << 31,
    1 | 1 << 32,
    1 | 1 << 40,
    1 | 1 << 48,
    1 | 1 << 63,
    0xffff_ffff_0000_0001,
    0x0000_0001_0000_0000,
    0xffff_ffff,
    0x7fff,
    0x8001,
];

/// Pages whose neighbour differences are drawn from `TRICKY`, from
/// random values, or are 1 with probability `cont`.
fn tricky_pages(rng: &mut SmallRng, n: usize, start: u64, cont: f64) -> Vec<Pfn> {
    let mut p = start;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(Pfn::new(p));
        let d = if rng.gen_bool(cont) {
            1
        } else if rng.gen_bool(0.5) {
            TRICKY[rng.gen_range(0..TRICKY.len())]
        } else {
            rng.gen()
        };
        p = p.wrapping_add(d);
    }
    v
}

#[cfg(target_arch = "x86_64")]
fn window(v: &[Pfn]) -> &Window {
    <&Window>::try_from(v).unwrap()
}

/// A block kernel.
type KernelFn = fn(&Window) -> u64;

/// A table or why it was refused.
type Built = Result<SgTable, SgError>;

/// Every block kernel this build and CPU can run, by name: the baseline
/// (SSE2 on x86_64) and AVX2 where the CPU has it (the build's scan uses it
/// then). A target without a vector kernel has none: its portable scan is
/// held to the page-by-page scan below.
fn kernels() -> Vec<(&'static str, KernelFn)> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let k: Vec<(&'static str, KernelFn)> = vec![("baseline", breaks)];
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let k: Vec<(&'static str, KernelFn)> = Vec::new();
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let k = {
        let mut k = k;
        if avx2::breaks_if_available(&[Pfn::new(0); BLOCK + 1]).is_some() {
            k.push(("avx2", |w| avx2::breaks_if_available(w).unwrap_or(0)));
        }
        k
    };
    k
}

/// x86_64 only: other targets have no block kernel.
#[cfg(target_arch = "x86_64")]
#[test]
fn kernels_agree_with_the_definition_on_every_block() {
    let kernels = kernels();
    let mut rng = SmallRng::seed_from_u64(0x5ca7_7e25);
    for round in 0..20_000 {
        let cont = [0.0, 0.5, 0.9, 0.98, 1.0][round % 5];
        let start = match round % 4 {
            0 => rng.gen(),
            1 => u64::MAX - rng.gen_range(0..80),
            2 => rng.gen_range(0..80),
            _ => rng.gen_range(0..1 << 40),
        };
        let v = tricky_pages(&mut rng, BLOCK + 1, start, cont);
        let w = window(&v);
        let want = naive(w);
        for (name, k) in &kernels {
            assert_eq!(k(w), want, "{name} kernel, pages {v:?}");
        }
    }
    // All continuing, all breaking, and one break at each position.
    let run: Vec<Pfn> = (0..=BLOCK as u64)
        .map(|i| Pfn::new((u64::MAX - 30).wrapping_add(i)))
        .collect();
    let same = vec![Pfn::new(7); BLOCK + 1];
    for (name, k) in &kernels {
        assert_eq!(k(window(&run)), 0, "{name}: a run across the wrap");
        assert_eq!(k(window(&same)), u64::MAX, "{name}: all breaking");
    }
    for k in 0..BLOCK {
        for d in TRICKY.iter().filter(|&&d| d != 1) {
            let mut v = run.clone();
            for p in &mut v[k + 1..] {
                *p = Pfn::new(p.raw().wrapping_add(d.wrapping_sub(1)));
            }
            let w = window(&v);
            for (name, kernel) in &kernels {
                assert_eq!(kernel(w), 1 << k, "{name}: break {d:#x} at pair {k}");
            }
        }
    }
}

/// How a [`Scanned`] source finds its run starts.
#[derive(Clone, Copy)]
enum Scan {
    /// A block kernel, flattened with a population count or not.
    Block(KernelFn, bool),
    /// The portable scan.
    Portable,
}

/// RAM pages scanned one given way (the build's `[Pfn]` scan picks its own).
struct Scanned<'a>(&'a [Pfn], Scan);

impl PageSource for Scanned<'_> {
    fn page_count(&self) -> usize {
        self.0.len()
    }
    fn pfn(&self, i: usize) -> Pfn {
        self.0.pfn(i)
    }
    fn kind(&self, _i: usize) -> SegKind {
        SegKind::Ram
    }
    fn run_starts<F: FnMut(usize, Pfn)>(&self, from: usize, to: usize, sink: F) {
        match self.1 {
            Scan::Block(k, true) => scan_blocks(
                self.0,
                from,
                to,
                |p, at, s| superblock::<true>(p, at, k, s),
                sink,
            ),
            Scan::Block(k, false) => scan_blocks(
                self.0,
                from,
                to,
                |p, at, s| superblock::<false>(p, at, k, s),
                sink,
            ),
            Scan::Portable => portable::scan(self.0, from, to, sink),
        }
    }
}

/// Every scan to compare, by name: each kernel with both flattenings, and
/// the portable scan.
fn scans(kernels: &[(&'static str, KernelFn)]) -> Vec<(String, Scan)> {
    let mut v: Vec<(String, Scan)> = kernels
        .iter()
        .flat_map(|&(name, k)| {
            [false, true].map(|p| (format!("{name} popcnt {p}"), Scan::Block(k, p)))
        })
        .collect();
    v.push(("portable scan".into(), Scan::Portable));
    v
}

fn starts(src: &(impl PageSource + ?Sized), from: usize, to: usize) -> Vec<(usize, Pfn)> {
    let mut v = vec![];
    src.run_starts(from, to, |i, p| v.push((i, p)));
    v
}

/// One table built by the generic page-by-page scan (pages given with their
/// kinds), then by the build's scan and by each kernel and flattening, by
/// name.
fn tables(pfns: &[Pfn], ms: u64) -> (Built, Vec<(String, Built)>) {
    let size = pfns.len() as u64 * PAGE_SIZE;
    let kinds: Vec<(Pfn, SegKind)> = pfns.iter().map(|&p| (p, SegKind::Ram)).collect();
    let mut built = vec![("build".into(), SgTable::from_pages(pfns, 0, size, ms))];
    for (name, scan) in scans(&kernels()) {
        let mut t = SgAppendTable::new();
        let r = t.append_from(&Scanned(pfns, scan), 0, size, ms, 0);
        built.push((name, r.map(|()| t.into_table())));
    }
    (SgTable::from_pages_kinds(&kinds, 0, size, ms), built)
}

#[test]
fn scans_and_tables_agree_across_kernels() {
    let scans = scans(&kernels());
    let mut rng = SmallRng::seed_from_u64(0x007a_b1e5);
    let kinds_of =
        |v: &[Pfn]| -> Vec<(Pfn, SegKind)> { v.iter().map(|&p| (p, SegKind::Ram)).collect() };
    // Lengths around the group (8), block (64) and superblock (512)
    // sizes, plus empty and one page.
    let lens = [
        0usize, 1, 2, 7, 8, 9, 63, 64, 65, 66, 129, 511, 512, 513, 514, 1100, 4099,
    ];
    for round in 0..600 {
        let n = lens[round % lens.len()];
        let cont = [0.0, 0.7, 0.97, 1.0][round % 4];
        let start = match round % 3 {
            0 => rng.gen_range(0..1 << 30),
            1 => u64::MAX - rng.gen_range(0..2 * n as u64 + 1),
            _ => rng.gen(),
        };
        let v = tricky_pages(&mut rng, n, start, cont);
        let k = kinds_of(&v);
        for (from, to) in [(0, n), (1.min(n), n), (n / 3, n - n / 5)] {
            let want = starts(&k[..], from, to);
            assert_eq!(
                starts(&v[..], from, to),
                want,
                "build scan {from}..{to} of {n}"
            );
            for (name, scan) in &scans {
                assert_eq!(
                    starts(&Scanned(&v, *scan), from, to),
                    want,
                    "{name}: {from}..{to} of {n}"
                );
            }
        }
        if n == 0 {
            continue;
        }
        for ms in [u64::MAX, 3 * PAGE_SIZE, PAGE_SIZE] {
            let (generic, built) = tables(&v, ms);
            for (name, t) in built {
                assert_eq!(t, generic, "{name}: {n} pages, cont {cont}, ms {ms:#x}");
            }
        }
    }
    // Very long runs (one entry up to max_segment, one across a
    // superblock edge) and runs of one page each.
    let long: Vec<Pfn> = (0..20_000u64).map(|i| Pfn::new(0x10_0000 + i)).collect();
    let ones: Vec<Pfn> = (0..3000u64).map(|i| Pfn::new(3 * i)).collect();
    let mut two = long.clone();
    two[10_000..]
        .iter_mut()
        .for_each(|p| *p = Pfn::new(p.raw() + 9));
    for v in [&long, &ones, &two] {
        for ms in [u64::MAX, 64 * PAGE_SIZE] {
            let (generic, built) = tables(v, ms);
            assert!(generic.is_ok());
            for (name, t) in built {
                assert_eq!(t, generic, "{name}");
            }
        }
    }
    assert_eq!(tables(&long, u64::MAX).0.unwrap().orig_nents(), 1);
    assert_eq!(tables(&ones, u64::MAX).0.unwrap().orig_nents(), 3000);
}
