//! The kernel's IOVA rules, one case each (drivers/iommu/iova.c,
//! drivers/iommu/dma-iommu.c).

use dma_api::{AddrWindow, BusAddr, DmaError, ErrorKind, Iova, PhysAddr, WindowMap};
use dma_iommu::iova::{
    CachedIovaDomain, DeviceIovaPolicy, IovaDomain, IovaRange, IOVA_32BIT_LIMIT, IOVA_MAG_SIZE,
    X86_MSI_WINDOW_FIRST, X86_MSI_WINDOW_LAST,
};

const G: u64 = 4096;

fn dom() -> IovaDomain {
    IovaDomain::new(G, Iova::ZERO).unwrap()
}

fn pages_limit(pages: u64) -> Iova {
    Iova::new(pages * G - 1)
}

#[test]
fn allocates_top_down_below_the_limit() {
    let mut d = dom();
    let lim = Iova::new(0xffff_ffff);
    let a = d.alloc(1, lim, false).unwrap();
    let b = d.alloc(1, lim, false).unwrap();
    let c = d.alloc(3, lim, false).unwrap();
    assert_eq!(a.start(), Iova::new(0xffff_f000));
    assert_eq!(b.start(), Iova::new(0xffff_e000));
    assert_eq!(c.start(), Iova::new(0xffff_b000));
    assert_eq!(c.last(), Iova::new(0xffff_dfff));
    // A lower limit is respected exactly.
    let e = d.alloc(2, Iova::new(0x1234_5fff), false).unwrap();
    assert_eq!(e.start(), Iova::new(0x1234_4000));
    assert_eq!(e.last(), Iova::new(0x1234_5fff));
    // A limit that does not end a granule: the range must end below it.
    let f = d.alloc(1, Iova::new(0x2000_07ff), false).unwrap();
    assert_eq!(f.last(), Iova::new(0x1fff_ffff));
}

#[test]
fn size_aligned_to_next_power_of_two_and_padding_is_reused() {
    let mut d = dom();
    let lim = pages_limit(64);
    assert_eq!(d.alloc(1, lim, true).unwrap().pfn_lo(), 63);
    // 3 pages aligned to 4: highest 4-aligned start with 3 pages below 63 is 60.
    let r = d.alloc(3, lim, true).unwrap();
    assert_eq!((r.pfn_lo(), r.pages()), (60, 3));
    let r = d.alloc(5, lim, true).unwrap();
    assert_eq!(r.pfn_lo(), 48); // 8-aligned, [48, 52], padding [53, 59] left free
                                // The highest fit for one page is now in the padding above: 59.
    assert_eq!(d.alloc(1, lim, true).unwrap().pfn_lo(), 59);
    assert_eq!(d.alloc(4, lim, true).unwrap().pfn_lo(), 44);
    // Unaligned request takes the padding [53, 58] from the top.
    assert_eq!(d.alloc(2, lim, false).unwrap().pfn_lo(), 57);
    d.check_invariants().unwrap();
}

#[test]
fn iova_zero_is_never_returned() {
    let mut d = dom();
    assert_eq!(d.start(), Iova::new(G));
    let lim = pages_limit(4);
    let got: Vec<u64> = (0..3)
        .map(|_| d.alloc(1, lim, false).unwrap().pfn_lo())
        .collect();
    assert_eq!(got, [3, 2, 1]);
    assert_eq!(
        d.alloc(1, lim, false),
        Err(DmaError::IovaExhausted {
            pages: 1,
            limit: lim
        })
    );
    // A base inside the space moves the start up.
    let mut d = IovaDomain::new(G, Iova::new(0x10_0000)).unwrap();
    assert_eq!(d.start(), Iova::new(0x10_0000));
    assert!(d.alloc(1, Iova::new(0xf_ffff), false).is_err());
    assert_eq!(
        d.alloc(1, Iova::new(0x10_0fff), false).unwrap().start(),
        Iova::new(0x10_0000)
    );
}

