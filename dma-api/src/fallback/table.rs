//! Map-or-fallback for a whole table, entry by entry: only the entries the
//! device cannot reach as they are (a `Fallback`-kind refusal: P2P
//! unreachable, arch veto, provider refusal, MMIO that would need bouncing)
//! are staged through system RAM; every other entry maps in place. Linux has
//! no equivalent: a block request with one unreachable peer segment fails
//! whole (`BLK_STS_INVAL`) and the caller retries everything through RAM.

use super::copy_between;
use crate::attrs::DmaAttrs;
use crate::device::DmaDevice;
use crate::direction::Direction;
use crate::error::{DmaError, ErrorKind};
use crate::mem::CpuMemory;
use crate::types::{PhysAddr, SegKind};
use alloc::sync::Arc;
use alloc::vec::Vec;
use scatterlist::SgTable;

/// One entry [`map_sgtable_or_fallback`] staged through RAM.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BouncedEntry {
    /// The entry's index in the caller's table.
    pub index: usize,
    /// Its original (peer) range start.
    pub orig: PhysAddr,
    /// Its length.
    pub len: u64,
    /// The RAM staging buffer mapped in its place.
    pub bounce: PhysAddr,
    /// Why it could not be mapped as it was (the entry's `Fallback` error).
    pub reason: DmaError,
}

/// A table mapped by [`map_sgtable_or_fallback`]. The device uses
/// [`TableFallback::table`]'s DMA side; call [`TableFallback::complete`]
/// when it is done.
///
/// # Invariants
/// `table` is mapped for `dir` on `dev`; each bounced entry's RAM buffer was
/// allocated from the device's context and appears in `table` in place of
/// the original entry.
#[must_use = "complete() unmaps, copies the device's writes back and frees the staging RAM"]
#[derive(Debug)]
pub struct TableFallback {
    dev: Arc<DmaDevice>,
    table: SgTable,
    dir: Direction,
    attrs: DmaAttrs,
    bounced: Vec<BouncedEntry>,
    peer: Arc<dyn CpuMemory>,
}

impl TableFallback {
    /// The mapped table (its DMA side is what the device is programmed with).
    pub fn table(&self) -> &SgTable {
        &self.table
    }

    /// The entries staged through RAM, in index order, each with its reason.
    pub fn bounced(&self) -> &[BouncedEntry] {
        &self.bounced
    }

    /// Unmaps; copies each bounced entry back to its peer memory when the
    /// device wrote (`FromDevice`/`Bidirectional`); frees the staging RAM.
    /// Every step is attempted; the first error is returned.
    pub fn complete(mut self) -> Result<(), DmaError> {
        let mut first = self
            .dev
            .unmap_sgtable(&mut self.table, self.dir, self.attrs)
            .err();
        let ctx = self.dev.context().clone();
        for b in &self.bounced {
            if self.dir.device_writes() {
                if let Err(e) = copy_between(
                    ctx.mem.as_ref(),
                    b.bounce,
                    self.peer.as_ref(),
                    b.orig,
                    b.len,
                ) {
                    first.get_or_insert(e);
                }
            }
            if let Err(e) = ctx.free_ram(b.bounce) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Maps `table` for `dev`, staging exactly the entries that need it through
/// system RAM (copied in from `peer` first, always, so a partial device
/// write leaves the rest intact, as swiotlb does). An entry refused for any
/// other reason (`Invalid`: not peer memory, a forged kind; `NoResources`)
/// fails the whole call with that entry's error, and nothing stays mapped or
/// allocated.
pub fn map_sgtable_or_fallback(
    dev: &Arc<DmaDevice>,
    table: &SgTable,
    dir: Direction,
    attrs: DmaAttrs,
    peer: Arc<dyn CpuMemory>,
) -> Result<TableFallback, DmaError> {
    // Per entry: `None` maps as it is, `Some(reason)` is staged through RAM.
    // An entry its provider redirects to several RAM ranges has no one plan
    // but maps fine in a table (the map expands it): not an entry to stage.
    let mut stage: Vec<Option<DmaError>> = Vec::with_capacity(table.orig_nents());
    for p in dev.plan_entries(table, dir, attrs) {
        match p {
            Ok(_) => stage.push(None),
            Err(e) if matches!(e.root_cause(), DmaError::RedirectScattered { .. }) => {
                stage.push(None)
            }
            Err(e) if e.kind() == ErrorKind::Fallback => stage.push(Some(e)),
            Err(e) => return Err(e),
        }
    }
    let ctx = dev.context().clone();
    let mut bounced: Vec<BouncedEntry> = Vec::new();
    let mut ranges: Vec<(PhysAddr, u64, SegKind)> = Vec::with_capacity(stage.len());
    let undo = |bounced: &[BouncedEntry]| {
        for b in bounced {
            if let Err(e) = ctx.free_ram(b.bounce) {
                ctx.report_drop_error(e);
            }
        }
    };
    for ((index, e), reason) in table.iter().enumerate().zip(&stage) {
        let (orig, len, kind) = (e.phys(), u64::from(e.len()), e.kind());
        let Some(reason) = reason else {
            ranges.push((orig, len, kind));
            continue;
        };
        let staged = ctx.alloc_ram(len).and_then(|bounce| {
            match copy_between(peer.as_ref(), orig, ctx.mem.as_ref(), bounce, len) {
                Ok(()) => Ok(bounce),
                Err(e) => {
                    if let Err(f) = ctx.free_ram(bounce) {
                        ctx.report_drop_error(f);
                    }
                    Err(e)
                }
            }
        });
        match staged {
            Ok(bounce) => {
                ranges.push((bounce, len, SegKind::Ram));
                bounced.push(BouncedEntry {
                    index,
                    orig,
                    len,
                    bounce,
                    reason: reason.clone(),
                });
            }
            Err(e) => {
                undo(&bounced);
                return Err(DmaError::at_entry(index, orig, len, kind, e));
            }
        }
    }
    let max_segment = table
        .iter()
        .map(|e| u64::from(e.len()))
        .max()
        .unwrap_or(0)
        .max(crate::types::PAGE_SIZE)
        .next_power_of_two();
    let mut staged = match SgTable::from_kinded_ranges(&ranges, max_segment) {
        Ok(t) => t,
        Err(e) => {
            undo(&bounced);
            return Err(e.into());
        }
    };
    if let Err(e) = dev.map_sgtable(&mut staged, dir, attrs) {
        undo(&bounced);
        return Err(e);
    }
    Ok(TableFallback {
        dev: dev.clone(),
        table: staged,
        dir,
        attrs,
        bounced,
        peer,
    })
}
