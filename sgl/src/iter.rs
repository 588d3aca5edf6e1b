//! Walking a table: the CPU view (`orig_nents` entries) and the DMA view
//! (`nents` entries), following chain links and never yielding them
//! (Linux `sg_next`, `for_each_sgtable_sg`, `for_each_sgtable_dma_sg`).

use crate::entry::SgEntry;
use core::iter::FusedIterator;
use core::slice;

macro_rules! view_iter {
    ($(#[$m:meta])* $name:ident, $item:ty, $slice_iter:ident, $slice:ty) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name<'a> {
            slots: slice::$slice_iter<'a, SgEntry>,
            left: usize,
        }

        impl<'a> $name<'a> {
            #[inline]
            pub(crate) fn new(slots: $slice, count: usize) -> Self {
                Self {
                    slots: slots.into_iter(),
                    left: count,
                }
            }
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item;

            #[inline]
            fn next(&mut self) -> Option<Self::Item> {
                if self.left == 0 {
                    return None;
                }
                for s in self.slots.by_ref() {
                    if !s.is_chain() {
                        self.left -= 1;
                        return Some(s);
                    }
                }
                self.left = 0;
                None
            }

            /// Exact: tables always hold at least `count` data slots.
            #[inline]
            fn size_hint(&self) -> (usize, Option<usize>) {
                (self.left, Some(self.left))
            }
        }

        impl ExactSizeIterator for $name<'_> {}
        impl FusedIterator for $name<'_> {}
    };
}

view_iter!(
    /// CPU-view iterator over the `orig_nents` entries of a table.
    CpuIter, &'a SgEntry, Iter, &'a [SgEntry]
);
view_iter!(
    /// DMA-view iterator over the `nents` entries of a table.
    DmaIter, &'a SgEntry, Iter, &'a [SgEntry]
);
view_iter!(
    /// Mutable CPU-view iterator (only the DMA side of an entry is settable).
    CpuIterMut, &'a mut SgEntry, IterMut, &'a mut [SgEntry]
);
view_iter!(
    /// Mutable DMA-view iterator.
    DmaIterMut, &'a mut SgEntry, IterMut, &'a mut [SgEntry]
);