#[test]
fn reserved_ranges_are_never_given() {
    let mut d = dom();
    d.reserve_x86_msi_window().unwrap();
    assert!(d.is_reserved(X86_MSI_WINDOW_FIRST) && d.is_reserved(X86_MSI_WINDOW_LAST));
    assert!(!d.is_reserved(Iova::new(0xfef0_0000)));
    let r = d.alloc(1, X86_MSI_WINDOW_LAST, false).unwrap();
    assert_eq!(r.start(), Iova::new(0xfedf_f000));
    // Above the window the space is usable.
    let r = d.alloc(1, Iova::new(0xffff_ffff), false).unwrap();
    assert_eq!(r.start(), Iova::new(0xffff_f000));
    // A reserved range cannot be freed.
    assert_eq!(
        d.free(X86_MSI_WINDOW_FIRST),
        Err(DmaError::IovaNotAllocated {
            iova: X86_MSI_WINDOW_FIRST
        })
    );
    // A reservation over an allocation keeps the allocation, and freeing it
    // does not release the reserved part.
    let a = d.alloc(4, pages_limit(100), false).unwrap();
    d.reserve(a.start(), Iova::new(a.start().raw() + G - 1))
        .unwrap();
    assert_eq!(d.find(a.start()), Some(a));
    d.free(a.start()).unwrap();
    assert!(!d.is_free(a.start()));
    assert!(d.is_free(Iova::new(a.start().raw() + G)));
    d.check_invariants().unwrap();
    assert_eq!(
        d.reserve(Iova::new(2 * G), Iova::new(G)),
        Err(DmaError::IovaBadRange {
            first: Iova::new(2 * G),
            last: Iova::new(G)
        })
    );
}

#[test]
fn host_bridge_windows_and_dma_range_gaps() {
    let mut d = dom();
    // Host bridge MMIO: CPU 0x4000_0000 appears on the bus at 0xc000_0000.
    let bridge = WindowMap::new([AddrWindow {
        cpu_start: PhysAddr::new(0x4000_0000),
        bus_start: BusAddr::new(0xc000_0000),
        size: 0x1000_0000,
    }])
    .unwrap();
    d.reserve_bus_windows(&bridge).unwrap();
    // Inbound dma-ranges: bus [0x8000_0000, 0x1_0000_0000) and [0x10_0000_0000, +4G).
    let dma = WindowMap::new([
        AddrWindow {
            cpu_start: PhysAddr::new(0x8000_0000),
            bus_start: BusAddr::new(0x8000_0000),
            size: 0x8000_0000,
        },
        AddrWindow {
            cpu_start: PhysAddr::new(0x10_0000_0000),
            bus_start: BusAddr::new(0x10_0000_0000),
            size: 0x1_0000_0000,
        },
    ])
    .unwrap();
    d.reserve_dma_ranges_gaps(&dma).unwrap();
    let got = d.reserved_ranges();
    assert_eq!(
        got,
        [
            // Gap below the first window, up to and including its first granule (Linux).
            (Iova::new(0), Iova::new(0x8000_0fff)),
            (Iova::new(0xc000_0000), Iova::new(0xcfff_ffff)),
            (Iova::new(0x1_0000_0000), Iova::new(0x10_0000_0fff)),
            (Iova::new(0x11_0000_0000), Iova::MAX),
        ]
    );
    // Allocations land only in the usable windows, minus the bridge window.
    let r = d.alloc(1, Iova::MAX, false).unwrap();
    assert_eq!(r.start(), Iova::new(0x10_ffff_f000));
    let r = d.alloc(1, Iova::new(0xffff_ffff), false).unwrap();
    assert_eq!(r.start(), Iova::new(0xffff_f000));
    let r = d.alloc(1, Iova::new(0xcfff_ffff), false).unwrap();
    assert_eq!(r.start(), Iova::new(0xbfff_f000));
    d.check_invariants().unwrap();
}

