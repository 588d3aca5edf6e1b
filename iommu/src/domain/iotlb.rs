//! The IOTLB: caches walker results per (domain, 4 KiB IOVA page) until an
//! invalidation removes them. Entries record a fill sequence number so an
//! invalidation only removes what was cached before it *started*, which is
//! exactly why Linux's flush queue needs its start/finish counter rule.

use std::collections::BTreeMap;

use scatterlist::{Iova, PhysAddr};

use super::clock::SimInstant;
use super::DomainId;

/// One cached translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IotlbEntry {
    /// Physical address of the 4 KiB page.
    pub pa_page: PhysAddr,
    /// Read allowed.
    pub read: bool,
    /// Write allowed.
    pub write: bool,
    /// When it was filled.
    pub filled_at: SimInstant,
    /// Fill sequence number.
    pub seq: u64,
}

/// IOTLB hit/miss/invalidation counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IotlbStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that walked the tables.
    pub misses: u64,
    /// Range invalidations issued.
    pub range_invalidations: u64,
    /// Whole-domain invalidations issued.
    pub domain_invalidations: u64,
}

/// The simulated IOTLB.
#[derive(Debug, Default)]
pub struct Iotlb {
    map: BTreeMap<(DomainId, u64), IotlbEntry>,
    seq: u64,
    /// Counters.
    pub stats: IotlbStats,
}

impl Iotlb {
    /// Cached entry for `iova`'s page.
    pub fn lookup(&self, d: DomainId, iova: Iova) -> Option<IotlbEntry> {
        self.map.get(&(d, iova.raw() >> 12)).copied()
    }

    /// Caches a translation of `iova`'s page.
    pub fn fill(
        &mut self,
        d: DomainId,
        iova: Iova,
        pa_page: PhysAddr,
        read: bool,
        write: bool,
        now: SimInstant,
    ) {
        self.seq += 1;
        let e = IotlbEntry {
            pa_page,
            read,
            write,
            filled_at: now,
            seq: self.seq,
        };
        self.map.insert((d, iova.raw() >> 12), e);
    }

    /// Current fill sequence number (an invalidation started now removes
    /// entries with `seq <= current_seq()`).
    pub fn current_seq(&self) -> u64 {
        self.seq
    }

    /// Removes `[iova, iova + len)` of domain `d` (synchronous range
    /// invalidation).
    pub fn invalidate_range(&mut self, d: DomainId, iova: Iova, len: u64) {
        self.stats.range_invalidations += 1;
        if len == 0 {
            return;
        }
        let first = iova.raw() >> 12;
        let last = iova.raw().saturating_add(len - 1) >> 12;
        let keys: Vec<_> = self
            .map
            .range((d, first)..=(d, last))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.map.remove(&k);
        }
    }

    /// Removes every entry of `d` filled at or before sequence `upto`.
    pub fn invalidate_domain_upto(&mut self, d: DomainId, upto: u64) {
        self.stats.domain_invalidations += 1;
        let keys: Vec<_> = self
            .map
            .range((d, 0)..=(d, u64::MAX))
            .filter(|(_, e)| e.seq <= upto)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.map.remove(&k);
        }
    }

    /// All entries of `d`: (IOVA page, entry).
    pub fn entries(&self, d: DomainId) -> impl Iterator<Item = (Iova, IotlbEntry)> + '_ {
        self.map
            .range((d, 0)..=(d, u64::MAX))
            .map(|(k, e)| (Iova::new(k.1 << 12), *e))
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the IOTLB is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
