//! The slot pool: allocation, bookkeeping and the copies.

use super::{
    align_offset, max_mapping_size, SegBoundary, IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE,
};
use crate::attrs::DmaAttrs;
use crate::device::context_mem_error as mem_error;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::mem::CpuMem;
use crate::sync::{Mutex, MutexGuard};
use crate::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use alloc::vec;
use alloc::vec::Vec;
use hashbrown::HashMap;

const FREE: u32 = u32::MAX;

/// One live bounce mapping, recorded on its head slot.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    /// The original (CPU) physical address.
    orig: PhysAddr,
    /// The bounce address handed out (head slot start + alignment offset).
    tlb: PhysAddr,
    /// Mapped bytes.
    len: u64,
    /// Slots taken.
    nslots: u32,
}

#[derive(Debug)]
struct State {
    /// Per slot: index of the head slot of the mapping using it, or `FREE`.
    owner: Vec<u32>,
    /// Head slot index → mapping.
    maps: HashMap<u32, Mapping>,
    /// Where the next search starts (Linux `area->index`).
    hint: usize,
    used: u64,
    stats: SwiotlbStats,
}

/// Counters of a pool.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SwiotlbStats {
    /// Successful maps.
    pub maps: u64,
    /// Unmaps.
    pub unmaps: u64,
    /// Bytes copied original → bounce (map, sync for device).
    pub bytes_to_bounce: u64,
    /// Bytes copied bounce → original (sync for CPU, unmap).
    pub bytes_from_bounce: u64,
    /// Most slots ever in use at once (`io_tlb_used_hiwater`).
    pub hiwater_slots: u64,
    /// Maps refused because no slot run was free.
    pub full: u64,
}

/// A bounce-buffer pool at a fixed physical range of simulated RAM.
///
/// # Invariants
/// `owner[i] == h` for every slot `i` of the mapping whose head is `h`, and
/// `FREE` for every other slot; `maps` has exactly one entry per head; a
/// mapping's slots lie inside one `IO_TLB_SEGSIZE` segment; `used` counts the
/// slots that are not `FREE`.
#[derive(Debug)]
pub struct Swiotlb {
    start: PhysAddr,
    nslabs: usize,
    mem: CpuMem,
    state: Mutex<State>,
}

