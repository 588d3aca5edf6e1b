//! The typed layer: buffer ownership phases as types (Rust-for-Linux style,
//! rust/kernel/dma.rs), so "CPU touches a device-owned buffer", "unmap
//! forgotten" and "sync in the wrong direction" do not compile or cannot
//! happen.
//!
//! ```text
//! CpuBuffer --map::<D>()--> DeviceMapping<D> --sync_for_cpu()--> CpuView<D>
//!     ^                        |      ^                              |
//!     +------- unmap() --------+      +------ sync_for_device() -----+
//! ```
//! Dropping a [`DeviceMapping`] or a [`CpuView`] unmaps; dropping a
//! [`MappedSgTable`] unmaps the table.

use super::context::mem_error;
use super::mapped_table::MappedTable;
use super::raw::DmaDevice;
use super::segments::Segments;
use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::types::{DmaAddr, PhysAddr};
use alloc::sync::Arc;
use core::marker::PhantomData;
use scatterlist::{DmaIter, SgTable};

/// A direction as a type.
pub trait DirMarker: Send + Sync + 'static {
    /// The direction.
    const DIR: Direction;
}

/// `DMA_TO_DEVICE` as a type.
#[derive(Debug)]
pub enum ToDevice {}
/// `DMA_FROM_DEVICE` as a type.
#[derive(Debug)]
pub enum FromDevice {}
/// `DMA_BIDIRECTIONAL` as a type.
#[derive(Debug)]
pub enum Bidirectional {}

impl DirMarker for ToDevice {
    const DIR: Direction = Direction::ToDevice;
}
impl DirMarker for FromDevice {
    const DIR: Direction = Direction::FromDevice;
}
impl DirMarker for Bidirectional {
    const DIR: Direction = Direction::Bidirectional;
}

/// A CPU-owned physical range.
///
/// # Invariants
/// `len > 0` and `[phys, phys + len)` does not wrap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CpuBuffer {
    phys: PhysAddr,
    len: u64,
}

impl CpuBuffer {
    /// A buffer over `[phys, phys + len)`; zero or wrapping lengths are refused.
    pub fn new(phys: PhysAddr, len: u64) -> Result<Self, DmaError> {
        if len == 0 {
            return Err(DmaError::ZeroLength { phys });
        }
        if phys.last_of(len).is_none() {
            return Err(DmaError::PhysOverflow { phys, len });
        }
        Ok(Self { phys, len })
    }

    /// Start.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true (the invariant), kept for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hands the buffer to `dev` in direction `D`. On error the buffer comes
    /// back with it.
    pub fn map<D: DirMarker>(
        self,
        dev: &Arc<DmaDevice>,
        attrs: DmaAttrs,
    ) -> Result<DeviceMapping<D>, (Self, DmaError)> {
        match dev.map_phys_at(self.phys, self.len, D::DIR, attrs) {
            Ok((dma, cpu)) => Ok(DeviceMapping {
                inner: Live {
                    dev: dev.clone(),
                    buf: self,
                    cpu,
                    dma,
                    attrs,
                    dir: D::DIR,
                    armed: true,
                },
                _dir: PhantomData,
            }),
            Err(e) => Err((self, e)),
        }
    }
}

/// A live mapping; unmaps on drop while armed.
#[derive(Debug)]
struct Live {
    dev: Arc<DmaDevice>,
    buf: CpuBuffer,
    /// Where the device's accesses land: `buf`'s start, or the owner's
    /// redirect target.
    cpu: PhysAddr,
    dma: DmaAddr,
    attrs: DmaAttrs,
    dir: Direction,
    armed: bool,
}

