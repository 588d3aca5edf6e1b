//! One delegation mechanism for every backend decorator: a [`Middleware`]
//! names only the calls it changes, and [`Layered`] (a backend plus one
//! middleware) implements [`DmaBackend`] once, for all of them.
//!
//! Why this shape (tower's `Layer`/`Service`, smoltcp's middleware): a
//! decorator that implemented `DmaBackend` itself had to copy every method
//! it did not change, and a copy it forgot silently fell back to the
//! trait's *default* instead of forwarding — a wrapper that did not forward
//! `checks_mapped_segments`, `need_sync` or `map_coherent` changed
//! behaviour without a compile error. Here every [`Middleware`] method
//! takes the wrapped backend as `next` and its default forwards to it (but
//! the plan-less table calls, [`Middleware::map_sg_ram`], which a layer
//! must not be skipped by and so declines unless it opts in), so
//! a new `DmaBackend` method is added in this file only, and a decorator
//! that does not mention it forwards it. The cost is nil: `Layered` is
//! generic over both halves and every forwarding method is `#[inline]`,
//! so a call through a layer that does not change it compiles to the
//! wrapped backend's call (`cargo bench -p dma-api --bench debug`,
//! `empty_layer` against `bare`).
//!
//! The two-step IOVA API is an object the backend lends
//! ([`DmaBackend::iova_ops`]); a layer that changes it returns the `wrapped`
//! view from its [`Middleware::iova_ops`] and overrides the `iova_*` calls,
//! which get the wrapped backend's [`IovaOps`] as `next`.
//!
//! Pointers to backends forward by hand once, in `forward.rs`: they wrap
//! nothing a layer could hold. `tests/forwarding.rs` calls every method
//! through an empty layer and through each pointer, and fails when
//! `DmaBackend` gains a method it does not call.

use crate::attrs::DmaAttrs;
use crate::device::DmaConstraints;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::backend::{
    Bounce, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, IovaState, MapRequest,
    SegPlan,
};
use crate::types::{DmaAddr, Iova, PhysAddr};
use scatterlist::SgTable;

/// What a decorator changes about the backend `B` it wraps. Every method
/// mirrors the [`DmaBackend`] (or [`IovaOps`]) method of the same name,
/// whose contract it keeps, with the wrapped backend as `next`; every
/// default forwards to `next` unchanged.
pub trait Middleware<B: DmaBackend + ?Sized>: Send + Sync {
    /// [`DmaBackend::name`].
    #[inline]
    fn name<'a>(&'a self, next: &'a B) -> &'a str {
        next.name()
    }

    /// [`DmaBackend::map`].
    #[inline]
    fn map(&self, next: &B, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        next.map(req)
    }

    /// [`DmaBackend::check`].
    #[inline]
    fn check(&self, next: &B, req: &MapRequest) -> Result<(), DmaError> {
        next.check(req)
    }

    /// [`DmaBackend::unmap`].
    #[inline]
    fn unmap(&self, next: &B, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        next.unmap(dma, req)
    }

    /// [`DmaBackend::map_coherent`].
    #[inline]
    fn map_coherent(&self, next: &B, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        next.map_coherent(req)
    }

    /// [`DmaBackend::unmap_coherent`].
    #[inline]
    fn unmap_coherent(
        &self,
        next: &B,
        dma: DmaAddr,
        req: &CoherentRequest,
    ) -> Result<(), DmaError> {
        next.unmap_coherent(dma, req)
    }