impl Swiotlb {
    /// A pool over `[start, start + size)` of `mem`. `start` must be
    /// slot-aligned and `size` a non-zero multiple of [`IO_TLB_SIZE`] that
    /// fits in `u32` slots; anything else is [`DmaError::NotTranslatable`]
    /// naming the range.
    pub fn new(mem: CpuMem, start: PhysAddr, size: u64) -> Result<Self, DmaError> {
        let bad = DmaError::NotTranslatable {
            phys: start,
            len: size,
        };
        if size == 0
            || !start.is_aligned(IO_TLB_SIZE)
            || !size.is_multiple_of(IO_TLB_SIZE)
            || start.last_of(size).is_none()
        {
            return Err(bad);
        }
        let nslabs = usize::try_from(size >> IO_TLB_SHIFT).map_err(|_| bad.clone())?;
        if nslabs >= FREE as usize {
            return Err(bad);
        }
        Ok(Self {
            start,
            nslabs,
            mem,
            state: Mutex::new(State {
                owner: vec![FREE; nslabs],
                maps: HashMap::new(),
                hint: 0,
                used: 0,
                stats: SwiotlbStats::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// First byte of the pool.
    pub fn start(&self) -> PhysAddr {
        self.start
    }

    /// Pool size in bytes.
    pub fn size(&self) -> u64 {
        (self.nslabs as u64) << IO_TLB_SHIFT
    }

    /// Number of slots (`nslabs`).
    pub fn nslabs(&self) -> usize {
        self.nslabs
    }

    /// Slots in use.
    pub fn used_slots(&self) -> u64 {
        self.lock().used
    }

    /// Live mappings.
    pub fn live_mappings(&self) -> usize {
        self.lock().maps.len()
    }

    /// Counters.
    pub fn stats(&self) -> SwiotlbStats {
        self.lock().stats
    }

    /// `is_swiotlb_buffer`: true if `phys` lies in the pool.
    pub fn contains(&self, phys: PhysAddr) -> bool {
        phys.offset_from(self.start)
            .is_some_and(|off| off < self.size())
    }

    /// The original address behind bounce address `tlb`, if it lies inside
    /// a live mapping.
    pub fn orig_of(&self, tlb: PhysAddr) -> Option<PhysAddr> {
        let st = self.lock();
        let (m, off) = Self::find(&st, self.start, tlb, 1).ok()?;
        m.orig.checked_add(off)
    }

    /// The length of the live mapping whose bounce address is exactly
    /// `tlb`, if any (what an unmap of it must pass).
    pub fn mapping_len(&self, tlb: PhysAddr) -> Option<u64> {
        let st = self.lock();
        let (m, off) = Self::find(&st, self.start, tlb, 1).ok()?;
        (off == 0).then_some(m.len)
    }

    /// `swiotlb_max_mapping_size` for a device with `min_align_mask`.
    pub fn max_mapping_size(&self, min_align_mask: u64) -> u64 {
        max_mapping_size(min_align_mask)
    }

    /// `swiotlb_tbl_map_single(orig, len, len, 0, dir, attrs)`: takes slots
    /// and copies the original into them (every direction, see the module
    /// docs). Returns the bounce physical address, whose low bits under
    /// `min_align_mask` equal `orig`'s. No segment boundary is honoured: see
    /// [`Swiotlb::map_bounded`].
    pub fn map(
        &self,
        orig: PhysAddr,
        len: u64,
        dir: Direction,
        attrs: DmaAttrs,
        min_align_mask: u64,
    ) -> Result<PhysAddr, DmaError> {
        self.map_bounded(orig, len, dir, attrs, min_align_mask, SegBoundary::NONE)
    }

    /// [`Swiotlb::map`] for a device with a segment boundary: the slots
    /// taken never span a multiple of `boundary.mask + 1` in the device's
    /// DMA address space (kernel/dma/swiotlb.c `swiotlb_search_pool_area`
    /// with `dma_get_seg_boundary`, the span test of
    /// include/linux/iommu-helper.h `iommu_is_span_boundary`), so the bounce
    /// buffer does not cross it either.
    pub fn map_bounded(
        &self,
        orig: PhysAddr,
        len: u64,
        _dir: Direction,
        _attrs: DmaAttrs,
        min_align_mask: u64,
        boundary: SegBoundary,
    ) -> Result<PhysAddr, DmaError> {
        let offset = align_offset(min_align_mask, orig.raw());
        let alloc = len.saturating_add(offset);
        // kernel/dma/swiotlb.c `swiotlb_search_pool_area`: with no alignment
        // asked for (streaming maps pass no alloc_align_mask) and no
        // min_align_mask, an allocation of a page or more starts on a page
        // ("historically ... guaranteed to be page-aligned"); otherwise the
        // head slot keeps `orig`'s bits under the min-align mask above the
        // slot size. (Matching `orig`'s page offset instead, as this did
        // before, bounced a 4 KiB buffer at 0x2000_0800 to an address ending
        // in 0x800; issue 11, bug 9.)
        let zero_mask = if min_align_mask == 0 && alloc >= PAGE_SIZE {
            PAGE_SIZE - 1
        } else {
            0
        };
        let match_mask = min_align_mask & !(IO_TLB_SIZE - 1) & !zero_mask;
        self.map_inner(
            orig,
            len,
            min_align_mask,
            offset,
            alloc,
            match_mask,
            zero_mask,
            boundary,
        )
    }

    /// `swiotlb_tbl_map_single(orig, len, alloc_align_mask, dir, attrs)`
    /// with a non-zero `alloc_align_mask` (drivers/iommu/dma-iommu.c
    /// `iommu_dma_map_swiotlb` passes the IOVA granule mask): the slots taken
    /// cover `ALIGN(len + offset, alloc_align_mask + 1)` bytes from a head
    /// slot aligned to `alloc_align_mask + 1`, so whole granules around the
    /// bounce buffer belong to this mapping and no other mapping shares
    /// them. `offset` is `orig & min_align_mask & (alloc_align_mask |
    /// (IO_TLB_SIZE - 1))` (`swiotlb_align_offset`). `alloc_align_mask` must
    /// be `2^n - 1`; anything else is [`DmaError::InvalidMaskValue`].
    pub fn map_aligned(
        &self,
        orig: PhysAddr,
        len: u64,
        _dir: Direction,
        _attrs: DmaAttrs,
        min_align_mask: u64,
        alloc_align_mask: u64,
    ) -> Result<PhysAddr, DmaError> {
        if alloc_align_mask.wrapping_add(1) & alloc_align_mask != 0 {
            return Err(DmaError::InvalidMaskValue {
                value: alloc_align_mask,
            });
        }
        let offset = orig.raw() & min_align_mask & (alloc_align_mask | (IO_TLB_SIZE - 1));
        let alloc = len
            .checked_add(offset)
            .and_then(|a| a.checked_add(alloc_align_mask))
            .map(|a| a & !alloc_align_mask)
            .ok_or(DmaError::PhysOverflow { phys: orig, len })?;
        // Linux: the head slot is aligned to the allocation mask; the
        // minimum-alignment bits it does not cover must match the original.
        let zero_mask = alloc_align_mask & !(IO_TLB_SIZE - 1);
        let match_mask = min_align_mask & !alloc_align_mask & !(IO_TLB_SIZE - 1);
        self.map_inner(
            orig,
            len,
            min_align_mask,
            offset,
            alloc,
            match_mask,
            zero_mask,
            SegBoundary::NONE,
        )
    }

    /// Zeroes the bytes of `[align_down(tlb, align), align_up(tlb + len,
    /// align))` outside `[tlb, tlb + len)` — the pre- and post-padding
    /// `iommu_dma_map_swiotlb` clears for untrusted devices, so they never see
    /// stale pool data. The whole span must belong to the live mapping at
    /// `tlb` (a [`Swiotlb::map_aligned`] mapping with `align - 1` as its
    /// allocation mask); otherwise [`DmaError::NotMapped`].
    pub fn zero_padding(&self, tlb: PhysAddr, len: u64, align: u64) -> Result<(), DmaError> {
        let err = DmaError::NotMapped {
            dma: DmaAddr::new(tlb.raw()),
            len,
        };
        if align == 0 || align & (align - 1) != 0 {
            return Err(DmaError::InvalidMaskValue {
                value: align.wrapping_sub(1),
            });
        }
        let (m, head) = {
            let st = self.lock();
            let (m, off) = Self::find(&st, self.start, tlb, len)?;
            if off != 0 || m.len != len {
                return Err(err);
            }
            // `find` succeeded, so the slot of `tlb` has an owner.
            let idx = usize::try_from((tlb.raw() - self.start.raw()) >> IO_TLB_SHIFT)
                .map_err(|_| err.clone())?;
            let head = st.owner.get(idx).copied().ok_or(err.clone())?;
            (m, head)
        };
        let lo = tlb.raw() & !(align - 1);
        let end = tlb.raw().checked_add(len).ok_or(err.clone())?;
        let hi = end
            .checked_add(align - 1)
            .map(|e| e & !(align - 1))
            .ok_or(err.clone())?;
        let head = self.start.raw() + (u64::from(head) << IO_TLB_SHIFT);
        let slots_end = head + u64::from(m.nslots) * IO_TLB_SIZE;
        if lo < head || hi > slots_end {
            return Err(err);
        }
        for (a, n) in [(lo, tlb.raw() - lo), (end, hi - end)] {
            if n == 0 {
                continue;
            }
            let a = PhysAddr::new(a);
            self.mem.zero(a, n).map_err(|e| mem_error(e, a, n))?;
        }
        Ok(())
    }

    /// The common part of the maps: `alloc` bytes of slots whose head
    /// matches `orig` under `match_mask` and is zero under `zero_mask`; the
    /// bounce address is the head plus `offset`.
    #[allow(clippy::too_many_arguments)]
    fn map_inner(
        &self,
        orig: PhysAddr,
        len: u64,
        min_align_mask: u64,
        offset: u64,
        alloc: u64,
        match_mask: u64,
        zero_mask: u64,
        boundary: SegBoundary,
    ) -> Result<PhysAddr, DmaError> {
        if len == 0 {
            return Err(DmaError::ZeroLength { phys: orig });
        }
        if orig.last_of(len).is_none() {
            return Err(DmaError::PhysOverflow { phys: orig, len });
        }
        let max = max_mapping_size(min_align_mask);
        if len > max {
            return Err(DmaError::MappingTooLarge { len, max });
        }
        let nslots = alloc.div_ceil(IO_TLB_SIZE);
        if nslots > IO_TLB_SEGSIZE {
            return Err(DmaError::MappingTooLarge {
                len,
                max: (IO_TLB_SEGSIZE * IO_TLB_SIZE).saturating_sub(alloc - len),
            });
        }
        let mut st = self.lock();
        let found = self.find_slots(&st, orig, nslots as usize, match_mask, zero_mask, boundary);
        let Some(head) = found else {
            st.stats.full += 1;
            return Err(DmaError::SwiotlbFull { len, slots: nslots });
        };
        let tlb = PhysAddr::new(self.start.raw() + ((head as u64) << IO_TLB_SHIFT) + offset);
        for o in st.owner.iter_mut().skip(head).take(nslots as usize) {
            *o = head as u32;
        }
        st.maps.insert(
            head as u32,
            Mapping {
                orig,
                tlb,
                len,
                nslots: nslots as u32,
            },
        );
        st.hint = (head + nslots as usize) % self.nslabs;
        st.used += nslots;
        st.stats.maps += 1;
        st.stats.hiwater_slots = st.stats.hiwater_slots.max(st.used);
        drop(st);
        if let Err(e) = self.copy(orig, tlb, len) {
            self.release(tlb);
            return Err(e);
        }
        self.lock().stats.bytes_to_bounce += len;
        Ok(tlb)
    }

    /// First-fit search from the hint, honouring alignment and segments.
    fn find_slots(
        &self,
        st: &State,
        orig: PhysAddr,
        nslots: usize,
        align_mask: u64,
        zero_mask: u64,
        boundary: SegBoundary,
    ) -> Option<usize> {
        if nslots == 0 || nslots as u64 > IO_TLB_SEGSIZE || nslots > self.nslabs {
            return None;
        }
        let seg = IO_TLB_SEGSIZE as usize;
        // Linux counts the boundary in slots from the pool's DMA address
        // (`get_max_slots`, `nr_slots(tbl_dma_addr)`): a boundary below one
        // slot lets single slots through, as there.
        let span = (boundary.mask != u64::MAX).then(|| {
            let max_slots = (boundary.mask >> IO_TLB_SHIFT) + 1;
            let shift = (boundary.pool_dma.raw() & boundary.mask).div_ceil(IO_TLB_SIZE);
            (max_slots, shift)
        });
        for k in 0..self.nslabs {
            let idx = (st.hint + k) % self.nslabs;
            let slot_addr = self.start.raw() + ((idx as u64) << IO_TLB_SHIFT);
            // Linux skips the check for orig == 0.
            if orig.raw() != 0 && slot_addr & align_mask != orig.raw() & align_mask {
                continue;
            }
            if slot_addr & zero_mask != 0 {
                continue;
            }
            if idx % seg + nslots > seg || idx + nslots > self.nslabs {
                continue;
            }
            if let Some((max_slots, shift)) = span {
                // `iommu_is_span_boundary(idx, nslots, shift, max_slots)`.
                let off = (shift + idx as u64) & (max_slots - 1);
                if off + nslots as u64 > max_slots {
                    continue;
                }
            }
            if st.owner[idx..idx + nslots].iter().all(|&o| o == FREE) {
                return Some(idx);
            }
        }
        None
    }

    /// The mapping holding `[tlb, tlb + len)` and the offset of `tlb` in it.
    fn find(
        st: &State,
        start: PhysAddr,
        tlb: PhysAddr,
        len: u64,
    ) -> Result<(Mapping, u64), DmaError> {
        let err = DmaError::NotMapped {
            dma: DmaAddr::new(tlb.raw()),
            len,
        };
        let idx = tlb.offset_from(start).ok_or(err.clone())? >> IO_TLB_SHIFT;
        let head = usize::try_from(idx)
            .ok()
            .and_then(|i| st.owner.get(i))
            .copied()
            .filter(|&h| h != FREE)
            .ok_or(err.clone())?;
        let m = *st.maps.get(&head).ok_or(err.clone())?;
        let off = tlb.offset_from(m.tlb).ok_or(err.clone())?;
        if len == 0 || off >= m.len || len > m.len - off {
            return Err(err);
        }
        Ok((m, off))
    }

    fn copy(&self, from: PhysAddr, to: PhysAddr, len: u64) -> Result<(), DmaError> {
        self.mem
            .copy(to, from, len)
            .map_err(|e| mem_error(e, from, len))
    }

    /// `swiotlb_bounce`: copies `[tlb, tlb + len)` toward the device
    /// (original → bounce) or back (bounce → original).
    fn bounce(&self, tlb: PhysAddr, len: u64, to_device: bool) -> Result<(), DmaError> {
        let (m, off) = Self::find(&self.lock(), self.start, tlb, len)?;
        let orig = PhysAddr::new(m.orig.raw() + off);
        if to_device {
            self.copy(orig, tlb, len)?;
            self.lock().stats.bytes_to_bounce += len;
        } else {
            self.copy(tlb, orig, len)?;
            self.lock().stats.bytes_from_bounce += len;
        }
        Ok(())
    }

    /// `swiotlb_sync_single_for_device`: original → bounce for `ToDevice` and
    /// `Bidirectional`; nothing for `FromDevice`. Sub-ranges allowed.
    pub fn sync_for_device(&self, tlb: PhysAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        if dir.device_reads() {
            self.bounce(tlb, len, true)
        } else {
            Self::find(&self.lock(), self.start, tlb, len).map(|_| ())
        }
    }

    /// `swiotlb_sync_single_for_cpu`: bounce → original for `FromDevice` and
    /// `Bidirectional`; nothing for `ToDevice`. Sub-ranges allowed.
    pub fn sync_for_cpu(&self, tlb: PhysAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        if dir.device_writes() {
            self.bounce(tlb, len, false)
        } else {
            Self::find(&self.lock(), self.start, tlb, len).map(|_| ())
        }
    }

    /// `swiotlb_tbl_unmap_single`: the CPU-direction copy (unless
    /// `SKIP_CPU_SYNC`), then the slots are freed. `tlb` must be the address
    /// [`Swiotlb::map`] returned and `len` its length.
    pub fn unmap(
        &self,
        tlb: PhysAddr,
        len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let (m, off) = Self::find(&self.lock(), self.start, tlb, len)?;
        if off != 0 || m.len != len {
            return Err(DmaError::NotMapped {
                dma: DmaAddr::new(tlb.raw()),
                len,
            });
        }
        let copied = if !attrs.contains(DmaAttrs::SKIP_CPU_SYNC) && dir.device_writes() {
            self.copy(tlb, m.orig, len).map(|_| len)
        } else {
            Ok(0)
        };
        self.release(tlb);
        let mut st = self.lock();
        st.stats.unmaps += 1;
        st.stats.bytes_from_bounce += *copied.as_ref().unwrap_or(&0);
        copied.map(|_| ())
    }

    /// `swiotlb_release_slots`.
    fn release(&self, tlb: PhysAddr) {
        let mut st = self.lock();
        let Some(idx) = tlb
            .offset_from(self.start)
            .and_then(|o| usize::try_from(o >> IO_TLB_SHIFT).ok())
        else {
            return;
        };
        let Some(&head) = st.owner.get(idx) else {
            return;
        };
        if let Some(m) = st.maps.remove(&head) {
            let h = head as usize;
            for o in st.owner.iter_mut().skip(h).take(m.nslots as usize) {
                *o = FREE;
            }
            st.used -= u64::from(m.nslots);
        }
    }
}
