//! A magazine: a fixed stack of cached IOVA frame numbers of one size class
//! (Bonwick & Adams, "Magazines and Vmem", as used by drivers/iommu/iova.c).

/// Frame numbers per magazine (`IOVA_MAG_SIZE`; 127 so that the kernel's
/// magazine with its size word is exactly 1 KiB).
pub const IOVA_MAG_SIZE: usize = 127;

/// A stack of at most [`IOVA_MAG_SIZE`] first-frame numbers.
#[derive(Clone, Debug)]
pub(crate) struct Magazine {
    len: usize,
    pfns: [u64; IOVA_MAG_SIZE],
}

impl Magazine {
    pub(crate) const fn new() -> Self {
        Self {
            len: 0,
            pfns: [0; IOVA_MAG_SIZE],
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == IOVA_MAG_SIZE
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pushes `pfn`; false (and no change) if full.
    #[inline]
    pub(crate) fn push(&mut self, pfn: u64) -> bool {
        match self.pfns.get_mut(self.len) {
            Some(slot) => {
                *slot = pfn;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// `iova_magazine_pop`: the topmost frame `<= max_pfn`, swapped with the
    /// top entry and removed; `None` if no cached frame satisfies the limit.
    #[inline]
    pub(crate) fn pop(&mut self, max_pfn: u64) -> Option<u64> {
        let live = self.pfns.get(..self.len)?;
        let i = live.iter().rposition(|&p| p <= max_pfn)?;
        let pfn = live[i];
        self.len -= 1;
        self.pfns[i] = self.pfns[self.len];
        Some(pfn)
    }

    /// Keeps the frames for which `keep` is true, in stack order, and appends
    /// the others to `removed`.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(u64) -> bool,
        removed: &mut super::alloc::vec::Vec<u64>,
    ) {
        let mut kept = 0;
        for i in 0..self.len {
            let pfn = self.pfns[i];
            if keep(pfn) {
                self.pfns[kept] = pfn;
                kept += 1;
            } else {
                removed.push(pfn);
            }
        }
        self.len = kept;
    }

    /// Removes and returns every cached frame.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        let n = core::mem::replace(&mut self.len, 0);
        self.pfns[..n].iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_takes_topmost_fitting_entry() {
        let mut m = Magazine::new();
        for p in [10, 50, 20, 60] {
            assert!(m.push(p));
        }
        assert_eq!(m.pop(u64::MAX), Some(60));
        assert_eq!(m.pop(30), Some(20)); // 50 is above the limit
        assert_eq!(m.pop(5), None);
        assert_eq!(
            m.drain().collect::<super::super::alloc::vec::Vec<_>>(),
            [10, 50]
        );
        assert!(m.is_empty());
        for p in 0..IOVA_MAG_SIZE as u64 {
            assert!(m.push(p));
        }
        assert!(m.is_full());
        assert!(!m.push(999));
        let mut removed = super::super::alloc::vec::Vec::new();
        m.retain(|p| p % 2 == 0, &mut removed);
        assert_eq!(m.len(), IOVA_MAG_SIZE.div_ceil(2));
        assert_eq!(removed.len(), IOVA_MAG_SIZE / 2);
        assert_eq!(m.pop(u64::MAX), Some(IOVA_MAG_SIZE as u64 - 1));
    }
}
