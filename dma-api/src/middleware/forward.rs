//! `DmaBackend` for pointers to backends (`&T`, `Box<T>`, `Arc<T>`, `T` may be
//! `dyn DmaBackend`), so decorators stack over a shared or type-erased backend
//! (`DmaDebug<Arc<dyn DmaBackend>>`). Every method forwards, defaults included.
//! The one hand-written forwarding besides `Layered` (`layer.rs`): a pointer
//! wraps no backend a middleware could take as `next`. `tests/forwarding.rs`
//! checks that every method reaches the pointee.

use crate::attrs::DmaAttrs;
use crate::device::DmaConstraints;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::port::backend::{
    Bounce, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, MapRequest, SegPlan,
};
use crate::types::DmaAddr;
use alloc::boxed::Box;
use alloc::sync::Arc;
use scatterlist::SgTable;

macro_rules! forward_backend {
    ($($ptr:ty),*) => {$(
        impl<T: DmaBackend + ?Sized> DmaBackend for $ptr {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
                (**self).map(req)
            }
            fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
                (**self).check(req)
            }
            fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
                (**self).unmap(dma, req)
            }
            fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
                (**self).map_coherent(req)
            }
            fn unmap_coherent(
                &self,
                dma: DmaAddr,
                req: &CoherentRequest,
            ) -> Result<(), DmaError> {
                (**self).unmap_coherent(dma, req)
            }
            fn map_sg(
                &self,
                table: &mut SgTable,
                plan: &[SegPlan],
                dir: Direction,
                attrs: DmaAttrs,
            ) -> Result<usize, DmaError> {
                (**self).map_sg(table, plan, dir, attrs)
            }
            fn unmap_sg(
                &self,
                table: &mut SgTable,
                plan: &[SegPlan],
                dir: Direction,
                attrs: DmaAttrs,
            ) -> Result<(), DmaError> {
                (**self).unmap_sg(table, plan, dir, attrs)
            }
            fn map_sg_ram(
                &self,
                table: &mut SgTable,
                dir: Direction,
                attrs: DmaAttrs,
            ) -> Option<Result<usize, DmaError>> {
                (**self).map_sg_ram(table, dir, attrs)
            }
            fn unmap_sg_ram(
                &self,
                table: &mut SgTable,
                dir: Direction,
                attrs: DmaAttrs,
            ) -> Option<Result<(), DmaError>> {
                (**self).unmap_sg_ram(table, dir, attrs)
            }
            fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
                (**self).sync_for_cpu(dma, len, dir)
            }
            fn sync_for_device(
                &self,
                dma: DmaAddr,
                len: u64,
                dir: Direction,
            ) -> Result<(), DmaError> {
                (**self).sync_for_device(dma, len, dir)
            }
            fn need_sync(&self, dma: DmaAddr) -> bool {
                (**self).need_sync(dma)
            }
            fn bounce_of(&self, dma: DmaAddr) -> Option<Bounce> {
                (**self).bounce_of(dma)
            }
            fn max_mapping_size(&self) -> u64 {
                (**self).max_mapping_size()
            }
            fn opt_mapping_size(&self) -> u64 {
                (**self).opt_mapping_size()
            }
            fn merge_boundary(&self) -> u64 {
                (**self).merge_boundary()
            }
            fn checks_mapped_segments(&self) -> bool {
                (**self).checks_mapped_segments()
            }
            fn iova_ops(&self) -> Option<&dyn IovaOps> {
                (**self).iova_ops()
            }
            fn note_mapping_error_check(&self, dma: DmaAddr) {
                (**self).note_mapping_error_check(dma)
            }
            fn constraints(&self) -> Option<DmaConstraints> {
                (**self).constraints()
            }
            fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
                (**self).set_constraints(req)
            }
        }
    )*};
}

forward_backend!(&T, Box<T>, Arc<T>);
