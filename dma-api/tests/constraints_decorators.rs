//! Device constraints through the decorators: tracing, fault injection,
//! dma-debug and the pointer forwards (`Box`, `Arc`, `&`) all pass
//! `constraints` and `set_constraints` to the backend they wrap, and a
//! backend without them refuses with `ConstraintsFixed` naming itself.

mod common;

use common::Arena;
use dma_api::debug::DmaDebug;
use dma_api::device::DmaConstraints;
use dma_api::middleware::{
    FaultInject, FaultOps, InjectError, Layered, Middleware, Tracing, Trigger,
};
use dma_api::port::{ConstraintsRequest, DmaBackend};
use dma_api::{Bdf, DmaError, DmaMask, PhysAddr};
use std::sync::{Arc, Mutex};

/// Keeps the constraints it is given, over a backend that keeps none.
#[derive(Default)]
struct Keeper(Mutex<Option<DmaConstraints>>);

impl<B: DmaBackend + ?Sized> Middleware<B> for Keeper {
    fn constraints(&self, _: &B) -> Option<DmaConstraints> {
        *self.0.lock().unwrap()
    }
    fn set_constraints(&self, _: &B, req: &ConstraintsRequest) -> Result<(), DmaError> {
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
    let keeper = Arc::new(Layered::wrap(Arena::direct(), Keeper::default()));
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
    assert_eq!(*keeper.layer().0.lock().unwrap(), Some(r.constraints));
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
