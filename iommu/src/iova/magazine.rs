//! A magazine: a fixed stack of cached IOVA frame numbers of one size class
//! (Bonwick & Adams, "Magazines and Vmem", as used by drivers/iommu/iova.c).

/// Frame numbers per magazine (`IOVA_MAG_SIZE`; 127 so that the kernel's
/// magazine with its size word is exactly 1 KiB).
pub const IOVA_MAG_SIZE: usize = 127;

/// A stack of at most [`IOVA_MAG_SIZE`] first-frame numbers.
///
/// The frames live in a vector that gets its [`IOVA_MAG_SIZE`] slots on the
/// first push, not when the magazine is made: a domain starts with two empty
/// magazines per size class and CPU (24 with two CPUs), and a machine with
/// thousands of IOMMU groups would otherwise zero a kilobyte for each of
/// them before any DMA (`iova_domain_init_rcaches` allocates them up front;
/// the difference is only when the memory is taken).
#[derive(Clone, Debug, Default)]
pub(crate) struct Magazine {
    pfns: super::alloc::vec::Vec<u64>,
}

impl Magazine {
    /// An empty magazine; allocates nothing.
    pub(crate) const fn new() -> Self {
        Self {
            pfns: super::alloc::vec::Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.pfns.len()
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.pfns.len() == IOVA_MAG_SIZE
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pfns.is_empty()
    }

    /// Pushes `pfn`; false (and no change) if full.
    #[inline]
    pub(crate) fn push(&mut self, pfn: u64) -> bool {
        if self.pfns.len() >= IOVA_MAG_SIZE {
            return false;
        }
        if self.pfns.capacity() == 0 {
            self.pfns.reserve_exact(IOVA_MAG_SIZE);
        }
        self.pfns.push(pfn);
        true
    }

    /// `iova_magazine_pop`: the topmost frame `<= max_pfn`, swapped with the
    /// top entry and removed; `None` if no cached frame satisfies the limit.
    #[inline]
    pub(crate) fn pop(&mut self, max_pfn: u64) -> Option<u64> {
        let i = self.pfns.iter().rposition(|&p| p <= max_pfn)?;
        Some(self.pfns.swap_remove(i))
    }

    /// Keeps the frames for which `keep` is true, in stack order, and appends
    /// the others to `removed`.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(u64) -> bool,
        removed: &mut super::alloc::vec::Vec<u64>,
    ) {
        self.pfns.retain(|&pfn| {
            let k = keep(pfn);
            if !k {
                removed.push(pfn);
            }
            k
        });
    }

    /// Removes and returns every cached frame.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        self.pfns.drain(..)
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

    /// A new magazine takes no frame storage until its first push, then
    /// exactly one magazine's worth.
    #[test]
    fn storage_comes_with_the_first_push() {
        let mut m = Magazine::new();
        assert_eq!(m.pfns.capacity(), 0);
        assert_eq!(m.pop(u64::MAX), None);
        assert!(m.push(7));
        assert_eq!(m.pfns.capacity(), IOVA_MAG_SIZE);
    }
}
