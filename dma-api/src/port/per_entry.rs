//! Mapping a table one entry at a time through a backend's single-range path.
//!
//! Linux does this in dma-direct (`dma_direct_map_sg`) and in dma-iommu's
//! swiotlb path for untrusted devices (`iommu_dma_map_sg_swiotlb`): each CPU
//! entry becomes one DMA segment with its own length, a failure undoes the
//! entries already mapped (without CPU syncs), and unmap walks the entries
//! again, skipping bus-address segments. Both backends share this one
//! implementation.

use super::backend::{DmaBackend, MapRequest, SegPlan, SegTarget};
use crate::attrs::DmaAttrs;
use crate::bdf::Bdf;
use crate::device::DmaConstraints;
use crate::device::EntryAddr;
use crate::direction::Direction;
use crate::error::DmaError;
use scatterlist::{DmaFlags, SgTable};

/// The segment rules a backend holds its own DMA segments to while mapping
/// ([`DmaBackend::checks_mapped_segments`]): the max segment size and the
/// segment boundary of the device's constraints (kernel/dma/debug.c
/// `check_sg_segment`, the rules dma-debug checks).
#[derive(Clone, Copy, Debug)]
pub struct SegmentRules {
    device: Bdf,
    constraints: DmaConstraints,
}

impl SegmentRules {
    /// The rules of `constraints` for `device` (named in the error).
    pub fn new(device: Bdf, constraints: &DmaConstraints) -> Self {
        Self {
            device,
            constraints: *constraints,
        }
    }

    /// Non-zero if `[dma, dma + len)` may break a rule (exact test in
    /// [`SegmentRules::violation`]).
    #[inline]
    fn screen(&self, dma: u64, len: u64) -> u64 {
        let c = &self.constraints;
        DmaConstraints::screen(u64::from(c.max_seg_size), !c.seg_boundary_mask, dma, len)
    }

    /// The error for DMA segment `index` if it breaks a rule.
    fn violation(&self, index: usize, dma: crate::types::DmaAddr, len: u64) -> Option<DmaError> {
        self.constraints
            .check_segment(dma.raw(), len)
            .err()
            .map(|violation| DmaError::ConstraintViolated {
                device: self.device,
                index,
                at: EntryAddr::Dma(dma),
                len,
                violation,
            })
    }
}

fn check_plan(table: &SgTable, plan: &[SegPlan]) -> Result<usize, DmaError> {
    let nents = table.orig_nents();
    if plan.len() != nents {
        return Err(DmaError::PlanMismatch {
            plan: plan.len(),
            nents,
        });
    }
    Ok(nents)
}

/// The DMA flags a segment of `target` carries.
fn seg_flags(target: SegTarget, attrs: DmaAttrs) -> DmaFlags {
    match target {
        SegTarget::Ram if attrs.contains(DmaAttrs::MMIO) => DmaFlags::MMIO,
        SegTarget::Ram => DmaFlags::EMPTY,
        SegTarget::PeerHostBridge => DmaFlags::MMIO,
        SegTarget::PeerBus(_) => DmaFlags::BUS_ADDRESS,
    }
}

/// Maps every CPU entry of `table` with `backend.map`; `first_flags` are
/// added to the first entry's DMA flags (e.g. `SWIOTLB`). Returns `nents`
/// (= `orig_nents`). On failure nothing stays mapped and the DMA side is
/// cleared.
pub fn map_sg_per_entry<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    plan: &[SegPlan],
    dir: Direction,
    attrs: DmaAttrs,
    first_flags: DmaFlags,
) -> Result<usize, DmaError> {
    map_entries(backend, table, plan, dir, attrs, first_flags, None)
}

/// [`map_sg_per_entry`] holding every DMA segment to `rules` in the same
/// pass: a segment that breaks one fails the map with
/// [`DmaError::ConstraintViolated`] naming it, and nothing stays mapped.
/// For backends that answer `true` to
/// [`DmaBackend::checks_mapped_segments`].
pub fn map_sg_per_entry_within<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    plan: &[SegPlan],
    dir: Direction,
    attrs: DmaAttrs,
    rules: SegmentRules,
) -> Result<usize, DmaError> {
    map_entries(
        backend,
        table,
        plan,
        dir,
        attrs,
        DmaFlags::EMPTY,
        Some(rules),
    )
}

fn map_entries<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    plan: &[SegPlan],
    dir: Direction,
    attrs: DmaAttrs,
    first_flags: DmaFlags,
    rules: Option<SegmentRules>,
) -> Result<usize, DmaError> {
    let nents = check_plan(table, plan)?;
    let mut failed = None;
    let mut done = 0usize;
    for (i, (e, p)) in table.iter_mut().zip(plan).enumerate() {
        let len = u64::from(e.len());
        let req = MapRequest {
            phys: p.phys,
            len,
            dir,
            attrs,
            target: p.target,
        };
        let res = backend.map(&req).and_then(|dma| {
            let mut flags = seg_flags(p.target, attrs);
            if i == 0 {
                flags = flags.union(first_flags);
            }
            e.set_dma(dma, len, flags).map_err(|err| {
                let _ = backend.unmap(
                    dma,
                    &MapRequest {
                        attrs: attrs | DmaAttrs::SKIP_CPU_SYNC,
                        ..req
                    },
                );
                DmaError::from(err)
            })
        });
        match res {
            Err(err) => {
                failed = Some(DmaError::at_entry(i, e.phys(), len, e.kind(), err));
                break;
            }
            Ok(()) => done += 1,
        }
        if let Some(r) = &rules {
            let dma = e.dma_address();
            if r.screen(dma.raw(), len) != 0 {
                if let Some(err) = r.violation(i, dma, len) {
                    failed = Some(err);
                    break;
                }
            }
        }
    }
    if let Some(err) = failed {
        for (e, p) in table.iter().zip(plan).take(done) {
            let req = MapRequest {
                phys: p.phys,
                len: u64::from(e.len()),
                dir,
                attrs: attrs | DmaAttrs::SKIP_CPU_SYNC,
                target: p.target,
            };
            let _ = backend.unmap(e.dma_address(), &req);
        }
        table.clear_dma();
        return Err(err);
    }
    table.set_nents(nents)?;
    Ok(nents)
}

/// Unmaps every entry mapped by [`map_sg_per_entry`] (bus-address segments
/// are skipped: nothing was mapped for them) and clears the DMA side. Keeps
/// going after an error and returns the first one.
pub fn unmap_sg_per_entry<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    plan: &[SegPlan],
    dir: Direction,
    attrs: DmaAttrs,
) -> Result<(), DmaError> {
    check_plan(table, plan)?;
    let mut first_err = None;
    for (e, p) in table.iter().zip(plan) {
        if e.dma_flags().contains(DmaFlags::BUS_ADDRESS) {
            continue;
        }
        let req = MapRequest {
            phys: p.phys,
            len: u64::from(e.dma_len()),
            dir,
            attrs,
            target: p.target,
        };
        if let Err(err) = backend.unmap(e.dma_address(), &req) {
            first_err.get_or_insert(err);
        }
    }
    table.clear_dma();
    first_err.map_or(Ok(()), Err)
}