#[test]
fn failing_size_memo_fails_fast_until_a_free_below_4g() {
    let mut d = dom();
    let lim32 = Iova::new(0xffff_ffff);
    // Leave exactly 8 free pages below 4 GiB: [16, 24).
    d.reserve(Iova::new(24 * G), lim32).unwrap();
    d.reserve(Iova::new(0), Iova::new(16 * G - 1)).unwrap();
    assert_eq!(d.max32_alloc_size(), 1 << 20);
    assert!(d.alloc(16, lim32, false).is_err());
    assert_eq!(d.max32_alloc_size(), 16);
    let a = d.alloc(4, lim32, true).unwrap();
    assert_eq!(a.pfn_lo(), 20);
    // 16 or more pages now fail without a search; fewer still search.
    assert!(d.alloc(20, lim32, false).is_err());
    assert_eq!(d.max32_alloc_size(), 16);
    assert!(d.alloc(5, lim32, false).is_err());
    assert_eq!(d.max32_alloc_size(), 5);
    // A failure under a limit below 4 GiB proves nothing about the rest of
    // the 32-bit space, so it does not lower the memo (Linux would).
    assert!(d.alloc(4, pages_limit(18), false).is_err());
    assert_eq!(d.max32_alloc_size(), 5);
    // Freeing below 4 GiB resets the memo.
    d.free(a.start()).unwrap();
    assert_eq!(d.max32_alloc_size(), 1 << 20);
    assert_eq!(d.alloc(8, lim32, false).unwrap().pfn_lo(), 16);
}

/// Bug: the memo was keyed by size only, so a failed *size-aligned* search
/// refused a later *unaligned* request of the same size that fits, under the
/// same limit and across the 64-bit / 32-bit limits.
#[test]
fn failing_size_memo_never_refuses_an_unaligned_fit() {
    let lim32 = Iova::new(0xffff_ffff);
    let lim64 = Iova::new(u64::MAX);
    // Free frames [9, 14] and nothing else anywhere.
    let only_9_to_14 = || {
        let mut d = dom();
        d.reserve(Iova::new(0), Iova::new(9 * G - 1)).unwrap();
        d.reserve(Iova::new(15 * G), lim64).unwrap();
        d
    };

    // Same limit: aligned 5 needs a multiple of 8 and fails; unaligned 5 fits
    // at [10, 14].
    let mut d = only_9_to_14();
    assert!(d.alloc(5, lim32, true).is_err());
    assert_eq!(d.alloc(5, lim32, false).map(|r| r.pfn_lo()), Ok(10));
    d.check_invariants().unwrap();

    // A 64-bit failure covers the 32-bit space too: still only for aligned.
    let mut d = only_9_to_14();
    assert!(d.alloc(5, lim64, true).is_err());
    assert_eq!(d.alloc(5, lim32, false).map(|r| r.pfn_lo()), Ok(10));

    // Other sizes: aligned 4 fails ([8, 11] and [12, 15] are not free), yet
    // unaligned 4 and 6 fit.
    let mut d = only_9_to_14();
    assert!(d.alloc(4, lim32, true).is_err());
    assert_eq!(d.alloc(4, lim32, false).map(|r| r.pfn_lo()), Ok(11));
    let mut d = only_9_to_14();
    assert!(d.alloc(4, lim64, true).is_err());
    assert_eq!(d.alloc(6, lim32, false).map(|r| r.pfn_lo()), Ok(9));

    // The aligned memo still answers aligned requests at once (what Linux's
    // `max32_alloc_size` is for); an unaligned failure, which implies the
    // aligned one, lowers it too.
    let mut d = only_9_to_14();
    assert!(d.alloc(5, lim64, true).is_err());
    assert_eq!(d.max32_alloc_size(), 5);
    assert!(d.alloc(7, lim32, true).is_err());
    assert!(d.alloc(7, lim32, false).is_err());
    assert_eq!(d.max32_alloc_size(), 5);
    assert!(d.alloc(4, lim32, false).is_ok());
    assert!(d.alloc(3, lim32, false).is_err()); // only [9, 10] is left
    assert_eq!(d.max32_alloc_size(), 3);
    assert!(d.alloc(2, lim32, true).is_err()); // [8, 9] / [10, 11]: no
    assert_eq!(d.max32_alloc_size(), 2);
    assert_eq!(d.alloc(2, lim32, false).map(|r| r.pfn_lo()), Ok(9));
}

