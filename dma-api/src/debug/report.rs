//! What dma-debug reports: one variant per violation class of
//! kernel/dma/debug.c (plus the ones Linux cannot see), each carrying the
//! offending values instead of a formatted warning.

use crate::direction::Direction;
use crate::port::backend::SegTarget;
use crate::types::{DmaAddr, PhysAddr};
use core::fmt;

/// How a mapping was made (Linux `dma_debug_single` / `dma_debug_sg` /
/// `dma_debug_coherent`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapKind {
    /// `DmaBackend::map` (Linux `dma_map_phys` / `_page` / `_single` / `_resource`).
    Single,
    /// One DMA segment of `DmaBackend::map_sg` (Linux `dma_map_sg`).
    Sg,
    /// `DmaBackend::map_coherent` (Linux `dma_alloc_attrs`).
    Coherent,
}

impl fmt::Display for MapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapKind::Single => "single",
            MapKind::Sg => "scatter-gather",
            MapKind::Coherent => "coherent",
        })
    }
}

/// Which sync call was checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SyncCall {
    /// `sync_for_cpu`.
    ForCpu,
    /// `sync_for_device`.
    ForDevice,
}

impl fmt::Display for SyncCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncCall::ForCpu => "sync_for_cpu",
            SyncCall::ForDevice => "sync_for_device",
        })
    }
}

/// Whether `dma_mapping_error` was called on a mapping (Linux `map_err_types`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrCheck {
    /// The API returned a `Result` (typed layer, sg tables): nothing to check.
    NotApplicable,
    /// Raw address handed out, not yet checked.
    NotChecked,
    /// The driver called `mapping_error` on it.
    Checked,
}

/// One DMA-API violation, with the values that make it one.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DebugReport {
    /// Unmap of `DMA_MAPPING_ERROR` ("tries to free an invalid DMA memory address").
    UnmapInvalidAddress {
        /// How it was unmapped.
        kind: MapKind,
    },
    /// Unmap of an address that was never mapped ("tries to free DMA memory
    /// it has not allocated").
    UnmapNotMapped {
        /// How it was unmapped.
        kind: MapKind,
        /// The address given.
        dma: DmaAddr,
        /// The length given.
        len: u64,
    },
    /// Unmap of an address that was mapped and already unmapped (Linux reports
    /// this as [`DebugReport::UnmapNotMapped`]).
    DoubleUnmap {
        /// How it was unmapped this time.
        kind: MapKind,
        /// The address given.
        dma: DmaAddr,
        /// The length given.
        len: u64,
        /// How the freed mapping had been made.
        mapped_kind: MapKind,
        /// Its length.
        mapped_len: u64,
    },
    /// "frees DMA memory with different size".
    UnmapSizeMismatch {
        /// The mapping.
        dma: DmaAddr,
        /// Length at map time.
        mapped_len: u64,
        /// Length at unmap time.
        unmap_len: u64,
    },
    /// "frees DMA memory with wrong function" (single, sg or coherent).
    UnmapKindMismatch {
        /// The mapping.
        dma: DmaAddr,
        /// How it was mapped.
        mapped: MapKind,
        /// How it was unmapped.
        unmapped: MapKind,
    },
    /// Unmap with a different target than the map (e.g. MMIO unmapped as RAM).
    UnmapTargetMismatch {
        /// The mapping (first segment for a table).
        dma: DmaAddr,
        /// Target at map time.
        mapped: SegTarget,
        /// Target at unmap time.
        unmapped: SegTarget,
    },
    /// Unmap with a different physical address than the map (Linux checks
    /// this for coherent memory only: "different CPU address").
    UnmapPhysMismatch {
        /// The mapping (first segment for a table).
        dma: DmaAddr,
        /// Physical address at map time.
        mapped: PhysAddr,
        /// Physical address at unmap time.
        unmapped: PhysAddr,
    },
    /// "frees DMA sg list with different entry count".
    UnmapNentsMismatch {
        /// The segment.
        dma: DmaAddr,
        /// CPU entries (`orig_nents`) at map time.
        mapped_nents: usize,
        /// CPU entries at unmap time.
        unmap_nents: usize,
    },
    /// "frees DMA memory with different direction".
    UnmapDirectionMismatch {
        /// The mapping.
        dma: DmaAddr,
        /// Direction at map time.
        mapped: Direction,
        /// Direction at unmap time.
        unmapped: Direction,
    },
    /// "failed to check map error": unmapped without `mapping_error` having
    /// been called on the raw address.
    MapErrorNotChecked {
        /// The mapping.
        dma: DmaAddr,
        /// Its length.
        len: u64,
        /// How it was mapped.
        kind: MapKind,
    },
    /// "tries to sync DMA memory it has not allocated": no mapping holds the
    /// first byte.
    SyncNotMapped {
        /// Which sync.
        op: SyncCall,
        /// Address given.
        dma: DmaAddr,
        /// Length given.
        len: u64,
    },
    /// "syncs DMA memory outside allocated range": the sync starts inside a
    /// mapping and runs past its end.
    SyncOutsideRange {
        /// Which sync.
        op: SyncCall,
        /// The mapping holding the first byte.
        mapping: DmaAddr,
        /// Its length.
        mapped_len: u64,
        /// Address given.
        dma: DmaAddr,
        /// Length given.
        len: u64,
    },
    /// "syncs DMA memory with different direction".
    SyncDirectionMismatch {
        /// Which sync.
        op: SyncCall,
        /// The mapping.
        mapping: DmaAddr,
        /// Direction at map time.
        mapped: Direction,
        /// Direction given to the sync.
        synced: Direction,
    },
    /// "syncs device read-only DMA memory for cpu".
    SyncReadOnlyForCpu {
        /// The mapping.
        mapping: DmaAddr,
        /// Direction at map time.
        mapped: Direction,
        /// Direction given to the sync.
        synced: Direction,
    },
    /// "syncs device write-only DMA memory to device".
    SyncWriteOnlyForDevice {
        /// The mapping.
        mapping: DmaAddr,
        /// Direction at map time.
        mapped: Direction,
        /// Direction given to the sync.
        synced: Direction,
    },
    /// "cacheline tracking EEXIST, overlapping mappings aren't supported":
    /// two active mappings the device may write share a CPU cache line.
    CachelineOverlap {
        /// Physical start of the first shared cache line.
        line: PhysAddr,
        /// The new mapping.
        dma: DmaAddr,
        /// Its direction.
        dir: Direction,
        /// The active mapping it overlaps.
        other: DmaAddr,
        /// That one's direction.
        other_dir: Direction,
    },
    /// "has pending DMA allocations while released from device": one per
    /// mapping still active at detach.
    Leak {
        /// How it was mapped.
        kind: MapKind,
        /// Its address.
        dma: DmaAddr,
        /// Its length.
        len: u64,
        /// Its direction.
        dir: Direction,
        /// Its target (`None` for a table segment: see the table's plan).
        target: Option<SegTarget>,
    },
}

