//! Coherent allocations through the decorators: each forwards
//! `map_coherent` / `unmap_coherent` to the backend it wraps (never turning
//! them into a `map`, which a bouncing backend would bounce); tracing records
//! them, fault injection fails them only when asked, dma-debug tracks them
//! as coherent entries and checks their free like `debug_dma_free_coherent`.

mod common;

use common::Arena;
use dma_api::debug::{DebugReport, DmaDebug, MapKind};
use dma_api::middleware::{
    FaultInject, FaultOp, FaultOps, InjectError, TraceOk, TraceOp, Tracing, Trigger,
};
use dma_api::port::{CoherentRequest, DmaBackend};
use dma_api::{Bdf, DmaAttrs, DmaError, PhysAddr};
use std::sync::Arc;

fn creq(phys: u64, len: u64) -> CoherentRequest {
    CoherentRequest {
        device: "03:00.0".parse::<Bdf>().unwrap(),
        phys: PhysAddr::new(phys),
        len,
        attrs: DmaAttrs::empty(),
    }
}

#[test]
fn every_decorator_and_pointer_forwards_to_the_wrapped_backend() {
    let arena = Arc::new(Arena::iommu());
    let debug = DmaDebug::new(arena.clone());
    let fault = FaultInject::new(
        debug,
        FaultOps::all(),
        Trigger::Never,
        InjectError::NoResources,
    );
    let stack: Box<dyn DmaBackend> = Box::new(Tracing::ring(fault, 16));
    let r = creq(0x20_0000, 0x2000);
    let dma = stack.map_coherent(&r).unwrap();
    assert_eq!(
        arena.coherent_maps(),
        1,
        "reached the arena as map_coherent"
    );
    assert_eq!(arena.live_count(), 1);
    stack.unmap_coherent(dma, &r).unwrap();
    assert_eq!(arena.live_count(), 0);
}

#[test]
fn tracing_records_coherent_calls() {
    let t = Tracing::ring(Arena::direct(), 8);
    let r = creq(0x20_0000, 0x1000);
    let dma = t.map_coherent(&r).unwrap();
    t.unmap_coherent(dma, &r).unwrap();
    let got: Vec<(TraceOp, Result<TraceOk, DmaError>)> =
        t.records().into_iter().map(|x| (x.op, x.result)).collect();
    assert_eq!(
        got,
        vec![
            (TraceOp::MapCoherent { req: r }, Ok(TraceOk::Dma(dma))),
            (TraceOp::UnmapCoherent { dma, req: r }, Ok(TraceOk::Done)),
        ]
    );
}

#[test]
fn fault_injection_fails_coherent_maps_only_when_chosen() {
    let r = creq(0x20_0000, 0x1000);
    let maps_only = FaultInject::new(
        Arena::iommu(),
        FaultOps::MAP,
        Trigger::EveryNth(1),
        InjectError::NoResources,
    );
    let dma = maps_only.map_coherent(&r).unwrap();
    maps_only.unmap_coherent(dma, &r).unwrap();
    assert_eq!(maps_only.injected(), 0);

    let f = FaultInject::new(
        Arena::iommu(),
        FaultOps::MAP_COHERENT,
        Trigger::Predicate(Box::new(|c| {
            c.op == FaultOp::MapCoherent && c.phys == Some(PhysAddr::new(0x20_0000))
        })),
        InjectError::NoResources,
    );
    assert_eq!(
        f.map_coherent(&r),
        Err(DmaError::OutOfMemory { bytes: 0x1000 })
    );
    assert_eq!(f.inner().live_count(), 0, "nothing mapped");
    assert!(f.map_coherent(&creq(0x30_0000, 0x1000)).is_ok());
    assert_eq!(f.injected(), 1);
}

#[test]
fn dma_debug_checks_a_coherent_free_like_linux() {
    let d = DmaDebug::new(Arena::iommu());
    let r = creq(0x20_0000, 0x1000);
    let dma = d.map_coherent(&r).unwrap();
    assert_eq!(d.active()[0].kind, MapKind::Coherent);
    // Freed with the wrong function.
    d.unmap(dma, &r.as_map_request()).unwrap();
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::UnmapKindMismatch {
            dma,
            mapped: MapKind::Coherent,
            unmapped: MapKind::Single,
        }]
    );
    // Freed with a different CPU address.
    let dma = d.map_coherent(&r).unwrap();
    let other = CoherentRequest {
        phys: PhysAddr::new(0x30_0000),
        ..r
    };
    let _ = d.unmap_coherent(dma, &other);
    assert_eq!(
        d.take_reports(),
        vec![DebugReport::UnmapPhysMismatch {
            dma,
            mapped: r.phys,
            unmapped: other.phys,
        }]
    );
    // A clean pair reports nothing.
    let dma = d.map_coherent(&r).unwrap();
    d.unmap_coherent(dma, &r).unwrap();
    assert_eq!(d.reports(), vec![]);
    assert_eq!(d.active_count(), 0);
}
