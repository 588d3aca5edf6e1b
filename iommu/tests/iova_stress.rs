//! Two threads hammer one cached IOVA domain; a shared ledger checks that no
//! IOVA is ever live twice at the same time. Bounded iterations.

use dma_api::Iova;
#[cfg(feature = "std")]
use dma_iommu::iova::CachedIovaDomain;
use dma_iommu::iova::{IovaDomain, IovaRange};
use std::collections::BTreeMap;
#[cfg(feature = "std")]
use std::sync::{Arc, Mutex};

/// Live ranges: first frame -> last frame.
#[cfg(feature = "std")]
type Ledger = Mutex<BTreeMap<u64, u64>>;

#[cfg(feature = "std")]
fn claim(ledger: &Ledger, r: &IovaRange) {
    let mut l = ledger.lock().unwrap();
    if let Some((&lo, &hi)) = l.range(..=r.pfn_hi()).next_back() {
        assert!(
            hi < r.pfn_lo(),
            "{r:?} handed out while [{lo:#x}, {hi:#x}] is live"
        );
    }
    l.insert(r.pfn_lo(), r.pfn_hi());
}

#[cfg(feature = "std")]
fn release(ledger: &Ledger, r: &IovaRange) {
    assert_eq!(ledger.lock().unwrap().remove(&r.pfn_lo()), Some(r.pfn_hi()));
}

#[cfg(feature = "std")] // alloc_fast / free_fast pick the thread's slot
#[test]
fn two_threads_never_share_an_iova() {
    let d = IovaDomain::new(4096, Iova::ZERO).unwrap();
    // A small space (4096 frames) so that the tree, the caches and the
    // flush-and-retry path are all exercised.
    let limit = Iova::new(4096 * 4096 - 1);
    let c = Arc::new(CachedIovaDomain::with_depot_limit(d, 2, 4));
    let ledger = Arc::new(Ledger::default());
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let c = Arc::clone(&c);
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                let mut rng = 0x1234_5678_9abc_def1u64 ^ (t << 32);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut live: Vec<IovaRange> = Vec::new();
                let mut exhausted = 0u32;
                for i in 0..30_000u64 {
                    let want_alloc = live.len() < 40 || next() % 2 == 0;
                    if want_alloc && live.len() < 200 {
                        let pages = 1 + next() % 40;
                        match c.alloc_fast(pages, limit, true) {
                            Ok(r) => {
                                assert!(r.last() <= limit && r.start() > Iova::ZERO);
                                claim(&ledger, &r);
                                live.push(r);
                            }
                            Err(_) => exhausted += 1,
                        }
                    } else if !live.is_empty() {
                        let r = live.swap_remove((next() % live.len() as u64) as usize);
                        release(&ledger, &r);
                        c.free_fast(r).unwrap();
                    }
                    if i % 5000 == 0 {
                        c.trim_depots();
                    }
                }
                for r in live {
                    release(&ledger, &r);
                    c.free_fast(r).unwrap();
                }
                exhausted
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(ledger.lock().unwrap().is_empty());
    c.flush_all();
    let s = c.stats();
    assert_eq!(s.flush_errors, 0);
    assert_eq!(s.cached, 0);
    assert!(s.hits > 0, "{s:?}");
    c.with_domain(|d| {
        assert_eq!(d.allocated_count(), 0);
        assert_eq!(d.free_extent_count(), 1);
        d.check_invariants().unwrap();
    });
}

/// Reservations made while two threads allocate and free through the cache:
/// no allocation that starts after a reservation returned may overlap it,
/// whether the IOVA was cached, held, or freed in between.
#[cfg(feature = "std")]
#[test]
fn reservations_while_threads_use_the_cache_are_honoured() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::RwLock;
    let d = IovaDomain::new(4096, Iova::ZERO).unwrap();
    let limit = Iova::new(4096 * 4096 - 1);
    let c = Arc::new(CachedIovaDomain::with_depot_limit(d, 2, 4));
    // Reservations whose `with_domain` call has returned (frames).
    let done: Arc<RwLock<Vec<(u64, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let (c, done, stop) = (Arc::clone(&c), Arc::clone(&done), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rng = 0x2545_f491_4f6c_dd1du64 ^ (t << 40);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut live: Vec<IovaRange> = Vec::new();
                let mut i = 0u32;
                while i < 40_000 && !(stop.load(Ordering::Relaxed) && i > 2_000) {
                    i += 1;
                    if live.len() < 64 && next() % 2 == 0 {
                        let seen = done.read().unwrap().clone();
                        if let Ok(r) = c.alloc_fast(1 << (next() % 4), limit, true) {
                            for &(lo, hi) in &seen {
                                assert!(
                                    r.pfn_hi() < lo || r.pfn_lo() > hi,
                                    "{r:?} overlaps [{lo:#x}, {hi:#x}], reserved before"
                                );
                            }
                            live.push(r);
                        }
                    } else if !live.is_empty() {
                        let r = live.swap_remove((next() % live.len() as u64) as usize);
                        c.free_fast(r).unwrap();
                    }
                }
                for r in live {
                    c.free_fast(r).unwrap();
                }
            })
        })
        .collect();
    let mut rng = 0x9e37_79b9u64;
    for _ in 0..24 {
        std::thread::yield_now();
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let lo = 1 + (rng >> 33) % 4000;
        let hi = lo + 7;
        c.with_domain(|d| d.reserve(Iova::new(lo << 12), Iova::new(hi << 12)))
            .unwrap();
        done.write().unwrap().push((lo, hi));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    c.flush_all();
    assert_eq!(c.stats().flush_errors, 0);
    c.with_domain(|d| {
        assert_eq!(d.allocated_count(), 0);
        d.check_invariants().unwrap();
    });
}

#[test]
fn random_alloc_free_keeps_invariants() {
    // Plain domain, random sizes, alignment and limits; after every step the
    // live set has no overlap, respects limits and alignment, and avoids the
    // reserved MSI window.
    let mut d = IovaDomain::new(4096, Iova::ZERO).unwrap();
    d.reserve_x86_msi_window().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let limits = [
        Iova::new(0xfeef_ffff),
        Iova::new(0xffff_ffff),
        Iova::new(0xfef0_7fff),
    ];
    let mut live: BTreeMap<u64, IovaRange> = BTreeMap::new();
    for step in 0..20_000 {
        if live.len() < 500 && next() % 3 != 0 {
            let pages = 1 + next() % 64;
            let aligned = next() % 2 == 0;
            let limit = limits[(next() % 3) as usize];
            let r = d.alloc(pages, limit, aligned).unwrap();
            assert!(r.last() <= limit);
            assert!(r.start() > Iova::ZERO);
            if aligned {
                assert_eq!(r.pfn_lo() % pages.next_power_of_two(), 0);
            }
            assert!(
                r.last() < Iova::new(0xfee0_0000) || r.start() > Iova::new(0xfeef_ffff),
                "{r:?} overlaps the MSI window"
            );
            if let Some((_, prev)) = live.range(..=r.pfn_hi()).next_back() {
                assert!(prev.pfn_hi() < r.pfn_lo(), "{r:?} overlaps {prev:?}");
            }
            live.insert(r.pfn_lo(), r);
        } else if let Some(&k) = live
            .keys()
            .nth((next() % live.len().max(1) as u64) as usize)
        {
            let r = live.remove(&k).unwrap();
            assert_eq!(d.free(r.start()), Ok(r));
        }
        if step % 1000 == 0 {
            d.check_invariants().unwrap();
        }
    }
    d.check_invariants().unwrap();
}