    /// [`DmaBackend::map_sg`].
    #[inline]
    fn map_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        next.map_sg(table, plan, dir, attrs)
    }

    /// [`DmaBackend::unmap_sg`].
    #[inline]
    fn unmap_sg(
        &self,
        next: &B,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        next.unmap_sg(table, plan, dir, attrs)
    }

    /// [`DmaBackend::map_sg_ram`]. The one default that does not forward:
    /// `None`, so the dispatcher writes the RAM plan and the table comes
    /// through this layer's [`Middleware::map_sg`] like every other — a
    /// layer that watches or changes `map_sg` cannot be skipped by an
    /// all-RAM table. A layer that leaves tables alone may forward it
    /// ([`Identity`] does) to keep the plan-less path.
    #[inline]
    fn map_sg_ram(
        &self,
        next: &B,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        let _ = (next, table, dir, attrs);
        None
    }

    /// [`DmaBackend::unmap_sg_ram`]; `None` by default, as
    /// [`Middleware::map_sg_ram`].
    #[inline]
    fn unmap_sg_ram(
        &self,
        next: &B,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        let _ = (next, table, dir, attrs);
        None
    }

    /// [`DmaBackend::sync_for_cpu`].
    #[inline]
    fn sync_for_cpu(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        next.sync_for_cpu(dma, len, dir)
    }

    /// [`DmaBackend::sync_for_device`].
    #[inline]
    fn sync_for_device(
        &self,
        next: &B,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        next.sync_for_device(dma, len, dir)
    }

    /// [`DmaBackend::need_sync`].
    #[inline]
    fn need_sync(&self, next: &B, dma: DmaAddr) -> bool {
        next.need_sync(dma)
    }

    /// [`DmaBackend::bounce_of`].
    #[inline]
    fn bounce_of(&self, next: &B, dma: DmaAddr) -> Option<Bounce> {
        next.bounce_of(dma)
    }

    /// [`DmaBackend::max_mapping_size`].
    #[inline]
    fn max_mapping_size(&self, next: &B) -> u64 {
        next.max_mapping_size()
    }

    /// [`DmaBackend::opt_mapping_size`].
    #[inline]
    fn opt_mapping_size(&self, next: &B) -> u64 {
        next.opt_mapping_size()
    }

    /// [`DmaBackend::merge_boundary`].
    #[inline]
    fn merge_boundary(&self, next: &B) -> u64 {
        next.merge_boundary()
    }

    /// [`DmaBackend::checks_mapped_segments`].
    #[inline]
    fn checks_mapped_segments(&self, next: &B) -> bool {
        next.checks_mapped_segments()
    }

    /// [`DmaBackend::iova_ops`]. `wrapped` is the layer's own view of the
    /// two-step API, whose calls go through the `iova_*` methods below;
    /// return it (when `next` has the API) to change those calls.
    #[inline]
    fn iova_ops<'a>(&'a self, next: &'a B, wrapped: &'a dyn IovaOps) -> Option<&'a dyn IovaOps> {
        let _ = wrapped;
        next.iova_ops()
    }

    /// [`DmaBackend::constraints`].
    #[inline]
    fn constraints(&self, next: &B) -> Option<DmaConstraints> {
        next.constraints()
    }

    /// [`DmaBackend::set_constraints`].
    #[inline]
    fn set_constraints(&self, next: &B, req: &ConstraintsRequest) -> Result<(), DmaError> {
        next.set_constraints(req)
    }

    /// [`DmaBackend::note_mapping_error_check`].
    #[inline]
    fn note_mapping_error_check(&self, next: &B, dma: DmaAddr) {
        next.note_mapping_error_check(dma)
    }

    /// [`IovaOps::try_alloc`] through the `wrapped` view.
    #[inline]
    fn iova_try_alloc(
        &self,
        next: &dyn IovaOps,
        phys: PhysAddr,
        size: u64,
    ) -> Result<IovaState, DmaError> {
        next.try_alloc(phys, size)
    }

    /// [`IovaOps::link`] through the `wrapped` view.
    #[inline]
    #[allow(clippy::too_many_arguments)] // `IovaOps::link`'s own, plus `next`
    fn iova_link(
        &self,
        next: &dyn IovaOps,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        next.link(state, phys, offset, size, dir, attrs)
    }

    /// [`IovaOps::sync`] through the `wrapped` view.
    #[inline]
    fn iova_sync(
        &self,
        next: &dyn IovaOps,
        state: &IovaState,
        offset: u64,
        size: u64,
    ) -> Result<(), DmaError> {
        next.sync(state, offset, size)
    }

    /// [`IovaOps::unlink`] through the `wrapped` view.
    #[inline]
    fn iova_unlink(
        &self,
        next: &dyn IovaOps,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        next.unlink(state, offset, size, dir, attrs)
    }

    /// [`IovaOps::destroy`] through the `wrapped` view.
    #[inline]
    fn iova_destroy(
        &self,
        next: &dyn IovaOps,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        next.destroy(state, mapped_len, dir, attrs)
    }
}

/// A middleware that changes nothing: `Layered<B, Identity>` behaves
/// exactly like `B` (what the forwarding test and the overhead bench wrap).
#[derive(Clone, Copy, Default, Debug)]
pub struct Identity;

impl<B: DmaBackend + ?Sized> Middleware<B> for Identity {
    // The one default that does not forward (`Middleware::map_sg_ram`):
    // changing nothing, Identity forwards it too.
    #[inline]
    fn map_sg_ram(
        &self,
        next: &B,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        next.map_sg_ram(table, dir, attrs)
    }

    #[inline]
    fn unmap_sg_ram(
        &self,
        next: &B,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        next.unmap_sg_ram(table, dir, attrs)
    }
}

/// A backend `B` seen through the middleware `M`: the one [`DmaBackend`]
/// implementation of every decorator ([`DmaDebug`](crate::debug::DmaDebug),
/// [`Tracing`](super::Tracing), [`FaultInject`](super::FaultInject) are
/// `Layered` with their middleware). Stacks nest: the outer layer's `next`
/// is the inner `Layered`.
#[derive(Debug)]
pub struct Layered<B, M> {
    inner: B,
    layer: M,
}

