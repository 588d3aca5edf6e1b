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
use scatterlist::{DmaFlags, SgEntry, SgTable};

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

/// Where the per-entry loops take each entry's plan from: a caller's plan,
/// or "system RAM at the entry's own address" for an all-RAM table
/// ([`DmaBackend::map_sg_ram`]), which needs no plan written.
trait PlanSource: Clone {
    /// The plan of `e`, the next entry; `None` when a given plan ran out.
    fn next_plan(&mut self, e: &SgEntry) -> Option<SegPlan>;
}

impl PlanSource for core::slice::Iter<'_, SegPlan> {
    #[inline(always)]
    fn next_plan(&mut self, _: &SgEntry) -> Option<SegPlan> {
        self.next().copied()
    }
}

/// Every entry is system RAM at its own address.
#[derive(Clone, Copy)]
struct AllRam;

impl PlanSource for AllRam {
    #[inline(always)]
    fn next_plan(&mut self, e: &SgEntry) -> Option<SegPlan> {
        Some(SegPlan {
            phys: e.phys(),
            target: SegTarget::Ram,
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
    let nents = check_plan(table, plan)?;
    map_entries(
        backend,
        table,
        nents,
        plan.iter(),
        dir,
        attrs,
        first_flags,
        None,
    )
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
    let nents = check_plan(table, plan)?;
    map_entries(
        backend,
        table,
        nents,
        plan.iter(),
        dir,
        attrs,
        DmaFlags::EMPTY,
        Some(rules),
    )
}

/// [`map_sg_per_entry`] (with `rules`: [`map_sg_per_entry_within`]) of a
/// table whose every CPU entry is system RAM mapped at its own address,
/// without a plan: what a backend's [`DmaBackend::map_sg_ram`] does.
pub fn map_sg_ram_per_entry<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    dir: Direction,
    attrs: DmaAttrs,
    first_flags: DmaFlags,
    rules: Option<SegmentRules>,
) -> Result<usize, DmaError> {
    let nents = table.orig_nents();
    map_entries(
        backend,
        table,
        nents,
        AllRam,
        dir,
        attrs,
        first_flags,
        rules,
    )
}

#[allow(clippy::too_many_arguments)]
fn map_entries<B: DmaBackend + ?Sized, P: PlanSource>(
    backend: &B,
    table: &mut SgTable,
    nents: usize,
    plan: P,
    dir: Direction,
    attrs: DmaAttrs,
    first_flags: DmaFlags,
    rules: Option<SegmentRules>,
) -> Result<usize, DmaError> {
    let mut failed = None;
    let mut done = 0usize;
    let mut plans = plan.clone();
    for (i, e) in table.iter_mut().enumerate() {
        let Some(p) = plans.next_plan(e) else {
            break;
        };
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
        let mut plans = plan;
        for e in table.iter().take(done) {
            let Some(p) = plans.next_plan(e) else {
                break;
            };
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
    unmap_entries(backend, table, plan.iter(), dir, attrs)
}

/// [`unmap_sg_per_entry`] of a table [`map_sg_ram_per_entry`] mapped.
pub fn unmap_sg_ram_per_entry<B: DmaBackend + ?Sized>(
    backend: &B,
    table: &mut SgTable,
    dir: Direction,
    attrs: DmaAttrs,
) -> Result<(), DmaError> {
    unmap_entries(backend, table, AllRam, dir, attrs)
}

fn unmap_entries<B: DmaBackend + ?Sized, P: PlanSource>(
    backend: &B,
    table: &mut SgTable,
    mut plans: P,
    dir: Direction,
    attrs: DmaAttrs,
) -> Result<(), DmaError> {
    let mut first_err = None;
    for e in table.iter() {
        let Some(p) = plans.next_plan(e) else {
            break;
        };
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
