//! The free-space index: an augmented treap of free extents.
//!
//! Linux keeps the *allocated* ranges in an rbtree and walks it backwards
//! from a cached node looking for a gap (drivers/iommu/iova.c
//! `__alloc_and_insert_iova_range`), which is O(n) on a fragmented space.
//! This index keeps the *free* extents instead, as a treap ordered by address
//! (arena-allocated nodes, `u32` links), and augments every node with, for
//! each alignment order `k < EXACT_ORDERS`, the largest size that fits
//! `2^k`-aligned in any extent of its subtree:
//!
//! `agg[k] = max over extents [lo, hi] of (hi + 1 - align_up(lo, 2^k))`.
//!
//! "Highest `2^k`-aligned fit of `size` granules at or below `limit`" is then a
//! right-first descent that skips every subtree whose `agg[k] < size`. Below
//! the limit the aggregate is exact, so the descent never backtracks except
//! along the one path that straddles `limit`: O(log n) expected for orders
//! below [`EXACT_ORDERS`] (sizes up to 128 granules when size-aligned, and all
//! unaligned requests). For larger orders `agg[EXACT_ORDERS - 1]` is used as a
//! necessary bound; the descent stays correct but may visit extents that are
//! long enough yet have no slot aligned that strongly.

use super::alloc;
use alloc::vec::Vec;

/// Alignment orders whose fit is indexed exactly (2^0 .. 2^7 granules).
pub(crate) const EXACT_ORDERS: usize = 8;

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    lo: u64,
    hi: u64,
    left: u32,
    right: u32,
    prio: u32,
    agg: [u64; EXACT_ORDERS],
}

/// Largest size that fits `2^order`-aligned in `[lo, hi]` (0 if none).
#[inline]
fn fit(lo: u64, hi: u64, order: usize) -> u64 {
    let align = 1u64 << order;
    match lo.checked_add(align - 1) {
        Some(v) => (hi + 1).saturating_sub(v & !(align - 1)),
        None => 0,
    }
}

/// Free extents of one IOVA space, in granule frame numbers.
#[derive(Clone, Debug)]
pub(crate) struct FreeTree {
    nodes: Vec<Node>,
    spare: Vec<u32>,
    root: u32,
    rng: u32,
    len: usize,
    path: Vec<u32>,
}

impl FreeTree {
    /// A tree whose only free extent is `[lo, hi]` (nothing if `lo > hi`).
    pub(crate) fn new(lo: u64, hi: u64) -> Self {
        let mut t = Self {
            nodes: Vec::new(),
            spare: Vec::new(),
            root: NIL,
            rng: 0x9e37_79b9,
            len: 0,
            path: Vec::new(),
        };
        if lo <= hi {
            let n = t.new_node(lo, hi);
            t.root = n;
        }
        t
    }

