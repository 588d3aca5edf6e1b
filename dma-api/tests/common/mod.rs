//! A small, real backend for the decorator tests: it hands out DMA addresses
//! (identity + offset like dma-direct, or from a bump IOVA space that packs a
//! table's RAM entries into one segment like dma-iommu), keeps its own list
//! of live mappings, and refuses to unmap or sync what it did not map. It
//! counts the coherent allocations it maps, so a test can see that a
//! decorator forwarded `map_coherent` instead of turning it into a `map`.
#![allow(dead_code)]

use dma_api::port::{CoherentRequest, DmaBackend, MapRequest, SegPlan, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, Iova, PhysAddr};
use scatterlist::{DmaFlags, SegKind, SgTable};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How [`Arena`] assigns addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// `dma = phys + offset`; one DMA segment per CPU entry.
    Offset(u64),
    /// Fresh IOVA per mapping from a bump pointer; a table's consecutive RAM
    /// entries share one segment, peer-bus entries get their bus address.
    Iova,
}

/// The test backend.
#[derive(Debug)]
pub struct Arena {
    mode: Mode,
    next: Mutex<u64>,
    /// Live mappings: DMA start -> lengths (several for identical addresses).
    live: Mutex<HashMap<u64, Vec<u64>>>,
    /// `map_coherent` calls that reached the arena.
    coherent_maps: AtomicU64,
}

pub const IOVA_BASE: u64 = 0x8000_0000;
pub const OFFSET: u64 = 0x1_0000_0000;

impl Arena {
    pub fn direct() -> Self {
        Self::new(Mode::Offset(OFFSET))
    }
    pub fn iommu() -> Self {
        Self::new(Mode::Iova)
    }
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            next: Mutex::new(IOVA_BASE),
            live: Mutex::new(HashMap::new()),
            coherent_maps: AtomicU64::new(0),
        }
    }
    /// `map_coherent` calls that reached the arena itself.
    pub fn coherent_maps(&self) -> u64 {
        self.coherent_maps.load(Ordering::Relaxed)
    }
    /// Number of live mappings the backend itself holds.
    pub fn live_count(&self) -> usize {
        self.live.lock().unwrap().values().map(Vec::len).sum()
    }
    fn alloc(&self, phys: PhysAddr, len: u64) -> Result<DmaAddr, DmaError> {
        match self.mode {
            Mode::Offset(off) => phys
                .raw()
                .checked_add(off)
                .map(DmaAddr::new)
                .ok_or(DmaError::PhysOverflow { phys, len }),
            Mode::Iova => {
                let mut next = self.next.lock().unwrap();
                let start = *next + phys.page_offset();
                let end = start
                    .checked_add(len)
                    .ok_or(DmaError::OutOfMemory { bytes: len })?;
                *next = end.div_ceil(4096) * 4096 + 4096; // guard page
                Ok(DmaAddr::new(start))
            }
        }
    }
    fn add_live(&self, dma: DmaAddr, len: u64) {
        self.live
            .lock()
            .unwrap()
            .entry(dma.raw())
            .or_default()
            .push(len);
    }
    fn remove_live(&self, dma: DmaAddr, len: u64) -> Result<(), DmaError> {
        let mut live = self.live.lock().unwrap();
        let unknown = DmaError::IovaRangeInvalid {
            iova: dma.as_iova(),
            len,
        };
        let v = live.get_mut(&dma.raw()).ok_or(unknown.clone())?;
        let i = v.iter().position(|&l| l == len).ok_or(unknown)?;
        v.remove(i);
        if v.is_empty() {
            live.remove(&dma.raw());
        }
        Ok(())
    }
    fn check_live(&self, dma: DmaAddr, len: u64) -> Result<(), DmaError> {
        let live = self.live.lock().unwrap();
        let ok = live.iter().any(|(&s, lens)| {
            lens.iter()
                .any(|&l| s <= dma.raw() && dma.raw().saturating_add(len) <= s + l)
        });
        if ok {
            Ok(())
        } else {
            Err(DmaError::IovaRangeInvalid {
                iova: Iova::new(dma.raw()),
                len,
            })
        }
    }
}

