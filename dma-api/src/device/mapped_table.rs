//! A mapped table whose direction is known only at run time, as a block
//! driver learns it from each request (`rq_dma_dir`). It owns the table while
//! mapped, shows both sides of it, syncs the whole table or a byte range of
//! it, and unmaps on drop. [`MappedSgTable`](super::MappedSgTable) is the
//! same with the direction as a type.

use super::raw::DmaDevice;
use super::segments::{segments, Segments};
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use alloc::sync::Arc;
use scatterlist::{DmaFlags, SgTable};

/// A table mapped on a device in a run-time [`Direction`].
///
/// # Invariants
/// `table` is mapped on `dev` in `dir` with `attrs` until drop or
/// [`MappedTable::unmap`].
#[derive(Debug)]
pub struct MappedTable {
    dev: Arc<DmaDevice>,
    table: SgTable,
    dir: Direction,
    attrs: DmaAttrs,
    armed: bool,
}

impl MappedTable {
    /// `dma_map_sgtable`; on error the table comes back unmapped.
    // The table's ownership returns with the error (the caller retries or
    // falls back with it); the error path is cold, so it is not boxed.
    #[allow(clippy::result_large_err)]
    pub fn map(
        dev: &Arc<DmaDevice>,
        mut table: SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<Self, (SgTable, DmaError)> {
        match dev.map_sgtable(&mut table, dir, attrs) {
            Ok(_) => Ok(Self {
                dev: dev.clone(),
                table,
                dir,
                attrs,
                armed: true,
            }),
            Err(e) => Err((table, e)),
        }
    }

    /// The direction it was mapped in.
    pub fn dir(&self) -> Direction {
        self.dir
    }

    /// Number of DMA segments.
    pub fn nents(&self) -> usize {
        self.table.nents()
    }

    /// The table, both sides: the CPU entries (what was mapped) and the DMA
    /// segments (what the device uses). Read-only while mapped.
    pub fn table(&self) -> &SgTable {
        &self.table
    }

    /// `{ dma address, length, route }` per DMA segment.
    pub fn segments(&self) -> Segments<'_> {
        segments(&self.table)
    }

    /// `dma_sync_sgtable_for_cpu`.
    pub fn sync_for_cpu(&self) -> Result<(), DmaError> {
        self.dev.sync_sgtable_for_cpu(&self.table, self.dir)
    }

    /// `dma_sync_sgtable_for_device`.
    pub fn sync_for_device(&self) -> Result<(), DmaError> {
        self.dev.sync_sgtable_for_device(&self.table, self.dir)
    }

    /// Syncs bytes `[offset, offset + len)` of the table's data (counted
    /// along its DMA segments) for the CPU: the part of each segment the
    /// range covers, like `dma_sync_single_range_for_cpu` per segment. Peer
    /// segments need nothing. A range past the end is
    /// [`DmaError::OutOfBounds`].
    pub fn sync_range_for_cpu(&self, offset: u64, len: u64) -> Result<(), DmaError> {
        self.sync_range(offset, len, true)
    }

    /// The `for_device` counterpart of [`MappedTable::sync_range_for_cpu`].
    pub fn sync_range_for_device(&self, offset: u64, len: u64) -> Result<(), DmaError> {
        self.sync_range(offset, len, false)
    }

    fn sync_range(&self, offset: u64, len: u64, for_cpu: bool) -> Result<(), DmaError> {
        let size = self.table.total_dma_len();
        if len == 0 || offset > size || len > size - offset {
            return Err(DmaError::OutOfBounds { offset, len, size });
        }
        let (start, end) = (offset, offset + len);
        let mut at = 0u64;
        for e in self.table.dma_iter() {
            let n = u64::from(e.dma_len());
            let (lo, hi) = (start.max(at), end.min(at + n));
            let f = e.dma_flags();
            let peer = f.contains(DmaFlags::BUS_ADDRESS) || f.contains(DmaFlags::MMIO);
            if lo < hi && !peer {
                let dma = crate::types::DmaAddr::new(e.dma_address().raw() + (lo - at));
                let backend = self.dev.raw_backend();
                if for_cpu {
                    backend.sync_for_cpu(dma, hi - lo, self.dir)?;
                } else {
                    backend.sync_for_device(dma, hi - lo, self.dir)?;
                }
            }
            at += n;
            if at >= end {
                break;
            }
        }
        Ok(())
    }

    /// `dma_unmap_sgtable`; returns the table (CPU side intact).
    pub fn unmap(mut self) -> Result<SgTable, DmaError> {
        self.armed = false;
        let r = self
            .dev
            .unmap_sgtable(&mut self.table, self.dir, self.attrs);
        r.map(|()| core::mem::take(&mut self.table))
    }
}

impl Drop for MappedTable {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self
                .dev
                .unmap_sgtable(&mut self.table, self.dir, self.attrs)
            {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}