#[test]
fn bad_input_gets_typed_errors() {
    for g in [0, 512, 4095, 6144] {
        assert_eq!(
            IovaDomain::new(g, Iova::ZERO).unwrap_err(),
            DmaError::InvalidIovaGranule { granule: g }
        );
    }
    let d16 = IovaDomain::new(16384, Iova::ZERO).unwrap();
    assert_eq!(d16.granule_shift(), 14);
    let mut d = dom();
    let e = d.alloc(0, Iova::MAX, false).unwrap_err();
    assert_eq!(
        e,
        DmaError::IovaBadSize {
            pages: 0,
            max_pages: u64::MAX >> 12
        }
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(
        d.free(Iova::new(0x5000)),
        Err(DmaError::IovaNotAllocated {
            iova: Iova::new(0x5000)
        })
    );
    let e = d.alloc(1, Iova::new(0x7ff), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoResources);
    assert!(e.to_string().contains("0x7ff"), "{e}");
    assert_eq!(d.pages_for(0x800, 0x1000), Some(2));
    assert_eq!(d.pages_for(0, 0x1000), Some(1));
    assert_eq!(d.pages_for(0x10, u64::MAX), None);
}

#[test]
fn find_and_free_by_any_address_inside() {
    let mut d = dom();
    let r = d.alloc(4, Iova::new(0xffff_ffff), true).unwrap();
    let mid = Iova::new(r.start().raw() + 2 * G + 5);
    assert_eq!(d.find(mid), Some(r));
    assert_eq!(d.find(Iova::new(r.start().raw() - 1)), None);
    assert_eq!(d.free(mid), Ok(r));
    assert_eq!(d.free(mid), Err(DmaError::IovaNotAllocated { iova: mid }));
    assert_eq!(d.allocated_count(), 0);
    assert_eq!(d.free_extent_count(), 1);
}

// ---- rcache ----

fn cached(cpus: usize) -> CachedIovaDomain {
    let d = IovaDomain::new(G, Iova::ZERO).unwrap();
    CachedIovaDomain::new(d, cpus)
}

#[test]
fn fast_path_rounds_small_sizes_to_powers_of_two() {
    let c = cached(1);
    let lim = Iova::new(0xffff_ffff);
    let r = c.alloc_fast_on(0, 3, lim, true).unwrap();
    assert_eq!(r.pages(), 4);
    assert_eq!(r.pfn_lo() % 4, 0);
    let r = c.alloc_fast_on(0, 17, lim, true).unwrap();
    assert_eq!(r.pages(), 32);
    // 32 and above are not rounded (but still size-aligned).
    let r = c.alloc_fast_on(0, 33, lim, true).unwrap();
    assert_eq!(r.pages(), 33);
    assert_eq!(r.pfn_lo() % 64, 0);
}

#[test]
fn rcache_hit_returns_most_recently_freed_of_that_class() {
    let c = cached(2);
    let lim = Iova::new(0xffff_ffff);
    let a = c.alloc_fast_on(0, 2, lim, true).unwrap();
    let b = c.alloc_fast_on(0, 2, lim, true).unwrap();
    let x = c.alloc_fast_on(0, 4, lim, true).unwrap();
    c.free_fast_on(0, a).unwrap();
    c.free_fast_on(0, b).unwrap();
    c.free_fast_on(0, x).unwrap();
    // Class 1 (2 pages): b was freed last.
    assert_eq!(c.alloc_fast_on(0, 2, lim, true).unwrap(), b);
    assert_eq!(c.alloc_fast_on(0, 2, lim, true).unwrap(), a);
    assert_eq!(c.alloc_fast_on(0, 4, lim, true).unwrap(), x);
    // Cached ranges stay allocated in the tree.
    c.free_fast_on(0, a).unwrap();
    assert_eq!(c.with_domain(|d| d.find(a.start())), Some(a));
    // Another CPU does not see CPU 0's magazine: it gets a fresh range.
    let other = c.alloc_fast_on(1, 2, lim, true).unwrap();
    assert_ne!(other, a);
    // A cached range above a lower limit is skipped for one below it.
    let low = c
        .alloc_fast_on(0, 2, Iova::new(a.start().raw() - 1), true)
        .unwrap();
    assert!(low.last() < a.start());
    let s = c.stats();
    assert_eq!(s.cached, 1);
    assert_eq!(s.flush_errors, 0);
}

#[test]
fn flush_and_retry_finds_space_held_only_in_caches() {
    let c = cached(2);
    let lim = pages_limit(9); // frames 1..=8 usable
    let all: Vec<_> = (0..8)
        .map(|_| c.alloc_fast_on(0, 1, lim, true).unwrap())
        .collect();
    // CPU 1 frees everything into its own magazine.
    for r in all {
        c.free_fast_on(1, r).unwrap();
    }
    assert_eq!(c.stats().cached, 8);
    // CPU 0 has nothing cached and the tree is full.
    let e = c.alloc_fast_on(0, 1, lim, false).unwrap_err();
    assert_eq!(
        e,
        DmaError::IovaExhausted {
            pages: 1,
            limit: lim
        }
    );
    // With flush_rcache the caches go back to the tree and the retry succeeds.
    let r = c.alloc_fast_on(0, 1, lim, true).unwrap();
    assert_eq!(r.pfn_lo(), 8);
    assert_eq!(c.stats().cached, 0);
    assert_eq!(c.with_domain(|d| d.allocated_count()), 1);
}

/// Bug: a reservation made while an IOVA sat in the per-CPU cache (a
/// magazine or the depot) was ignored for it: `alloc_fast` handed the cached
/// IOVA out inside the reserved range.
#[test]
fn reservation_made_while_an_iova_is_cached_is_honoured() {
    let lim = Iova::new(0xffff_ffff);
    let inside = |r: IovaRange, lo: Iova, hi: Iova| r.start() <= hi && lo <= r.last();

    // One IOVA in CPU 0's loaded magazine.
    let c = cached(2);
    let a = c.alloc_fast_on(0, 1, lim, true).unwrap();
    c.free_fast_on(0, a).unwrap();
    c.with_domain(|d| d.reserve(a.start(), a.last())).unwrap();
    for cpu in [0, 1, 0] {
        let r = c.alloc_fast_on(cpu, 1, lim, true).unwrap();
        assert!(
            !inside(r, a.start(), a.last()),
            "cpu {cpu} got reserved {r:?}"
        );
    }
    c.with_domain(|d| d.check_invariants()).unwrap();

    // Three magazines' worth on CPU 0 (loaded, prev and one in the depot),
    // one on CPU 1, of two classes; a reservation covers part of them.
    let c = cached(2);
    let n = 3 * IOVA_MAG_SIZE;
    let ones: Vec<_> = (0..n)
        .map(|_| c.alloc_fast_on(0, 1, lim, true).unwrap())
        .collect();
    let twos: Vec<_> = (0..IOVA_MAG_SIZE)
        .map(|_| c.alloc_fast_on(1, 2, lim, true).unwrap())
        .collect();
    for r in &ones {
        c.free_fast_on(0, *r).unwrap();
    }
    for r in &twos {
        c.free_fast_on(1, *r).unwrap();
    }
    assert_eq!(c.depot_sizes()[0], 1);
    let cached_before = c.stats().cached;
    assert_eq!(cached_before as usize, n + IOVA_MAG_SIZE);
    // From the middle of the 2-page ranges (allocated later, so lower) to the
    // middle of the 1-page ones.
    let (lo, hi) = (twos[IOVA_MAG_SIZE / 2].start(), ones[n / 2].last());
    c.with_domain(|d| d.reserve(lo, hi)).unwrap();
    let covered = ones
        .iter()
        .chain(&twos)
        .filter(|r| inside(**r, lo, hi))
        .count() as u64;
    assert!(covered > IOVA_MAG_SIZE as u64);
    // The covered ranges left the cache (a depot magazine that lost some is
    // repacked; the remainder goes back to the tree) and were freed.
    let cached_after = c.stats().cached;
    assert!(cached_after <= cached_before - covered);
    assert_eq!(c.with_domain(|d| d.allocated_count()) as u64, cached_after);
    c.with_domain(|d| d.check_invariants()).unwrap();
    for cpu in [0, 1] {
        for pages in [1, 2] {
            // More than was ever cached: the caches are drained.
            for _ in 0..n + IOVA_MAG_SIZE {
                let r = c.alloc_fast_on(cpu, pages, lim, false).unwrap();
                assert!(!inside(r, lo, hi), "cpu {cpu} got reserved {r:?}");
            }
        }
    }
    assert_eq!(c.stats().flush_errors, 0);

    // An IOVA still held (say in a flush queue) when the reservation is made
    // is not cached when it is freed, and never comes back.
    let c = cached(1);
    let b = c.alloc_fast_on(0, 4, lim, true).unwrap();
    c.with_domain(|d| d.reserve(b.start(), b.start())).unwrap();
    c.free_fast_on(0, b).unwrap();
    assert_eq!(c.stats().cached, 0);
    for _ in 0..4 {
        let r = c.alloc_fast_on(0, 4, lim, true).unwrap();
        assert!(!inside(r, b.start(), b.start()), "got reserved {r:?}");
    }
    c.with_domain(|d| d.check_invariants()).unwrap();
}

#[test]
fn depot_takes_full_magazines_and_is_bounded_and_trimmed() {
    let d = IovaDomain::new(G, Iova::ZERO).unwrap();
    let c = CachedIovaDomain::with_depot_limit(d, 1, 2);
    let lim = Iova::new(0xffff_ffff);
    let n = IOVA_MAG_SIZE * 5;
    let all: Vec<_> = (0..n)
        .map(|_| c.alloc_fast_on(0, 1, lim, true).unwrap())
        .collect();
    for r in &all {
        c.free_fast_on(0, *r).unwrap();
    }
    // loaded + prev hold 2 magazines' worth, the depot 2 full ones, the 5th
    // magazine overflowed back to the tree.
    assert_eq!(c.depot_sizes()[0], 2);
    assert_eq!(c.stats().cached as usize, 4 * IOVA_MAG_SIZE);
    assert_eq!(c.with_domain(|d| d.allocated_count()), 4 * IOVA_MAG_SIZE);
    // Trimming keeps at most one magazine per CPU in the depot.
    assert_eq!(c.trim_depots(), 1);
    assert_eq!(c.trim_depots(), 0);
    assert_eq!(c.depot_sizes()[0], 1);
    // Draining: loaded, prev, then the depot magazine are all reachable.
    for _ in 0..3 * IOVA_MAG_SIZE {
        c.alloc_fast_on(0, 1, lim, false).unwrap();
    }
    assert_eq!(c.stats().cached, 0);
    c.flush_all();
    assert_eq!(c.stats().flush_errors, 0);
}

#[test]
fn unaligned_ranges_bypass_the_cache() {
    let c = cached(1);
    let lim = Iova::new(0xffff_ffff);
    // A 2-page range at an odd frame from the plain allocator.
    c.with_domain(|d| d.alloc(1, lim, false)).unwrap();
    let r = c.with_domain(|d| d.alloc(2, lim, false)).unwrap();
    assert_eq!(r.pfn_lo() % 2, 1);
    c.free_fast_on(0, r).unwrap();
    assert_eq!(c.stats().cached, 0);
    assert_eq!(c.with_domain(|d| d.find(r.start())), None);
}

// ---- 32-bit-first policy ----

#[test]
fn pci_devices_try_32_bit_first_and_fall_back_stickily() {
    let d = IovaDomain::new(G, Iova::ZERO).unwrap();
    let c = CachedIovaDomain::new(d, 1);
    let lim64 = Iova::MAX;
    // Leave 4 pages below 4 GiB.
    c.with_domain(|d| d.reserve(Iova::new(0), Iova::new(0xffff_bfff)))
        .unwrap();
    let pci = DeviceIovaPolicy::new(true, false);
    assert!(pci.pci_32bit_workaround());
    let a = pci.alloc_on(&c, 0, 4, lim64).unwrap();
    assert_eq!(a.start(), Iova::new(0xffff_c000));
    assert!(pci.pci_32bit_workaround());
    // 32-bit space full: falls back to the full limit and remembers it.
    let b = pci.alloc_on(&c, 0, 4, lim64).unwrap();
    assert!(b.start() > IOVA_32BIT_LIMIT);
    assert!(!pci.pci_32bit_workaround());
    // Space below 4 GiB comes back, but the device stays on 64-bit.
    c.with_domain(|d| d.free(a.start())).unwrap();
    let e = pci.alloc_on(&c, 0, 4, lim64).unwrap();
    assert!(e.start() > IOVA_32BIT_LIMIT);
    // A fresh PCI device still goes below 4 GiB first.
    let pci2 = DeviceIovaPolicy::new(true, false);
    assert_eq!(
        pci2.alloc_on(&c, 0, 4, lim64).unwrap().start(),
        Iova::new(0xffff_c000)
    );
    // Non-PCI devices and forcedac never try 32-bit first.
    let platform = DeviceIovaPolicy::new(false, false);
    assert!(!platform.pci_32bit_workaround());
    let forced = DeviceIovaPolicy::new(true, true);
    assert!(!forced.pci_32bit_workaround());
    // A device whose limit is 32-bit anyway is unaffected by the flag.
    let pci3 = DeviceIovaPolicy::new(true, false);
    assert!(pci3.alloc_on(&c, 0, 4, IOVA_32BIT_LIMIT).is_err());
    assert!(pci3.pci_32bit_workaround());
    // Invalid requests do not clear the flag.
    assert!(pci3.alloc_on(&c, 0, 0, lim64).is_err());
    assert!(pci3.pci_32bit_workaround());
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CachedIovaDomain>();
    check::<DeviceIovaPolicy>();
    check::<IovaDomain>();
}

#[test]
fn flush_cpu_returns_only_that_cpus_cache() {
    let c = cached(2);
    let lim = Iova::new(0xffff_ffff);
    let a = c.alloc_fast_on(0, 1, lim, true).unwrap();
    let b = c.alloc_fast_on(1, 8, lim, true).unwrap();
    c.free_fast_on(0, a).unwrap();
    c.free_fast_on(1, b).unwrap();
    assert_eq!(c.stats().cached, 2);
    c.flush_cpu(0);
    assert_eq!(c.stats().cached, 1);
    assert_eq!(c.with_domain(|d| d.find(a.start())), None);
    assert_eq!(c.with_domain(|d| d.find(b.start())), Some(b));
    // CPU 1 still gets its cached range back.
    assert_eq!(c.alloc_fast_on(1, 8, lim, true).unwrap(), b);
}

#[test]
fn free_space_reports_total_largest_and_extents_below_the_limit() {
    let mut d = dom();
    let lim = pages_limit(100);
    // Frames 1..=99 are usable below the limit (frame 0 never is).
    assert_eq!(d.free_space(lim).total, 99);
    assert_eq!(d.free_space(lim).largest_permille(), 1000);
    let hs: Vec<IovaRange> = (0..10).map(|_| d.alloc(1, lim, false).unwrap()).collect();
    // Top-down: frames 90..=99 taken; free every other one.
    for h in hs.iter().step_by(2) {
        d.free(h.start()).unwrap();
    }
    let f = d.free_space(lim);
    assert_eq!(f.total, 89 + 5);
    assert_eq!(f.largest, 89);
    assert_eq!(f.extents, 6);
    assert_eq!(f.largest_permille(), 89 * 1000 / 94);
    // Space above the limit is not counted.
    assert_eq!(d.free_space(pages_limit(50)).total, 49);
}
