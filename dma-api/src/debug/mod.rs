//! dma-debug as a decorator over any [`DmaBackend`] (kernel/dma/debug.c).
//!
//! Linux hooks the debug checks into every `dma_*` wrapper behind
//! `CONFIG_DMA_API_DEBUG`. Here they wrap a backend instead: [`DmaDebug`]
//! (a [`Layered`] backend with the [`DebugLayer`] middleware) forwards
//! every call unchanged and keeps a table of active mappings, so the
//! same checks run over the direct, IOMMU or any other backend, and stack
//! with the [`crate::middleware`] decorators in any order. Violations are
//! typed [`DebugReport`] values collected in a list (optionally panicking,
//! for tests) rather than `WARN` lines, so tests assert the exact offence.

mod cachelines;
mod report;
mod state;

pub use report::{DebugReport, ErrCheck, MapKind, SyncCall};

use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::middleware::{Layered, Middleware};
use crate::port::backend::{CoherentRequest, DmaBackend, MapRequest, SegPlan, SegTarget};
use crate::sync::{Mutex, MutexGuard};
use crate::types::{DmaAddr, PhysAddr};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use scatterlist::SgTable;
use state::{Entry, SgInfo, State, TableShape, UnmapRef};

/// Linux `DMA_MAPPING_ERROR` (all ones): what the raw layer returns for a
/// failed single mapping.
pub const DMA_MAPPING_ERROR: DmaAddr = DmaAddr::MAX;

/// Settings of a [`DmaDebug`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DebugConfig {
    /// log2 of the CPU cache-line size used by the overlap check (Linux
    /// `L1_CACHE_SHIFT`; default 6 = 64 bytes).
    pub cacheline_shift: u32,
    /// Panic on the first report (tests that must not misuse the API).
    pub panic_on_report: bool,
    /// Single mappings start [`ErrCheck::NotChecked`], as behind a raw
    /// C-style layer that returns bare addresses; off, `map` results are
    /// `Result`s and need no check. [`DmaDebug::map_raw`] always tracks.
    pub require_error_check: bool,
    /// How many freed addresses are remembered to tell a double unmap from
    /// an unmap of memory never mapped (0: never tell).
    pub freed_history: usize,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            cacheline_shift: 6,
            panic_on_report: false,
            require_error_check: false,
            freed_history: 4096,
        }
    }
}

/// A still-active mapping, as listed by [`DmaDebug::active`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ActiveMapping {
    /// How it was mapped.
    pub kind: MapKind,
    /// DMA address.
    pub dma: DmaAddr,
    /// Length in bytes.
    pub len: u64,
    /// Direction.
    pub dir: Direction,
    /// Target (single mappings).
    pub target: Option<SegTarget>,
    /// Effective physical start (single mappings).
    pub phys: Option<PhysAddr>,
    /// Error-check state.
    pub err: ErrCheck,
}

/// The dma-debug decorator: forwards every call to `B` and checks it.
pub type DmaDebug<B> = Layered<B, DebugLayer>;

/// dma-debug's [`Middleware`]: the table of active mappings and the
/// reports. Built by [`DmaDebug::new`] and [`DmaDebug::with_config`].
#[derive(Debug)]
pub struct DebugLayer {
    name: String,
    cfg: DebugConfig,
    state: Mutex<State>,
}

impl<B: DmaBackend> DmaDebug<B> {
    /// Wraps `inner` with the default settings.
    pub fn new(inner: B) -> Self {
        Self::with_config(inner, DebugConfig::default())
    }

    /// Wraps `inner`. A `cacheline_shift` above 63 is clamped to 63.
    pub fn with_config(inner: B, mut cfg: DebugConfig) -> Self {
        cfg.cacheline_shift = cfg.cacheline_shift.min(63);
        let name = format!("debug({})", inner.name());
        let state = State::new(cfg.cacheline_shift, cfg.freed_history);
        let layer = DebugLayer {
            name,
            cfg,
            state: Mutex::new(state),
        };
        Layered::wrap(inner, layer)
    }

    /// Every report so far, oldest first.
    pub fn reports(&self) -> Vec<DebugReport> {
        self.layer().lock().reports.clone()
    }

    /// Takes the reports, leaving the list empty.
    pub fn take_reports(&self) -> Vec<DebugReport> {
        core::mem::take(&mut self.layer().lock().reports)
    }

    /// Number of active mappings (table segments count one each).
    pub fn active_count(&self) -> usize {
        self.layer().lock().active_count()
    }

