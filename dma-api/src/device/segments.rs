//! The device's view of a mapped table: one `{ dma address, length, route }`
//! per DMA segment, which is what a driver writes into its descriptors (PRP
//! lists, SGLs, work requests). Linux drivers walk `for_each_sgtable_dma_sg`
//! and test `sg_dma_is_bus_address` per segment; here the route comes with
//! the segment.

use crate::types::DmaAddr;
use scatterlist::{DmaFlags, DmaIter, SgTable};

/// How a DMA segment reaches its memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SegmentRoute {
    /// System RAM (directly, through the IOMMU, or through a bounce buffer).
    Ram,
    /// Peer memory through the host bridge (mapped as MMIO).
    PeerHostBridge,
    /// Peer memory by bus address: nothing was mapped for it.
    PeerBus,
}

/// One DMA segment of a mapped table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Segment {
    /// What to program into the device.
    pub dma: DmaAddr,
    /// Its length in bytes.
    pub len: u64,
    /// How it reaches memory.
    pub route: SegmentRoute,
}

/// The DMA segments of `table` (empty if it is not mapped).
pub fn segments(table: &SgTable) -> Segments<'_> {
    Segments {
        inner: table.dma_iter(),
    }
}

/// Iterator of [`segments`].
#[derive(Debug)]
pub struct Segments<'a> {
    inner: DmaIter<'a>,
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        let e = self.inner.next()?;
        let f = e.dma_flags();
        let route = if f.contains(DmaFlags::BUS_ADDRESS) {
            SegmentRoute::PeerBus
        } else if f.contains(DmaFlags::MMIO) {
            SegmentRoute::PeerHostBridge
        } else {
            SegmentRoute::Ram
        };
        Some(Segment {
            dma: e.dma_address(),
            len: u64::from(e.dma_len()),
            route,
        })
    }
}