    /// Number of free extents.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn next_prio(&mut self) -> u32 {
        // xorshift32: deterministic, no_std, good enough for treap balance.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    fn new_node(&mut self, lo: u64, hi: u64) -> u32 {
        let prio = self.next_prio();
        let node = Node {
            lo,
            hi,
            left: NIL,
            right: NIL,
            prio,
            agg: [0; EXACT_ORDERS],
        };
        self.len += 1;
        let idx = match self.spare.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.pull(idx);
        idx
    }

    fn release_node(&mut self, idx: u32) {
        self.len -= 1;
        self.spare.push(idx);
    }

    #[inline]
    fn n(&self, idx: u32) -> &Node {
        &self.nodes[idx as usize]
    }

    /// Recomputes `agg` of `idx` from its extent and its children; returns
    /// whether it changed (if not, no ancestor's aggregate changes either).
    #[inline]
    fn pull(&mut self, idx: u32) -> bool {
        let (lo, hi, l, r) = {
            let n = self.n(idx);
            (n.lo, n.hi, n.left, n.right)
        };
        let mut agg = [0u64; EXACT_ORDERS];
        for (k, a) in agg.iter_mut().enumerate() {
            *a = fit(lo, hi, k);
        }
        if l != NIL {
            let la = &self.n(l).agg;
            for k in 0..EXACT_ORDERS {
                agg[k] = agg[k].max(la[k]);
            }
        }
        if r != NIL {
            let ra = &self.n(r).agg;
            for k in 0..EXACT_ORDERS {
                agg[k] = agg[k].max(ra[k]);
            }
        }
        let node = &mut self.nodes[idx as usize];
        let changed = node.agg != agg;
        node.agg = agg;
        changed
    }

    /// Highest `2^order`-aligned start `p` with `[p, p + size - 1]` free and
    /// `p + size - 1 <= limit`; returns the extent's node and `p`.
    fn find_fit(&self, idx: u32, size: u64, order: u32, limit: u64) -> Option<(u32, u64)> {
        let bound = (order as usize).min(EXACT_ORDERS - 1);
        let mut idx = idx;
        loop {
            if idx == NIL {
                return None;
            }
            let n = self.n(idx);
            if n.agg[bound] < size {
                return None;
            }
            if n.lo > limit {
                // This extent and everything right of it lie above the limit.
                idx = n.left;
                continue;
            }
            if n.hi < limit {
                if let Some(hit) = self.find_fit(n.right, size, order, limit) {
                    return Some(hit);
                }
            }
            let end = n.hi.min(limit) + 1;
            if end >= size {
                let p = (end - size) & !((1u64 << order) - 1);
                if p >= n.lo {
                    return Some((idx, p));
                }
            }
            idx = n.left;
        }
    }

    /// Allocates the highest suitably aligned fit; returns its first frame.
    pub(crate) fn alloc(&mut self, size: u64, order: u32, limit: u64) -> Option<u64> {
        let (idx, p) = self.find_fit(self.root, size, order, limit)?;
        let (lo, hi) = {
            let n = self.n(idx);
            (n.lo, n.hi)
        };
        let last = p + size - 1;
        match (p == lo, last == hi) {
            (true, true) => self.delete(lo),
            (true, false) => {
                self.nodes[idx as usize].lo = last + 1;
                self.refresh_path(last + 1);
            }
            (false, true) => {
                self.nodes[idx as usize].hi = p - 1;
                self.refresh_path(lo);
            }
            (false, false) => {
                self.nodes[idx as usize].hi = p - 1;
                self.refresh_path(lo);
                self.insert(last + 1, hi);
            }
        }
        Some(p)
    }

    /// Returns `[a, b]` (currently not free) to the free space, merging with
    /// adjacent extents.
    pub(crate) fn release(&mut self, a: u64, b: u64) {
        let left = a
            .checked_sub(1)
            .and_then(|x| self.pred(x))
            .filter(|&i| self.n(i).hi.checked_add(1) == Some(a));
        let right = b.checked_add(1).and_then(|x| self.find_exact(x));
        match (left, right) {
            (Some(l), Some(r)) => {
                let (rlo, rhi) = (self.n(r).lo, self.n(r).hi);
                let llo = self.n(l).lo;
                self.delete(rlo);
                // `delete` may move nodes around; look the left extent up again.
                if let Some(l) = self.find_exact(llo) {
                    self.nodes[l as usize].hi = rhi;
                    self.refresh_path(llo);
                }
            }
            (Some(l), None) => {
                let llo = self.n(l).lo;
                self.nodes[l as usize].hi = b;
                self.refresh_path(llo);
            }
            (None, Some(r)) => {
                self.nodes[r as usize].lo = a;
                self.refresh_path(a);
            }
            (None, None) => self.insert(a, b),
        }
    }

    /// Removes `[a, b]` from the free space (parts of it may already be used).
    pub(crate) fn remove_range(&mut self, a: u64, b: u64) {
        while let Some(i) = self.pred(b) {
            let (lo, hi) = (self.n(i).lo, self.n(i).hi);
            if hi < a {
                break;
            }
            // The extent [lo, hi] intersects [a, b].
            let keep_low = (lo < a).then(|| (lo, a - 1));
            let keep_high = (hi > b).then(|| (b + 1, hi));
            match (keep_low, keep_high) {
                (None, None) => self.delete(lo),
                (Some((_, h)), None) => {
                    self.nodes[i as usize].hi = h;
                    self.refresh_path(lo);
                }
                (None, Some((l, _))) => {
                    self.nodes[i as usize].lo = l;
                    self.refresh_path(l);
                }
                (Some((_, h)), Some((l2, h2))) => {
                    self.nodes[i as usize].hi = h;
                    self.refresh_path(lo);
                    self.insert(l2, h2);
                }
            }
            if lo < a {
                break;
            }
        }
    }

    /// The extent with the largest `lo <= x`.
    fn pred(&self, x: u64) -> Option<u32> {
        let mut idx = self.root;
        let mut best = None;
        while idx != NIL {
            let n = self.n(idx);
            if n.lo <= x {
                best = Some(idx);
                idx = n.right;
            } else {
                idx = n.left;
            }
        }
        best
    }

    fn find_exact(&self, lo: u64) -> Option<u32> {
        let mut idx = self.root;
        while idx != NIL {
            let n = self.n(idx);
            if lo == n.lo {
                return Some(idx);
            }
            idx = if lo < n.lo { n.left } else { n.right };
        }
        None
    }

    /// True if frame `x` is free.
    pub(crate) fn is_free(&self, x: u64) -> bool {
        self.pred(x).is_some_and(|i| self.n(i).hi >= x)
    }

    /// Recomputes the aggregates on the path from the root to the extent
    /// starting at `lo` (after that extent changed in place).
    fn refresh_path(&mut self, lo: u64) {
        let mut path = core::mem::take(&mut self.path);
        path.clear();
        let mut idx = self.root;
        while idx != NIL {
            path.push(idx);
            let n = self.n(idx);
            if lo == n.lo {
                break;
            }
            idx = if lo < n.lo { n.left } else { n.right };
        }
        // The changed extent is the last node on the path; stop at the first
        // node whose aggregate did not move: nothing above it can move either.
        for &i in path.iter().rev() {
            if !self.pull(i) {
                break;
            }
        }
        self.path = path;
    }

    fn insert(&mut self, lo: u64, hi: u64) {
        let new = self.new_node(lo, hi);
        self.root = self.insert_at(self.root, new).0;
    }

    /// Inserts `new` below `idx`; returns the subtree's root and whether its
    /// aggregate changed.
    fn insert_at(&mut self, idx: u32, new: u32) -> (u32, bool) {
        if idx == NIL {
            return (new, true);
        }
        if self.n(new).prio > self.n(idx).prio {
            let (l, r) = self.split(idx, self.n(new).lo);
            let nn = &mut self.nodes[new as usize];
            nn.left = l;
            nn.right = r;
            self.pull(new);
            return (new, true);
        }
        let changed = if self.n(new).lo < self.n(idx).lo {
            let (l, ch) = self.insert_at(self.n(idx).left, new);
            self.nodes[idx as usize].left = l;
            ch
        } else {
            let (r, ch) = self.insert_at(self.n(idx).right, new);
            self.nodes[idx as usize].right = r;
            ch
        };
        // Adding an extent can only raise maxima: merge instead of recompute.
        if !changed {
            return (idx, false);
        }
        let na = self.n(new).agg;
        let node = &mut self.nodes[idx as usize];
        let mut moved = false;
        for (a, &n) in node.agg.iter_mut().zip(na.iter()) {
            if n > *a {
                *a = n;
                moved = true;
            }
        }
        (idx, moved)
    }

    /// Splits the subtree into extents with `lo < key` and `lo >= key`.
    fn split(&mut self, idx: u32, key: u64) -> (u32, u32) {
        if idx == NIL {
            return (NIL, NIL);
        }
        if self.n(idx).lo < key {
            let (l, r) = self.split(self.n(idx).right, key);
            self.nodes[idx as usize].right = l;
            self.pull(idx);
            (idx, r)
        } else {
            let (l, r) = self.split(self.n(idx).left, key);
            self.nodes[idx as usize].left = r;
            self.pull(idx);
            (l, idx)
        }
    }

    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.n(a).prio > self.n(b).prio {
            let r = self.merge(self.n(a).right, b);
            self.nodes[a as usize].right = r;
            self.pull(a);
            a
        } else {
            let l = self.merge(a, self.n(b).left);
            self.nodes[b as usize].left = l;
            self.pull(b);
            b
        }
    }

    fn delete(&mut self, lo: u64) {
        self.root = self.delete_at(self.root, lo).0;
    }

    /// Deletes the extent starting at `lo` below `idx`; returns the subtree's
    /// root and whether its aggregate changed.
    fn delete_at(&mut self, idx: u32, lo: u64) -> (u32, bool) {
        if idx == NIL {
            return (NIL, false);
        }
        let (nlo, l, r) = {
            let n = self.n(idx);
            (n.lo, n.left, n.right)
        };
        if lo == nlo {
            self.release_node(idx);
            return (self.merge(l, r), true);
        }
        let changed = if lo < nlo {
            let (nl, ch) = self.delete_at(l, lo);
            self.nodes[idx as usize].left = nl;
            ch
        } else {
            let (nr, ch) = self.delete_at(r, lo);
            self.nodes[idx as usize].right = nr;
            ch
        };
        (idx, changed && self.pull(idx))
    }

    /// The free extents in address order.
    pub(crate) fn extents(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(self.len);
        let mut stack = Vec::new();
        let mut idx = self.root;
        while idx != NIL || !stack.is_empty() {
            while idx != NIL {
                stack.push(idx);
                idx = self.n(idx).left;
            }
            if let Some(i) = stack.pop() {
                out.push((self.n(i).lo, self.n(i).hi));
                idx = self.n(i).right;
            }
        }
        out
    }

    /// Checks every structural invariant; returns a description of the first
    /// violation. Used by tests.
    pub(crate) fn check(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        let ext = self.extents();
        if ext.len() != self.len {
            return Err(format!("len {} but {} extents", self.len, ext.len()));
        }
        for &(lo, hi) in &ext {
            if lo > hi {
                return Err(format!("extent {lo:#x}..={hi:#x} is inverted"));
            }
        }
        for w in ext.windows(2) {
            if w[0].1.saturating_add(1) >= w[1].0 {
                return Err(format!("extents {:x?} and {:x?} touch", w[0], w[1]));
            }
        }
        self.check_node(self.root).map(|_| ())
    }

    fn check_node(&self, idx: u32) -> Result<[u64; EXACT_ORDERS], alloc::string::String> {
        if idx == NIL {
            return Ok([0; EXACT_ORDERS]);
        }
        let n = self.n(idx);
        for c in [n.left, n.right] {
            if c != NIL && self.n(c).prio > n.prio {
                return Err(alloc::format!("heap order broken at {:#x}", n.lo));
            }
        }
        let la = self.check_node(n.left)?;
        let ra = self.check_node(n.right)?;
        let mut agg = [0; EXACT_ORDERS];
        for k in 0..EXACT_ORDERS {
            agg[k] = fit(n.lo, n.hi, k).max(la[k]).max(ra[k]);
        }
        if agg != n.agg {
            return Err(alloc::format!("stale aggregate at {:#x}", n.lo));
        }
        Ok(agg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_respects_alignment() {
        assert_eq!(fit(3, 4, 0), 2);
        assert_eq!(fit(3, 4, 1), 1); // only [4, 4] is 2-aligned
        assert_eq!(fit(3, 4, 2), 1);
        assert_eq!(fit(3, 4, 3), 0);
        assert_eq!(fit(0, 15, 3), 16);
    }

    #[test]
    fn alloc_top_down_split_and_merge() {
        let mut t = FreeTree::new(1, 99);
        assert_eq!(t.alloc(1, 0, 99), Some(99));
        assert_eq!(t.alloc(4, 2, 99), Some(92)); // 4-aligned below 99
        assert_eq!(t.extents(), [(1, 91), (96, 98)]);
        assert_eq!(t.alloc(2, 1, 99), Some(96));
        assert_eq!(t.extents(), [(1, 91), (98, 98)]);
        t.release(96, 97);
        t.release(92, 95);
        assert_eq!(t.extents(), [(1, 98)]);
        t.check().unwrap();
        t.remove_range(10, 20);
        assert_eq!(t.extents(), [(1, 9), (21, 98)]);
        assert_eq!(t.alloc(5, 0, 15), Some(5));
        t.check().unwrap();
    }
}
