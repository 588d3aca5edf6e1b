//! Active CPU cache lines of mappings the device may write
//! (kernel/dma/debug.c `active_cacheline_*`).
//!
//! Linux keys a radix tree by the *first* cache line of each mapping (of each
//! sg entry) and counts overlaps. Two small buffers that share only a tail
//! line slip through that. Here every mapping is an interval of line numbers,
//! so any shared line is found: the query walks the intervals that start at
//! most `max_span` lines before the new one.

use crate::direction::Direction;
use crate::types::{DmaAddr, PhysAddr};
use alloc::collections::BTreeMap;

/// One tracked interval of cache lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineRec {
    /// Last line number (inclusive).
    pub last: u64,
    /// The mapping it belongs to.
    pub dma: DmaAddr,
    /// Its direction.
    pub dir: Direction,
    /// Mapped with `DEBUGGING_IGNORE_CACHELINES` or `REQUIRE_COHERENT`.
    pub clean: bool,
}

/// Key: (first line, owner id, index inside the owner).
pub(crate) type LineKey = (u64, u64, u32);

/// The interval set.
#[derive(Debug)]
pub(crate) struct LineTracker {
    shift: u32,
    by_start: BTreeMap<LineKey, LineRec>,
    max_span: u64,
}

impl LineTracker {
    /// A tracker for lines of `1 << shift` bytes.
    pub fn new(shift: u32) -> Self {
        Self {
            shift,
            by_start: BTreeMap::new(),
            max_span: 0,
        }
    }

    /// The inclusive line interval of `[phys, phys + len)`; `None` for an
    /// empty or wrapping range.
    pub fn lines_of(&self, phys: PhysAddr, len: u64) -> Option<(u64, u64)> {
        let last = phys.last_of(len)?;
        Some((phys.raw() >> self.shift, last.raw() >> self.shift))
    }

    /// Physical address of line `line`.
    pub fn line_addr(&self, line: u64) -> PhysAddr {
        PhysAddr::new(line << self.shift)
    }

    /// The first active interval sharing a line with `[first, last]` that is
    /// not excused (both sides "clean"), with the first shared line.
    pub fn find_overlap(&self, first: u64, last: u64, clean: bool) -> Option<(u64, LineRec)> {
        let lo = (first.saturating_sub(self.max_span), 0, 0);
        let hi = (last, u64::MAX, u32::MAX);
        self.by_start
            .range(lo..=hi)
            .find(|(_, r)| r.last >= first && !(clean && r.clean))
            .map(|(k, r)| (k.0.max(first), *r))
    }

    /// Adds an interval.
    pub fn insert(&mut self, key: LineKey, rec: LineRec) {
        self.max_span = self.max_span.max(rec.last - key.0);
        self.by_start.insert(key, rec);
    }

    /// Removes an interval.
    pub fn remove(&mut self, key: &LineKey) {
        self.by_start.remove(key);
        if self.by_start.is_empty() {
            self.max_span = 0;
        }
    }
}
