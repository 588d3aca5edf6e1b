//! Device constraints through the decorators: tracing, fault injection,
//! dma-debug and the pointer forwards (`Box`, `Arc`, `&`) all pass
//! `constraints` and `set_constraints` to the backend they wrap, and a
//! backend without them refuses with `ConstraintsFixed` naming itself.

mod common;

use common::Arena;
use dma_api::debug::DmaDebug;
use dma_api::device::DmaConstraints;
use dma_api::middleware::{FaultInject, FaultOps, InjectError, Tracing, Trigger};
use dma_api::port::{ConstraintsRequest, DmaBackend, MapRequest, SegPlan};
use dma_api::{Bdf, Direction, DmaAddr, DmaAttrs, DmaError, DmaMask, PhysAddr};
use scatterlist::SgTable;
use std::sync::{Arc, Mutex};

/// A backend that only keeps the constraints it is given.
#[derive(Default)]
struct Keeper(Mutex<Option<DmaConstraints>>);

impl DmaBackend for Keeper {
    fn name(&self) -> &str {
        "keeper"
    }
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        Ok(DmaAddr::new(req.phys.raw()))
    }
    fn unmap(&self, _: DmaAddr, _: &MapRequest) -> Result<(), DmaError> {
        Ok(())
    }
    fn map_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<usize, DmaError> {
        Ok(0)
    }
    fn unmap_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        Ok(())
    }
    fn sync_for_cpu(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn sync_for_device(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        Ok(())
    }
    fn need_sync(&self, _: DmaAddr) -> bool {
        false
    }
    fn max_mapping_size(&self) -> u64 {
        u64::MAX
    }
    fn opt_mapping_size(&self) -> u64 {
        u64::MAX
    }
    fn merge_boundary(&self) -> u64 {
        0
    }
    fn constraints(&self) -> Option<DmaConstraints> {
        *self.0.lock().unwrap()
    }
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        *self.0.lock().unwrap() = Some(req.constraints);
        Ok(())
    }
}

fn dev() -> Bdf {
    "03:00.0".parse().unwrap()
}

fn request(bits: u32) -> ConstraintsRequest {
    ConstraintsRequest {
        device: dev(),
        constraints: DmaConstraints::pci(DmaMask::new(bits).unwrap()),
        coherent_pool: (PhysAddr::new(0x1000_0000), 0x10_0000),
    }
}

#[test]
fn every_decorator_and_pointer_forwards_constraints() {
    let keeper = Arc::new(Keeper::default());
    let debug = DmaDebug::new(keeper.clone());
    let fault = FaultInject::new(
        debug,
        FaultOps::all(),
        Trigger::EveryNth(1),
        InjectError::NoResources,
    );
    let stack: Box<dyn DmaBackend> = Box::new(Tracing::ring(fault, 16));
    assert_eq!(stack.constraints(), None);
    let r = request(40);
    // Not a call Linux can fail by injection: it passes even when every
    // injectable call fails.
    stack.set_constraints(&r).unwrap();
    assert_eq!(*keeper.0.lock().unwrap(), Some(r.constraints));
    assert_eq!(stack.constraints(), Some(r.constraints));
    let by_ref: &dyn DmaBackend = &*stack;
    assert_eq!(by_ref.constraints(), Some(r.constraints));
}

#[test]
fn a_backend_without_them_refuses_naming_itself() {
    let arena = Arena::iommu();
    let name = arena.name().to_string();
    let stack = Tracing::ring(DmaDebug::new(arena), 4);
    assert_eq!(stack.constraints(), None);
    assert_eq!(
        stack.set_constraints(&request(32)),
        Err(DmaError::ConstraintsFixed {
            device: dev(),
            backend: name
        })
    );
}