impl DmaBackend for Arena {
    fn name(&self) -> &str {
        "arena"
    }
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        if req.len == 0 {
            return Err(DmaError::ZeroLength { phys: req.phys });
        }
        if let SegTarget::PeerBus(bus) = req.target {
            return Ok(DmaAddr::from_bus(bus));
        }
        let dma = self.alloc(req.phys, req.len)?;
        self.add_live(dma, req.len);
        Ok(dma)
    }
    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        if matches!(req.target, SegTarget::PeerBus(_)) {
            return Ok(());
        }
        self.remove_live(dma, req.len)
    }
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        self.coherent_maps.fetch_add(1, Ordering::Relaxed);
        self.map(&req.as_map_request())
    }
    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        _dir: Direction,
        _attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let cpu: Vec<(u64, SegPlan)> = table
            .iter()
            .map(|e| u64::from(e.len()))
            .zip(plan.iter().copied())
            .collect();
        let mut segs: Vec<(DmaAddr, u64, DmaFlags)> = Vec::new();
        for (len, p) in cpu {
            if let SegTarget::PeerBus(bus) = p.target {
                segs.push((DmaAddr::from_bus(bus), len, DmaFlags::BUS_ADDRESS));
                continue;
            }
            match (self.mode, segs.last_mut()) {
                (Mode::Iova, Some((d, l, f))) if f.is_empty() => {
                    // Extend the previous IOVA segment: the bump allocator is
                    // re-pointed past it.
                    let mut next = self.next.lock().unwrap();
                    *l += len;
                    *next = (d.raw() + *l).div_ceil(4096) * 4096 + 4096;
                }
                _ => {
                    let dma = self.alloc(p.phys, len)?;
                    segs.push((dma, len, DmaFlags::EMPTY));
                }
            }
        }
        for (s, &(dma, len, flags)) in table.dma_iter_mut().zip(segs.iter()) {
            s.set_dma(dma, len, flags).map_err(DmaError::Sg)?;
        }
        for &(dma, len, flags) in &segs {
            if flags.is_empty() {
                self.add_live(dma, len);
            }
        }
        table.set_nents(segs.len()).map_err(DmaError::Sg)?;
        Ok(segs.len())
    }
    fn unmap_sg(
        &self,
        table: &mut SgTable,
        _plan: &[SegPlan],
        _dir: Direction,
        _attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let segs: Vec<(DmaAddr, u64, DmaFlags)> = table
            .dma_iter()
            .map(|s| (s.dma_address(), u64::from(s.dma_len()), s.dma_flags()))
            .collect();
        let mut first_err = None;
        for (dma, len, flags) in segs {
            if flags.contains(DmaFlags::BUS_ADDRESS) {
                continue;
            }
            if let Err(e) = self.remove_live(dma, len) {
                first_err.get_or_insert(e);
            }
        }
        table.clear_dma();
        first_err.map_or(Ok(()), Err)
    }
    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, _dir: Direction) -> Result<(), DmaError> {
        self.check_live(dma, len)
    }
    fn sync_for_device(&self, dma: DmaAddr, len: u64, _dir: Direction) -> Result<(), DmaError> {
        self.check_live(dma, len)
    }
    fn need_sync(&self, _dma: DmaAddr) -> bool {
        true
    }
    fn max_mapping_size(&self) -> u64 {
        u64::MAX
    }
    fn opt_mapping_size(&self) -> u64 {
        128 * 1024
    }
    fn merge_boundary(&self) -> u64 {
        match self.mode {
            Mode::Iova => 4095,
            Mode::Offset(_) => 0,
        }
    }
}

/// A RAM request without attributes.
pub fn ram(phys: u64, len: u64, dir: Direction) -> MapRequest {
    MapRequest {
        phys: PhysAddr::new(phys),
        len,
        dir,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    }
}

/// A table over `ranges` (non-touching) and its all-RAM plan.
pub fn table(ranges: &[(u64, u64)]) -> (SgTable, Vec<SegPlan>) {
    let r: Vec<(PhysAddr, u64)> = ranges.iter().map(|&(p, l)| (PhysAddr::new(p), l)).collect();
    let t = SgTable::from_ranges(&r, SegKind::Ram, 1 << 20).unwrap();
    let plan = t
        .iter()
        .map(|e| SegPlan {
            phys: e.phys(),
            target: SegTarget::Ram,
        })
        .collect();
    (t, plan)
}
