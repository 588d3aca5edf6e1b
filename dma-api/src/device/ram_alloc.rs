//! A small first-fit page allocator over one RAM range (coherent buffers and
//! fallback bounce buffers; not a performance path).

use crate::error::DmaError;
use crate::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use alloc::collections::BTreeMap;
use hashbrown::HashMap;

/// First-fit allocator of page-rounded blocks.
///
/// # Invariants
/// `free` holds disjoint, non-adjacent (coalesced) page-aligned runs; `live`
/// holds the allocated blocks; together they tile the managed range.
#[derive(Debug)]
pub struct RamAllocator {
    free: BTreeMap<u64, u64>,
    live: HashMap<u64, u64>,
    in_use: u64,
}

impl RamAllocator {
    /// Manages `[start, start + len)`, shrunk to whole pages.
    pub fn new(start: PhysAddr, len: u64) -> Result<Self, DmaError> {
        let bad = DmaError::PhysOverflow { phys: start, len };
        let s = start.align_up(PAGE_SIZE).ok_or(bad.clone())?;
        let end = start.raw().checked_add(len).ok_or(bad)? & !(PAGE_SIZE - 1);
        let mut free = BTreeMap::new();
        if end > s.raw() {
            free.insert(s.raw(), end - s.raw());
        }
        Ok(Self {
            free,
            live: HashMap::new(),
            in_use: 0,
        })
    }

    /// Allocates `size` bytes rounded up to pages.
    pub fn alloc(&mut self, size: u64) -> Result<PhysAddr, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroLength {
                phys: PhysAddr::ZERO,
            });
        }
        let need = size
            .checked_add(PAGE_SIZE - 1)
            .map(|x| x & !(PAGE_SIZE - 1))
            .ok_or(DmaError::OutOfMemory { bytes: size })?;
        let (&start, &len) = self
            .free
            .iter()
            .find(|(_, &l)| l >= need)
            .ok_or(DmaError::OutOfMemory { bytes: size })?;
        self.free.remove(&start);
        if len > need {
            self.free.insert(start + need, len - need);
        }
        self.live.insert(start, need);
        self.in_use += need;
        Ok(PhysAddr::new(start))
    }

    /// Frees a block from [`RamAllocator::alloc`]; anything else is
    /// [`DmaError::NotMapped`].
    pub fn free(&mut self, phys: PhysAddr) -> Result<(), DmaError> {
        let len = self.live.remove(&phys.raw()).ok_or(DmaError::NotMapped {
            dma: DmaAddr::new(phys.raw()),
            len: 0,
        })?;
        self.in_use -= len;
        let (mut s, mut l) = (phys.raw(), len);
        if let Some((&ps, &pl)) = self.free.range(..s).next_back() {
            if ps + pl == s {
                self.free.remove(&ps);
                s = ps;
                l += pl;
            }
        }
        if let Some(&nl) = self.free.get(&(s + l)) {
            self.free.remove(&(s + l));
            l += nl;
        }
        self.free.insert(s, l);
        Ok(())
    }

    /// Bytes allocated.
    pub fn in_use(&self) -> u64 {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_coalescing() {
        let mut a = RamAllocator::new(PhysAddr::new(0x10_0000), 0x4000).unwrap();
        let x = a.alloc(1).unwrap();
        let y = a.alloc(0x2000).unwrap();
        assert_eq!((x.raw(), y.raw()), (0x10_0000, 0x10_1000));
        assert!(a.alloc(0x2000).is_err());
        a.free(x).unwrap();
        a.free(y).unwrap();
        assert!(a.free(y).is_err());
        assert_eq!(a.alloc(0x4000).unwrap().raw(), 0x10_0000);
        assert_eq!(a.in_use(), 0x4000);
    }
}
