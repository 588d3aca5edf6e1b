//! Tables classified once and mapped many times.
//!
//! [`DmaDevice::map_sgtable`] trusts no kind a table claims: every map checks
//! each entry against the memory map and the device's segment rules. A
//! driver that maps the same table again and again (a ring of I/O buffers, a
//! registered memory region) pays that per map. A [`ClassifiedTable`] pays it
//! once: [`DmaDevice::classify`] checks the table and stamps it with what it
//! was checked against — the memory map's generation, the device and its
//! constraints. A map under an unchanged stamp skips the checks (the
//! dispatcher still decides every non-RAM entry: policies, oracle and arch
//! veto are per map); a map after any change (hot-plug, a new BAR, a
//! constraint set) checks again and renews the stamp. The table's CPU side
//! cannot be edited through the wrapper, so the stamp cannot go stale
//! behind the device's back.
//!
//! Linux has no counterpart because it needs none: a page's pgmap is part of
//! the page. This is how the flag design gets there without trusting the
//! caller (RFC §5.7).

use super::raw::Stamp;
use super::DmaDevice;
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::types::PhysAddr;
use scatterlist::SgTable;

/// A scatter-gather table whose entries' kinds were checked against the
/// memory map, and whose CPU entries against one device's segment rules,
/// by [`DmaDevice::classify`].
///
/// # Invariants
/// The CPU side never changes after classification (no mutable access to
/// the table is given out); the stamp records what it was checked against.
#[derive(Debug)]
pub struct ClassifiedTable {
    table: SgTable,
    stamp: Stamp,
}

impl ClassifiedTable {
    /// The table (read-only: syncs and segment walks take it).
    pub fn table(&self) -> &SgTable {
        &self.table
    }

    /// True if every entry is system RAM.
    pub fn is_all_ram(&self) -> bool {
        self.stamp.all_ram
    }

    /// The table back, if it is not mapped; a mapped one is returned as is.
    pub fn into_table(self) -> Result<SgTable, Self> {
        if self.table.is_dma_mapped() {
            Err(self)
        } else {
            Ok(self.table)
        }
    }
}

impl DmaDevice {
    /// Checks `table` as [`DmaDevice::map_sgtable`] would (every entry's kind
    /// against the memory map, the CPU entries against this device's
    /// constraints) and stamps it, without mapping. A table that fails is
    /// refused with the error the map would give (and dropped).
    pub fn classify(&self, table: SgTable) -> Result<ClassifiedTable, DmaError> {
        if table.is_dma_mapped() {
            return Err(DmaError::AlreadyMapped {
                orig_nents: table.orig_nents(),
            });
        }
        let stamp = self.stamp_table(&table)?;
        Ok(ClassifiedTable { table, stamp })
    }

    /// [`DmaDevice::table_from_ranges`], classified.
    pub fn classified_from_ranges(
        &self,
        ranges: &[(PhysAddr, u64)],
        max_segment: u64,
    ) -> Result<ClassifiedTable, DmaError> {
        self.classify(self.table_from_ranges(ranges, max_segment)?)
    }

    /// `dma_map_sgtable` of a classified table: the entries are not checked
    /// again while its stamp holds; everything else is as
    /// [`DmaDevice::map_sgtable`].
    pub fn map_classified(
        &self,
        table: &mut ClassifiedTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        self.map_with(&mut table.table, dir, attrs, Some(&mut table.stamp))
    }

    /// `dma_unmap_sgtable` of a table [`DmaDevice::map_classified`] mapped.
    pub fn unmap_classified(
        &self,
        table: &mut ClassifiedTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.unmap_sgtable(&mut table.table, dir, attrs)
    }
}