    /// Snapshot of the active mappings, by DMA address.
    pub fn active(&self) -> Vec<ActiveMapping> {
        self.layer()
            .lock()
            .entries()
            .map(|e| ActiveMapping {
                kind: e.kind,
                dma: e.dma,
                len: e.len,
                dir: e.dir,
                target: e.target,
                phys: e.phys,
                err: e.err,
            })
            .collect()
    }

    /// One [`DebugReport::Leak`] per active mapping, without recording them.
    pub fn check_leaks(&self) -> Vec<DebugReport> {
        self.layer()
            .lock()
            .entries()
            .map(|e| DebugReport::Leak {
                kind: e.kind,
                dma: e.dma,
                len: e.len,
                dir: e.dir,
                target: e.target,
            })
            .collect()
    }

    /// The driver lets go of the device (Linux `BUS_NOTIFY_UNBOUND_DRIVER`):
    /// records and returns a leak report per active mapping. The entries stay,
    /// like in Linux, so a late unmap is still checked.
    pub fn detach(&self) -> Vec<DebugReport> {
        let leaks = self.check_leaks();
        self.layer()
            .with_state(|st| st.reports.extend(leaks.iter().cloned()));
        leaks
    }

    /// Linux `dma_mapping_error`: true iff `dma` is [`DMA_MAPPING_ERROR`];
    /// records that the driver checked `dma`.
    pub fn mapping_error(&self, dma: DmaAddr) -> bool {
        self.layer().lock().mark_checked(dma);
        dma == DMA_MAPPING_ERROR
    }

    /// The raw, C-style single map: [`DMA_MAPPING_ERROR`] on failure, and the
    /// returned address must pass [`Self::mapping_error`] before unmap.
    pub fn map_raw(&self, req: &MapRequest) -> DmaAddr {
        match self.inner().map(req) {
            Ok(dma) => {
                self.layer().record_single(dma, req, ErrCheck::NotChecked);
                dma
            }
            Err(_) => DMA_MAPPING_ERROR,
        }
    }
}

impl DebugLayer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Runs `f` on the state, then panics if configured and `f` reported.
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (r, first_new) = {
            let mut st = self.lock();
            let before = st.reports.len();
            let r = f(&mut st);
            (r, st.reports.get(before).cloned())
        };
        if self.cfg.panic_on_report {
            if let Some(rep) = first_new {
                panic!("DMA-API: {}: {rep}", self.name);
            }
        }
        r
    }

    fn record_single(&self, dma: DmaAddr, req: &MapRequest, err: ErrCheck) {
        self.record(MapKind::Single, dma, req, err);
    }

    /// Linux `add_dma_entry` for a single or coherent mapping.
    fn record(&self, kind: MapKind, dma: DmaAddr, req: &MapRequest, err: ErrCheck) {
        self.with_state(|st| {
            let id = st.next_id();
            let mut lines = Vec::new();
            if !req.target.is_mmio() {
                lines.extend(st.add_lines((id, 0), req.phys, req.len, dma, req.dir, req.attrs));
            }
            st.add(Entry {
                kind,
                dma,
                len: req.len,
                dir: req.dir,
                target: Some(req.target),
                phys: Some(req.phys),
                sg: None,
                err,
                lines,
            });
        });
    }

    fn record_sg(
        &self,
        table: &SgTable,
        plan: &[SegPlan],
        n: usize,
        dir: Direction,
        attrs: DmaAttrs,
    ) {
        let info = Arc::new(SgInfo {
            orig_nents: table.orig_nents(),
            mapped_nents: n,
            plan: plan.into(),
            shape: TableShape::of(table),
        });
        self.with_state(|st| {
            let mut lines = Vec::new();
            let head = st.next_id();
            let first_dma = table.dma_iter().next().map(|s| s.dma_address());
            // Cache lines of every RAM CPU entry, at its effective address.
            for (i, (cpu, p)) in table.iter().zip(plan.iter()).enumerate() {
                if p.target.is_mmio() {
                    continue;
                }
                let idx = u32::try_from(i).unwrap_or(u32::MAX);
                let dma = first_dma.unwrap_or(DMA_MAPPING_ERROR);
                lines.extend(st.add_lines(
                    (head, idx),
                    p.phys,
                    u64::from(cpu.len()),
                    dma,
                    dir,
                    attrs,
                ));
            }
            for (i, seg) in table.dma_iter().take(n).enumerate() {
                st.add(Entry {
                    kind: MapKind::Sg,
                    dma: seg.dma_address(),
                    len: u64::from(seg.dma_len()),
                    dir,
                    target: None,
                    phys: None,
                    sg: Some(Arc::clone(&info)),
                    err: ErrCheck::NotApplicable,
                    lines: if i == 0 {
                        core::mem::take(&mut lines)
                    } else {
                        Vec::new()
                    },
                });
            }
        });
    }

    /// Linux `check_unmap` of a single or coherent mapping.
    fn check_unmap_single(&self, kind: MapKind, dma: DmaAddr, req: &MapRequest) {
        let r = UnmapRef {
            kind,
            dma,
            len: req.len,
            dir: req.dir,
            target: Some(req.target),
            phys: Some(req.phys),
            nents: None,
        };
        self.with_state(|st| st.check_unmap(&r, None, DMA_MAPPING_ERROR));
    }

    fn check_unmap_sg(&self, table: &SgTable, plan: &[SegPlan], dir: Direction) {
        let nents = table.orig_nents();
        self.with_state(|st| {
            let mut info = None;
            for (i, seg) in table.dma_iter().enumerate() {
                let r = UnmapRef {
                    kind: MapKind::Sg,
                    dma: seg.dma_address(),
                    len: u64::from(seg.dma_len()),
                    dir,
                    target: None,
                    phys: None,
                    nents: Some(nents),
                };
                if i == 0 {
                    info = st.sg_info(&r, plan, table);
                    if let Some(info) = &info {
                        check_plan(st, seg.dma_address(), &info.plan, plan);
                    }
                }
                if matches!(&info, Some(t) if t.mapped_nents != 0 && i >= t.mapped_nents) {
                    break;
                }
                st.check_unmap(&r, info.as_ref(), DMA_MAPPING_ERROR);
            }
        });
    }
}

