//! Route cache keyed by the topology generation.
//!
//! Linux caches the map type per (provider, client) in the provider's
//! `map_types` xarray and never invalidates it, so an ACS change or hot-plug
//! after the first query leaves stale answers. Here every cached verdict
//! belongs to one topology generation; a query against a newer generation
//! clears the cache first.
//!
//! The table is open addressing over `(provider, client)` ids with linear
//! probing, so a hit is a multiply, a mask and one or two compares.

use super::oracle::calc_map_type_and_dist;
use super::Verdict;
use crate::topology::{DeviceId, Topology, TopologyError};
use alloc::vec;
use alloc::vec::Vec;

const EMPTY: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    verdict: Verdict,
}

const VACANT: Slot = Slot {
    key: EMPTY,
    verdict: Verdict {
        map_type: super::MapType::NotSupported,
        distance: 0,
        read: false,
        write: false,
    },
};

/// Cached [`Verdict`]s for one topology.
#[derive(Clone)]
pub struct RouteCache {
    generation: u64,
    slots: Vec<Slot>,
    len: usize,
    hits: u64,
    misses: u64,
}

impl Default for RouteCache {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn hash(key: u64) -> u64 {
    (key ^ (key >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl RouteCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            generation: u64::MAX,
            slots: vec![VACANT; 64],
            len: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = VACANT);
        self.len = 0;
    }

    /// The generation the entries belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of cached routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// The verdict for `(provider, client)`, computed on a miss.
    #[inline]
    pub fn verdict(
        &mut self,
        topo: &Topology,
        provider: DeviceId,
        client: DeviceId,
    ) -> Result<Verdict, TopologyError> {
        if self.generation != topo.generation() {
            self.clear();
            self.generation = topo.generation();
        }
        let key = ((provider.0 as u64) << 32) | client.0 as u64;
        let mask = self.slots.len() - 1;
        let mut i = (hash(key) >> 32) as usize & mask;
        loop {
            let s = self.slots[i];
            if s.key == key {
                self.hits += 1;
                return Ok(s.verdict);
            }
            if s.key == EMPTY {
                break;
            }
            i = (i + 1) & mask;
        }
        self.misses += 1;
        let v = calc_map_type_and_dist(topo, provider, client)?.verdict;
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.insert(key, v);
        Ok(v)
    }

    fn insert(&mut self, key: u64, verdict: Verdict) {
        let mask = self.slots.len() - 1;
        let mut i = (hash(key) >> 32) as usize & mask;
        while self.slots[i].key != EMPTY && self.slots[i].key != key {
            i = (i + 1) & mask;
        }
        if self.slots[i].key == EMPTY {
            self.len += 1;
        }
        self.slots[i] = Slot { key, verdict };
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let old = core::mem::replace(&mut self.slots, vec![VACANT; n]);
        self.len = 0;
        for s in old.into_iter().filter(|s| s.key != EMPTY) {
            self.insert(s.key, s.verdict);
        }
    }
}
