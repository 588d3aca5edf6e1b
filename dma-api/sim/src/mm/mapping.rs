//! A device's mapping of a virtual range, and its invalidation.

use super::{pages_of, ProcessMm};
use dma_api::device::DmaDevice;
use dma_api::hmm::{Backing, HmmError, PeerMapping, VirtAddr};
use dma_api::share::Reason;
use dma_api::{Direction, DmaAddr, DmaAttrs, PAGE_SIZE};
use std::sync::{Arc, Mutex};

enum Held {
    /// A `map_phys` of a RAM or BAR page.
    Single(DmaAddr),
    /// A device-private page mapped after its owner's answer.
    Peer(PeerMapping),
}

impl Held {
    fn dma(&self) -> Option<DmaAddr> {
        match self {
            Held::Single(d) => Some(*d),
            Held::Peer(m) => m.pages().first().map(|p| p.dma),
        }
    }
}

/// A device's live mapping of `[va, va + len)`: valid until the range
/// changes, then torn down (the device's old addresses fault under a strict
/// IOMMU) and the driver must map again.
pub struct DeviceVmaMapping {
    client: Arc<DmaDevice>,
    va: VirtAddr,
    len: u64,
    dir: Direction,
    held: Mutex<Option<Vec<Held>>>,
    reasons: Vec<Vec<Reason>>,
}

impl std::fmt::Debug for DeviceVmaMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceVmaMapping")
            .field("client", &self.client.bdf())
            .field("va", &self.va)
            .field("len", &self.len)
            .finish()
    }
}

impl DeviceVmaMapping {
    pub(super) fn build(
        mm: &ProcessMm,
        client: &Arc<DmaDevice>,
        va: VirtAddr,
        len: u64,
        dir: Direction,
    ) -> Result<Arc<Self>, HmmError> {
        let mut held: Vec<Held> = Vec::new();
        let mut reasons = Vec::new();
        let undo = |held: Vec<Held>| {
            for h in held {
                if let Held::Single(d) = h {
                    if let Err(e) = client.unmap_phys(d, PAGE_SIZE, dir, DmaAttrs::empty()) {
                        client.context().report_drop_error(e);
                    }
                }
            }
        };
        for v in pages_of(va, len)? {
            let step = match mm.backing(VirtAddr::new(v)) {
                None => Err(HmmError::Unmapped { va: v }),
                Some(Backing::Ram(p) | Backing::Bar(p)) => client
                    .map_phys(p, PAGE_SIZE, dir, DmaAttrs::empty())
                    .map(|d| (Held::Single(d), Vec::new()))
                    .map_err(|error| HmmError::Dma {
                        page: p,
                        reasons: Reason::chain_of(&error),
                        error,
                    }),
                Some(Backing::DevicePrivate(p)) => mm
                    .device_private()
                    .map_for_peer(client, p, PAGE_SIZE, dir)
                    .map(|m| {
                        let r = m.pages()[0].reasons.clone();
                        (Held::Peer(m), r)
                    }),
            };
            match step {
                Ok((h, r)) => {
                    held.push(h);
                    reasons.push(r);
                }
                Err(e) => {
                    undo(held);
                    return Err(e);
                }
            }
        }
        Ok(Arc::new(Self {
            client: client.clone(),
            va,
            len,
            dir,
            held: Mutex::new(Some(held)),
            reasons,
        }))
    }

    pub(super) fn overlaps(&self, start: u64, len: u64) -> bool {
        start < self.va.raw() + self.len && self.va.raw() < start + len
    }

    /// Whether the mapping still stands.
    pub fn is_valid(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The device address of page `i` while valid.
    pub fn dma(&self, i: usize) -> Option<DmaAddr> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()?
            .get(i)?
            .dma()
    }

    /// The reason chain of page `i` (the owner's answer for device-private
    /// pages; empty for RAM and BAR pages, which the dispatcher decided).
    pub fn reasons(&self, i: usize) -> &[Reason] {
        self.reasons.get(i).map_or(&[], Vec::as_slice)
    }

    /// The `mmu_interval_notifier` callback: the range changed, so every
    /// page is unmapped now (errors go to the context's drop log).
    pub fn invalidate(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        for h in held.into_iter().flatten() {
            match h {
                Held::Single(d) => {
                    if let Err(e) =
                        self.client
                            .unmap_phys(d, PAGE_SIZE, self.dir, DmaAttrs::empty())
                    {
                        self.client.context().report_drop_error(e);
                    }
                }
                Held::Peer(m) => {
                    if let Err(e) = m.unmap() {
                        self.client.context().report_drop_error(e);
                    }
                }
            }
        }
    }
}

impl Drop for DeviceVmaMapping {
    fn drop(&mut self) {
        self.invalidate();
    }
}
