//! Bus-address decode sanity for host bridges that run without an IOMMU.
//!
//! Untranslated, a device emits RAM as the bus address its host bridge's
//! dma-ranges give it. If that bus address also lies in one of the host
//! bridge's MMIO windows, the root complex (and every switch below it) decodes
//! it as MMIO: the DMA faults or, worse, lands in a BAR. Linux has the same
//! constraint implicitly (firmware must not program overlapping windows when
//! DMA is untranslated; with an IOMMU, dma-iommu reserves the windows in IOVA
//! space instead). The assembly refuses such a machine with a typed error
//! naming both windows rather than letting DMA be misdelivered.

use super::AssemblyError;
use dma_api::memmap::{MemoryMap, RangeKind};
use dma_api::topology::HostBridge;
use dma_api::AddrWindow;

/// Checks that no RAM bus address of `hb` is also inside one of its MMIO
/// windows' bus ranges.
pub(super) fn check_untranslated(hb: &HostBridge, memmap: &MemoryMap) -> Result<(), AssemblyError> {
    for r in memmap.ranges() {
        if r.size == 0 || !matches!(r.kind, RangeKind::Ram | RangeKind::StolenRam { .. }) {
            continue;
        }
        let (r_start, r_end) = (r.start.raw(), r.start.raw().saturating_add(r.size - 1));
        for d in hb.dma_ranges.windows() {
            let d_end = d.cpu_start.raw().saturating_add(d.size - 1);
            let lo = r_start.max(d.cpu_start.raw());
            let hi = r_end.min(d_end);
            if lo > hi {
                continue;
            }
            // The bus interval this RAM appears at.
            let bus_lo = d.bus_start.raw() + (lo - d.cpu_start.raw());
            let bus_hi = d.bus_start.raw() + (hi - d.cpu_start.raw());
            for m in hb.mmio.windows() {
                let m_lo = m.bus_start.raw();
                let m_hi = m_lo.saturating_add(m.size - 1);
                if bus_lo <= m_hi && m_lo <= bus_hi {
                    let ram = AddrWindow {
                        cpu_start: dma_api::PhysAddr::new(lo),
                        bus_start: dma_api::BusAddr::new(bus_lo),
                        size: hi - lo + 1,
                    };
                    return Err(AssemblyError::AmbiguousBusDecode {
                        host_bridge: hb.name.clone(),
                        mmio: *m,
                        ram,
                    });
                }
            }
        }
    }
    Ok(())
}