impl Live {
    fn unmap(&mut self) -> Result<(), DmaError> {
        self.armed = false;
        self.dev
            .unmap_phys(self.dma, self.buf.len, self.dir, self.attrs)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.unmap() {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}

/// A device-owned mapping in direction `D`: the CPU must not touch the
/// buffer; the device uses [`DeviceMapping::dma_addr`].
///
/// # Invariants
/// The range is mapped for `D` on the device until this value (or the
/// [`CpuView`] it becomes) is dropped or unmapped.
#[derive(Debug)]
pub struct DeviceMapping<D: DirMarker> {
    inner: Live,
    _dir: PhantomData<D>,
}

impl<D: DirMarker> DeviceMapping<D> {
    /// The address to program into the device.
    pub fn dma_addr(&self) -> DmaAddr {
        self.inner.dma
    }

    /// Mapped length.
    pub fn len(&self) -> u64 {
        self.inner.buf.len
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The CPU range behind the mapping.
    pub fn buffer(&self) -> CpuBuffer {
        self.inner.buf
    }

    /// Hands the buffer back to the CPU (`dma_sync_single_for_cpu`); the
    /// mapping stays. On error the device keeps it.
    pub fn sync_for_cpu(self) -> Result<CpuView<D>, (Self, DmaError)> {
        let r = self
            .inner
            .dev
            .sync_single_for_cpu(self.inner.dma, self.inner.buf.len, D::DIR);
        match r {
            Ok(()) => {
                let DeviceMapping { inner, .. } = self;
                Ok(CpuView {
                    inner,
                    _dir: PhantomData,
                })
            }
            Err(e) => Err((self, e)),
        }
    }

    /// Unmaps (`dma_unmap_phys`, with the CPU sync) and returns the buffer.
    pub fn unmap(mut self) -> Result<CpuBuffer, DmaError> {
        self.inner.unmap().map(|()| self.inner.buf)
    }
}

/// The CPU's view of a still-mapped buffer after `sync_for_cpu`: it may read
/// and write the bytes, then give it back with
/// [`CpuView::sync_for_device`].
#[derive(Debug)]
pub struct CpuView<D: DirMarker> {
    inner: Live,
    _dir: PhantomData<D>,
}

impl<D: DirMarker> CpuView<D> {
    /// Reads `buf.len()` bytes at `offset` of the buffer.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let phys = self.at(offset, buf.len() as u64)?;
        self.inner
            .dev
            .context()
            .mem
            .read(phys, buf)
            .map_err(|e| mem_error(e, phys, buf.len() as u64))
    }

    /// Writes `data` at `offset` of the buffer.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DmaError> {
        let phys = self.at(offset, data.len() as u64)?;
        self.inner
            .dev
            .context()
            .mem
            .write(phys, data)
            .map_err(|e| mem_error(e, phys, data.len() as u64))
    }

    /// The CPU address of `[offset, offset + len)` of the mapping: where
    /// the device's accesses land (a peer BAR, through the context's memory
    /// port; a redirect target rather than the original range).
    fn at(&self, offset: u64, len: u64) -> Result<PhysAddr, DmaError> {
        let b = self.inner.buf;
        if offset > b.len || len > b.len - offset {
            return Err(DmaError::OutOfBounds {
                offset,
                len,
                size: b.len,
            });
        }
        Ok(PhysAddr::new(self.inner.cpu.raw() + offset))
    }

    /// Hands the buffer back to the device (`dma_sync_single_for_device`).
    pub fn sync_for_device(self) -> Result<DeviceMapping<D>, (Self, DmaError)> {
        let r = self
            .inner
            .dev
            .sync_single_for_device(self.inner.dma, self.inner.buf.len, D::DIR);
        match r {
            Ok(()) => {
                let CpuView { inner, .. } = self;
                Ok(DeviceMapping {
                    inner,
                    _dir: PhantomData,
                })
            }
            Err(e) => Err((self, e)),
        }
    }

    /// Unmaps and returns the buffer.
    pub fn unmap(mut self) -> Result<CpuBuffer, DmaError> {
        self.inner.unmap().map(|()| self.inner.buf)
    }
}

/// A DMA-mapped table in direction `D`: [`MappedTable`] with the direction
/// as a type; dropping it unmaps.
///
/// # Invariants
/// The inner table is mapped on its device in `D` until drop or
/// [`MappedSgTable::unmap`].
#[derive(Debug)]
pub struct MappedSgTable<D: DirMarker> {
    inner: MappedTable,
    _dir: PhantomData<D>,
}

impl<D: DirMarker> MappedSgTable<D> {
    /// Maps `table` on `dev`; on error the table comes back unmapped.
    #[allow(clippy::result_large_err)] // as MappedTable::map: ownership returns
    pub fn map(
        dev: &Arc<DmaDevice>,
        table: SgTable,
        attrs: DmaAttrs,
    ) -> Result<Self, (SgTable, DmaError)> {
        MappedTable::map(dev, table, D::DIR, attrs).map(|inner| Self {
            inner,
            _dir: PhantomData,
        })
    }

    /// DMA segments.
    pub fn nents(&self) -> usize {
        self.inner.nents()
    }

    /// The DMA segments (address, length, flags).
    pub fn dma_iter(&self) -> DmaIter<'_> {
        self.inner.table().dma_iter()
    }

    /// `{ dma address, length, route }` per DMA segment.
    pub fn segments(&self) -> Segments<'_> {
        self.inner.segments()
    }

    /// The table, both sides (read-only while mapped).
    pub fn table(&self) -> &SgTable {
        self.inner.table()
    }

    /// `dma_sync_sgtable_for_cpu`.
    pub fn sync_for_cpu(&self) -> Result<(), DmaError> {
        self.inner.sync_for_cpu()
    }

    /// `dma_sync_sgtable_for_device`.
    pub fn sync_for_device(&self) -> Result<(), DmaError> {
        self.inner.sync_for_device()
    }

    /// See [`MappedTable::sync_range_for_cpu`].
    pub fn sync_range_for_cpu(&self, offset: u64, len: u64) -> Result<(), DmaError> {
        self.inner.sync_range_for_cpu(offset, len)
    }

    /// See [`MappedTable::sync_range_for_device`].
    pub fn sync_range_for_device(&self, offset: u64, len: u64) -> Result<(), DmaError> {
        self.inner.sync_range_for_device(offset, len)
    }

    /// Unmaps and returns the (CPU-side) table.
    pub fn unmap(self) -> Result<SgTable, DmaError> {
        self.inner.unmap()
    }

    /// Forgets the direction type (for code that learns it at run time).
    pub fn into_untyped(self) -> MappedTable {
        self.inner
    }
}