/// Target and phys of the plan given to unmap_sg against the mapped one (the
/// first difference is reported).
fn check_plan(st: &mut State, dma: DmaAddr, mapped: &[SegPlan], given: &[SegPlan]) {
    for (m, g) in mapped.iter().zip(given.iter()) {
        if m.target != g.target {
            st.reports.push(DebugReport::UnmapTargetMismatch {
                dma,
                mapped: m.target,
                unmapped: g.target,
            });
            return;
        }
        if m.phys != g.phys {
            st.reports.push(DebugReport::UnmapPhysMismatch {
                dma,
                mapped: m.phys,
                unmapped: g.phys,
            });
            return;
        }
    }
}

impl<B: DmaBackend + ?Sized> Middleware<B> for DebugLayer {
    fn name<'a>(&'a self, _next: &'a B) -> &'a str {
        &self.name
    }

    fn map(&self, next: &B, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        let dma = next.map(req)?;
        let err = if self.cfg.require_error_check {
            ErrCheck::NotChecked
        } else {
            ErrCheck::NotApplicable
        };
        self.record_single(dma, req, err);
        Ok(dma)
    }

    fn unmap(&self, next: &B, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        self.check_unmap_single(MapKind::Single, dma, req);
        next.unmap(dma, req)
    }

    /// `debug_dma_alloc_coherent`: recorded as a coherent entry (its cache
    /// lines are tracked like a bidirectional `SKIP_CPU_SYNC` mapping).
    fn map_coherent(&self, next: &B, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        let dma = next.map_coherent(req)?;
        self.record(
            MapKind::Coherent,
            dma,
            &req.as_map_request(),
            ErrCheck::NotApplicable,
        );
        Ok(dma)
    }

    /// `debug_dma_free_coherent`: the entry must be a coherent one with the
    /// same size and CPU address ("wrong function", "different size",
    /// "different CPU address" otherwise).
    fn unmap_coherent(
        &self,
        next: &B,
        dma: DmaAddr,
        req: &CoherentRequest,
    ) -> Result<(), DmaError> {
        self.check_unmap_single(MapKind::Coherent, dma, &req.as_map_request());
        next.unmap_coherent(dma, req)
    }

    fn map_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let n = next.map_sg(table, plan, dir, attrs)?;
        self.record_sg(table, plan, n, dir, attrs);
        Ok(n)
    }

    fn unmap_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.check_unmap_sg(table, plan, dir);
        next.unmap_sg(table, plan, dir, attrs)
    }

    fn sync_for_cpu(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        self.with_state(|st| st.check_sync(SyncCall::ForCpu, dma, len, dir));
        next.sync_for_cpu(dma, len, dir)
    }

    fn sync_for_device(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        self.with_state(|st| st.check_sync(SyncCall::ForDevice, dma, len, dir));
        next.sync_for_device(dma, len, dir)
    }

    fn note_mapping_error_check(&self, next: &B, dma: DmaAddr) {
        self.lock().mark_checked(dma);
        next.note_mapping_error_check(dma);
    }
}