impl<B, M> Layered<B, M> {
    /// `inner` seen through `layer`.
    pub const fn wrap(inner: B, layer: M) -> Self {
        Self { inner, layer }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The middleware (its own state: reports, counters, records).
    pub fn layer(&self) -> &M {
        &self.layer
    }

    /// Takes the stack apart.
    pub fn into_parts(self) -> (B, M) {
        (self.inner, self.layer)
    }
}

impl<B: DmaBackend, M: Middleware<B>> DmaBackend for Layered<B, M> {
    #[inline]
    fn name(&self) -> &str {
        self.layer.name(&self.inner)
    }
    #[inline]
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        self.layer.map(&self.inner, req)
    }
    #[inline]
    fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
        self.layer.check(&self.inner, req)
    }
    #[inline]
    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        self.layer.unmap(&self.inner, dma, req)
    }
    #[inline]
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        self.layer.map_coherent(&self.inner, req)
    }
    #[inline]
    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        self.layer.unmap_coherent(&self.inner, dma, req)
    }
    #[inline]
    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        self.layer.map_sg(&self.inner, table, plan, dir, attrs)
    }
    #[inline]
    fn unmap_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.layer.unmap_sg(&self.inner, table, plan, dir, attrs)
    }
    #[inline]
    fn map_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        self.layer.map_sg_ram(&self.inner, table, dir, attrs)
    }
    #[inline]
    fn unmap_sg_ram(
        &self,
        table: &mut SgTable,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        self.layer.unmap_sg_ram(&self.inner, table, dir, attrs)
    }
    #[inline]
    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.layer.sync_for_cpu(&self.inner, dma, len, dir)
    }
    #[inline]
    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.layer.sync_for_device(&self.inner, dma, len, dir)
    }
    #[inline]
    fn need_sync(&self, dma: DmaAddr) -> bool {
        self.layer.need_sync(&self.inner, dma)
    }
    #[inline]
    fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
        self.layer.bounce_of(&self.inner, dma)
    }
    #[inline]
    fn max_mapping_size(&self) -> u64 {
        self.layer.max_mapping_size(&self.inner)
    }
    #[inline]
    fn opt_mapping_size(&self) -> u64 {
        self.layer.opt_mapping_size(&self.inner)
    }
    #[inline]
    fn merge_boundary(&self) -> u64 {
        self.layer.merge_boundary(&self.inner)
    }
    #[inline]
    fn checks_mapped_segments(&self) -> bool {
        self.layer.checks_mapped_segments(&self.inner)
    }
    #[inline]
    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        self.layer.iova_ops(&self.inner, self)
    }
    #[inline]
    fn constraints(&self) -> Option<DmaConstraints> {
        self.layer.constraints(&self.inner)
    }
    #[inline]
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        self.layer.set_constraints(&self.inner, req)
    }
    #[inline]
    fn note_mapping_error_check(&self, dma: DmaAddr) {
        self.layer.note_mapping_error_check(&self.inner, dma)
    }
}

impl<B: DmaBackend, M: Middleware<B>> Layered<B, M> {
    /// The wrapped backend's two-step API, for the `wrapped` view. It is
    /// only handed out while the wrapped backend has one; should that
    /// change, the call fails with [`DmaError::IovaNotAllocated`] naming
    /// `iova` (the reservation's base, 0 before one exists).
    fn next_ops(&self, iova: Iova) -> Result<&dyn IovaOps, DmaError> {
        self.inner
            .iova_ops()
            .ok_or(DmaError::IovaNotAllocated { iova })
    }
}

/// The `wrapped` view a layer may hand out from [`Middleware::iova_ops`].
impl<B: DmaBackend, M: Middleware<B>> IovaOps for Layered<B, M> {
    fn try_alloc(&self, phys: PhysAddr, size: u64) -> Result<IovaState, DmaError> {
        let next = self.next_ops(Iova::new(0))?;
        self.layer.iova_try_alloc(next, phys, size)
    }
    fn link(
        &self,
        state: &IovaState,
        phys: PhysAddr,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let next = self.next_ops(state.base)?;
        self.layer
            .iova_link(next, state, phys, offset, size, dir, attrs)
    }
    fn sync(&self, state: &IovaState, offset: u64, size: u64) -> Result<(), DmaError> {
        let next = self.next_ops(state.base)?;
        self.layer.iova_sync(next, state, offset, size)
    }
    fn unlink(
        &self,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let next = self.next_ops(state.base)?;
        self.layer
            .iova_unlink(next, state, offset, size, dir, attrs)
    }
    fn destroy(
        &self,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let next = self.next_ops(state.base)?;
        self.layer.iova_destroy(next, state, mapped_len, dir, attrs)
    }
}
