//! A VFIO-style exporter of BAR slices (Linux drivers/vfio/pci/
//! vfio_pci_dmabuf.c): a user hands out several ranges of a device's BAR as
//! one buffer; the buffer cannot be pinned (the device may be reset at any
//! time) and a reset revokes it — every importer must unmap before the reset
//! proceeds, and maps fail with `Revoked` until the device is restored.

use dma_api::share::{
    Action, AttachAsk, Exporter, ExporterCaps, ShareError, SharedBuffer, Wait, WaitBudget,
    WeakBuffer,
};
use dma_api::{Bdf, DmaContext, PhysAddr};
use std::sync::{Arc, Mutex};

/// The VFIO-style exporter of one device.
pub struct VfioBarExporter {
    ctx: Arc<DmaContext>,
    bdf: Bdf,
    bar: PhysAddr,
    buffers: Mutex<Vec<WeakBuffer>>,
}

impl core::fmt::Debug for VfioBarExporter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VfioBarExporter")
            .field("bdf", &self.bdf)
            .field("bar", &self.bar)
            .finish_non_exhaustive()
    }
}

impl VfioBarExporter {
    /// The exporter of the device at `bdf` whose BAR starts at `bar`.
    pub fn new(ctx: Arc<DmaContext>, bdf: Bdf, bar: PhysAddr) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            bdf,
            bar,
            buffers: Mutex::new(Vec::new()),
        })
    }

    /// Exports the BAR slices `(offset, len)` as one buffer.
    pub fn export(self: &Arc<Self>, slices: &[(u64, u64)]) -> Result<SharedBuffer, ShareError> {
        let ranges: Vec<(PhysAddr, u64)> = slices
            .iter()
            .map(|&(o, l)| (PhysAddr::new(self.bar.raw() + o), l))
            .collect();
        let me: Arc<dyn Exporter> = self.clone();
        let b = SharedBuffer::export(&self.ctx, me, &ranges)?;
        self.lock().push(b.downgrade());
        Ok(b)
    }

    /// The buffers still alive (the dead are forgotten).
    fn live(&self) -> Vec<SharedBuffer> {
        let mut l = self.lock();
        l.retain(|w| w.upgrade().is_some());
        l.iter().filter_map(WeakBuffer::upgrade).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WeakBuffer>> {
        self.buffers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A device reset: revokes every exported buffer (the first error is
    /// returned; every buffer is revoked).
    pub fn reset(&self, budget: WaitBudget, wait: &dyn Wait) -> Result<(), ShareError> {
        let bufs = self.live();
        let mut first = None;
        for b in bufs {
            if let Err(e) = b.revoke(budget, wait) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The reset finished: the buffers are usable again.
    pub fn restore(&self) -> Result<(), ShareError> {
        let bufs = self.live();
        for b in bufs {
            b.restore()?;
        }
        Ok(())
    }
}

impl Exporter for VfioBarExporter {
    fn device(&self) -> Bdf {
        self.bdf
    }

    fn caps(&self) -> ExporterCaps {
        ExporterCaps {
            pin: false,
            migrate: false,
        }
    }

    fn answer(&self, ask: &AttachAsk<'_>) -> Action {
        Action::Refuse(format!(
            "{}: BAR slices are only shared in place and {} cannot reach them as it accepts",
            self.bdf, ask.importer
        ))
    }
}