impl fmt::Display for DebugReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DebugReport::*;
        match self {
            UnmapInvalidAddress { kind } => {
                write!(
                    f,
                    "device driver tries to free an invalid DMA memory address ({kind})"
                )
            }
            UnmapNotMapped { kind, dma, len } => write!(
                f,
                "device driver tries to free DMA memory it has not allocated \
                 [device address={dma:?}] [size={len} bytes] [{kind}]"
            ),
            DoubleUnmap {
                kind,
                dma,
                len,
                mapped_kind,
                mapped_len,
            } => write!(
                f,
                "device driver frees DMA memory twice [device address={dma:?}] \
                 [size={len} bytes] [{kind}] [was mapped as {mapped_kind}, {mapped_len} bytes]"
            ),
            UnmapSizeMismatch {
                dma,
                mapped_len,
                unmap_len,
            } => write!(
                f,
                "device driver frees DMA memory with different size [device address={dma:?}] \
                 [map size={mapped_len} bytes] [unmap size={unmap_len} bytes]"
            ),
            UnmapKindMismatch {
                dma,
                mapped,
                unmapped,
            } => write!(
                f,
                "device driver frees DMA memory with wrong function [device address={dma:?}] \
                 [mapped as {mapped}] [unmapped as {unmapped}]"
            ),
            UnmapTargetMismatch {
                dma,
                mapped,
                unmapped,
            } => write!(
                f,
                "device driver frees DMA memory with different target [device address={dma:?}] \
                 [mapped as {mapped:?}] [unmapped as {unmapped:?}]"
            ),
            UnmapPhysMismatch {
                dma,
                mapped,
                unmapped,
            } => write!(
                f,
                "device driver frees DMA memory with different CPU address \
                 [device address={dma:?}] [map phys={mapped:?}] [unmap phys={unmapped:?}]"
            ),
            UnmapNentsMismatch {
                dma,
                mapped_nents,
                unmap_nents,
            } => write!(
                f,
                "device driver frees DMA sg list with different entry count \
                 [device address={dma:?}] [map count={mapped_nents}] [unmap count={unmap_nents}]"
            ),
            UnmapDirectionMismatch {
                dma,
                mapped,
                unmapped,
            } => write!(
                f,
                "device driver frees DMA memory with different direction \
                 [device address={dma:?}] [mapped with {mapped}] [unmapped with {unmapped}]"
            ),
            MapErrorNotChecked { dma, len, kind } => write!(
                f,
                "device driver failed to check map error [device address={dma:?}] \
                 [size={len} bytes] [mapped as {kind}]"
            ),
            SyncNotMapped { op, dma, len } => write!(
                f,
                "device driver tries to sync DMA memory it has not allocated ({op}) \
                 [device address={dma:?}] [size={len} bytes]"
            ),
            SyncOutsideRange {
                op,
                mapping,
                mapped_len,
                dma,
                len,
            } => write!(
                f,
                "device driver syncs DMA memory outside allocated range ({op}) \
                 [device address={mapping:?}] [allocation size={mapped_len} bytes] \
                 [sync address={dma:?}] [sync size={len} bytes]"
            ),
            SyncDirectionMismatch {
                op,
                mapping,
                mapped,
                synced,
            } => write!(
                f,
                "device driver syncs DMA memory with different direction ({op}) \
                 [device address={mapping:?}] [mapped with {mapped}] [synced with {synced}]"
            ),
            SyncReadOnlyForCpu {
                mapping,
                mapped,
                synced,
            } => write!(
                f,
                "device driver syncs device read-only DMA memory for cpu \
                 [device address={mapping:?}] [mapped with {mapped}] [synced with {synced}]"
            ),
            SyncWriteOnlyForDevice {
                mapping,
                mapped,
                synced,
            } => write!(
                f,
                "device driver syncs device write-only DMA memory to device \
                 [device address={mapping:?}] [mapped with {mapped}] [synced with {synced}]"
            ),
            CachelineOverlap {
                line,
                dma,
                dir,
                other,
                other_dir,
            } => write!(
                f,
                "overlapping mappings aren't supported: cache line {line:?} shared by \
                 {dma:?} ({dir}) and active {other:?} ({other_dir})"
            ),
            Leak {
                kind,
                dma,
                len,
                dir,
                target,
            } => write!(
                f,
                "device driver has pending DMA allocations while released from device \
                 [device address={dma:?}] [size={len} bytes] [mapped with {dir}] \
                 [mapped as {kind}] [target {target:?}]"
            ),
        }
    }
}
