//! Tracing and fault-injection decorators, alone and stacked with dma-debug.

mod common;

use common::{ram, table, Arena, IOVA_BASE, OFFSET};
use dma_api::debug::{DebugReport, DmaDebug};
use dma_api::middleware::{
    FaultInject, FaultOp, FaultOps, InjectError, TraceOk, TraceOp, TraceRecord, Tracing, Trigger,
};
use dma_api::port::{DmaBackend, MapRequest, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs, DmaError, DmaMask, ErrorKind, PhysAddr};
use std::sync::{Arc, Mutex};

const FROM: Direction = Direction::FromDevice;
const TO: Direction = Direction::ToDevice;

/// A driver that retries `NoResources` up to `tries` times.
fn map_with_retry(
    b: &dyn DmaBackend,
    req: &MapRequest,
    tries: u32,
) -> Result<(DmaAddr, u32), DmaError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match b.map(req) {
            Ok(dma) => return Ok((dma, attempt)),
            Err(e) if e.kind() == ErrorKind::NoResources && attempt < tries => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---- fault injection ----

#[test]
fn every_third_map_fails_and_the_retrying_driver_gets_all_buffers() {
    let f = FaultInject::new(
        Arena::iommu(),
        FaultOps::MAP,
        Trigger::EveryNth(3),
        InjectError::NoResources,
    );
    let mut attempts = Vec::new();
    let mut mapped = Vec::new();
    for i in 0..6u64 {
        let r = ram(0x10_0000 + i * 0x1000, 512, TO);
        let (dma, n) = map_with_retry(&f, &r, 4).unwrap();
        attempts.push(n);
        mapped.push((dma, r));
    }
    // Calls 3 and 6 fail (buffers 2 and 4), their retries (calls 4 and 7) succeed.
    assert_eq!(attempts, vec![1, 1, 2, 1, 2, 1]);
    assert_eq!(f.injected(), 2);
    assert_eq!(f.calls(), 8);
    assert_eq!(f.inner().live_count(), 6);
    for (dma, r) in mapped {
        f.unmap(dma, &r).unwrap();
    }
    assert_eq!(f.inner().live_count(), 0);
}

#[test]
fn injected_error_carries_the_call_length_or_the_given_error() {
    let f = FaultInject::new(
        Arena::direct(),
        FaultOps::MAP,
        Trigger::FirstN(1),
        InjectError::NoResources,
    );
    assert_eq!(
        f.map(&ram(0x1000, 777, TO)),
        Err(DmaError::OutOfMemory { bytes: 777 })
    );
    assert!(f.map(&ram(0x1000, 777, TO)).is_ok());

    let custom = DmaError::MaskUnreachable {
        bus: BusAddr::new(0x1_0000_0000),
        len: 64,
        mask: DmaMask::new(32).unwrap(),
    };
    let f = FaultInject::new(
        Arena::direct(),
        FaultOps::all(),
        Trigger::EveryNth(1),
        InjectError::Error(custom.clone()),
    );
    assert_eq!(f.map(&ram(0x1000, 64, TO)), Err(custom.clone()));
    assert_eq!(
        f.sync_for_cpu(DmaAddr::new(OFFSET), 64, TO),
        Err(custom.clone())
    );
    assert_eq!(
        f.sync_for_device(DmaAddr::new(OFFSET), 64, TO),
        Err(custom.clone())
    );
    let (mut t, plan) = table(&[(0x2000, 4096)]);
    assert_eq!(f.map_sg(&mut t, &plan, TO, DmaAttrs::empty()), Err(custom));
    assert!(!t.is_dma_mapped());
    assert_eq!(f.injected(), 4);
    assert_eq!(f.inner().live_count(), 0);
}

#[test]
fn only_the_chosen_operations_fail() {
    let f = FaultInject::new(
        Arena::direct(),
        FaultOps::MAP_SG,
        Trigger::EveryNth(1),
        InjectError::NoResources,
    );
    let r = ram(0x1000, 64, TO);
    let dma = f.map(&r).unwrap();
    f.sync_for_device(dma, 64, TO).unwrap();
    let (mut t, plan) = table(&[(0x2000, 4096), (0x4000, 100)]);
    assert_eq!(
        f.map_sg(&mut t, &plan, TO, DmaAttrs::empty()),
        Err(DmaError::OutOfMemory { bytes: 4196 })
    );
    assert_eq!(f.calls(), 1);
    assert_eq!(f.injected(), 1);
}

#[test]
fn probability_is_reproducible_from_the_seed() {
    let pattern = |seed| {
        let f = FaultInject::new(
            Arena::direct(),
            FaultOps::MAP,
            Trigger::Probability {
                per_million: 300_000,
                seed,
            },
            InjectError::NoResources,
        );
        (0..200)
            .map(|i| f.map(&ram(0x1000 + i * 64, 64, TO)).is_err())
            .collect::<Vec<bool>>()
    };
    let a = pattern(12345);
    assert_eq!(a, pattern(12345));
    assert_ne!(a, pattern(54321));
    let fails = a.iter().filter(|&&x| x).count();
    assert!((35..=85).contains(&fails), "{fails}");
}

#[test]
fn predicate_picks_calls_by_their_arguments() {
    let f = FaultInject::new(
        Arena::direct(),
        FaultOps::MAP | FaultOps::SYNC_FOR_CPU,
        Trigger::Predicate(Box::new(|c| c.op == FaultOp::Map && c.len > 0x1_0000)),
        InjectError::NoResources,
    );
    assert!(f.map(&ram(0x1000, 0x1_0000, FROM)).is_ok());
    assert_eq!(
        f.map(&ram(0x1000, 0x1_0001, FROM)),
        Err(DmaError::OutOfMemory { bytes: 0x1_0001 })
    );
    assert!(f
        .sync_for_cpu(DmaAddr::new(OFFSET + 0x1000), 0x2_0000, FROM)
        .is_err()); // arena: outside
    assert_eq!(f.injected(), 1);
    assert_eq!(f.calls(), 3);
}

// ---- tracing ----

#[test]
fn tracing_records_the_exact_call_sequence() {
    let t = Tracing::ring(Arena::iommu(), 64);
    let r = ram(0x4000, 256, FROM);
    let dma = t.map(&r).unwrap();
    t.sync_for_cpu(dma, 256, FROM).unwrap();
    let (mut tab, plan) = table(&[(0x1_0000, 4096), (0x3_0000, 4096)]);
    t.map_sg(&mut tab, &plan, TO, DmaAttrs::empty()).unwrap();
    let iova2 = DmaAddr::new(IOVA_BASE + 0x2000);
    t.unmap_sg(&mut tab, &plan, TO, DmaAttrs::empty()).unwrap();
    t.unmap(dma, &r).unwrap();
    let bad = t.unmap(dma, &r).unwrap_err();
    t.note_mapping_error_check(dma);

    let expect = vec![
        TraceRecord {
            seq: 0,
            op: TraceOp::Map { req: r },
            result: Ok(TraceOk::Dma(DmaAddr::new(IOVA_BASE))),
        },
        TraceRecord {
            seq: 1,
            op: TraceOp::SyncForCpu {
                dma,
                len: 256,
                dir: FROM,
            },
            result: Ok(TraceOk::Done),
        },
        TraceRecord {
            seq: 2,
            op: TraceOp::MapSg {
                orig_nents: 2,
                plan: plan.clone(),
                dir: TO,
                attrs: DmaAttrs::empty(),
            },
            result: Ok(TraceOk::Segments(vec![(iova2, 8192)])),
        },
        TraceRecord {
            seq: 3,
            op: TraceOp::UnmapSg {
                segments: vec![(iova2, 8192)],
                plan,
                dir: TO,
                attrs: DmaAttrs::empty(),
            },
            result: Ok(TraceOk::Done),
        },
        TraceRecord {
            seq: 4,
            op: TraceOp::Unmap { dma, req: r },
            result: Ok(TraceOk::Done),
        },
        TraceRecord {
            seq: 5,
            op: TraceOp::Unmap { dma, req: r },
            result: Err(bad),
        },
        TraceRecord {
            seq: 6,
            op: TraceOp::MappingErrorCheck { dma },
            result: Ok(TraceOk::Done),
        },
    ];
    assert_eq!(t.records(), expect);
    assert_eq!(t.dropped(), 0);
    assert_eq!(t.name(), "tracing(arena)");
}

#[test]
fn ring_keeps_the_newest_and_counts_the_dropped() {
    let t = Tracing::ring(Arena::direct(), 2);
    for i in 0..5u64 {
        let _ = t.sync_for_device(DmaAddr::new(i), 1, TO);
    }
    let seqs: Vec<u64> = t.records().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(t.dropped(), 3);
    assert_eq!(t.take().len(), 2);
    assert!(t.records().is_empty());
}

#[test]
fn callback_sink_sees_every_record() {
    let seen: Arc<Mutex<Vec<TraceRecord>>> = Arc::default();
    let s = seen.clone();
    let t = Tracing::callback(Arena::direct(), move |r| s.lock().unwrap().push(r.clone()));
    let r = ram(0x1000, 8, TO);
    let dma = t.map(&r).unwrap();
    t.unmap(dma, &r).unwrap();
    let ops: Vec<TraceOp> = seen.lock().unwrap().iter().map(|r| r.op.clone()).collect();
    assert_eq!(
        ops,
        vec![TraceOp::Map { req: r }, TraceOp::Unmap { dma, req: r }]
    );
    assert!(t.records().is_empty());
}

// ---- stacking ----

#[test]
fn names_compose_in_stacking_order() {
    let s = Tracing::ring(
        DmaDebug::new(FaultInject::new(
            Arena::direct(),
            FaultOps::MAP,
            Trigger::Never,
            InjectError::NoResources,
        )),
        4,
    );
    assert_eq!(s.name(), "tracing(debug(fault(arena)))");
    let s = FaultInject::new(
        DmaDebug::new(Tracing::ring(Arena::direct(), 4)),
        FaultOps::MAP,
        Trigger::Never,
        InjectError::NoResources,
    );
    assert_eq!(s.name(), "fault(debug(tracing(arena)))");
}

#[test]
fn debug_over_fault_records_only_what_was_mapped() {
    let d = DmaDebug::new(FaultInject::new(
        Arena::iommu(),
        FaultOps::MAP,
        Trigger::EveryNth(2),
        InjectError::NoResources,
    ));
    let mut live = Vec::new();
    for i in 0..4u64 {
        let r = ram(0x10_0000 + i * 0x1000, 128, FROM);
        let (dma, _) = map_with_retry(&d, &r, 3).unwrap();
        live.push((dma, r));
    }
    assert_eq!(d.inner().injected(), 3);
    assert_eq!(d.active_count(), 4);
    for (dma, r) in &live {
        d.unmap(*dma, r).unwrap();
    }
    assert_eq!(d.reports(), vec![]);
    assert_eq!(d.inner().inner().live_count(), 0);
}

#[test]
fn fault_over_debug_hides_failed_calls_from_debug() {
    let f = FaultInject::new(
        DmaDebug::new(Arena::iommu()),
        FaultOps::MAP,
        Trigger::FirstN(2),
        InjectError::NoResources,
    );
    let r = ram(0x4000, 64, FROM);
    let (dma, attempts) = map_with_retry(&f, &r, 5).unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(f.inner().active_count(), 1);
    // A misuse below the fault layer is still caught.
    let _ = f.unmap(dma, &MapRequest { len: 32, ..r });
    assert_eq!(
        f.inner().reports(),
        vec![DebugReport::UnmapSizeMismatch {
            dma,
            mapped_len: 64,
            unmap_len: 32
        }]
    );
}

#[test]
fn tracing_above_fault_sees_failures_tracing_below_does_not() {
    let top = Tracing::ring(
        FaultInject::new(
            Tracing::ring(Arena::direct(), 8),
            FaultOps::MAP,
            Trigger::FirstN(1),
            InjectError::NoResources,
        ),
        8,
    );
    let r = ram(0x4000, 64, TO);
    assert!(top.map(&r).is_err());
    let dma = top.map(&r).unwrap();
    let outer: Vec<bool> = top.records().iter().map(|x| x.result.is_ok()).collect();
    assert_eq!(outer, vec![false, true]);
    let inner = top.inner().inner().records();
    assert_eq!(
        inner,
        vec![TraceRecord {
            seq: 0,
            op: TraceOp::Map { req: r },
            result: Ok(TraceOk::Dma(dma))
        }]
    );
}

#[test]
fn debug_over_a_type_erased_shared_backend() {
    let shared: Arc<dyn DmaBackend> = Arc::new(Tracing::ring(Arena::direct(), 16));
    let d: DmaDebug<Arc<dyn DmaBackend>> = DmaDebug::new(shared.clone());
    assert_eq!(d.name(), "debug(tracing(arena))");
    let bar = MapRequest {
        phys: PhysAddr::new(0xf000_0000),
        len: 4096,
        dir: TO,
        attrs: DmaAttrs::empty(),
        target: SegTarget::PeerBus(BusAddr::new(0xd000_0000)),
    };
    let dma = d.map(&bar).unwrap();
    assert_eq!(dma, DmaAddr::new(0xd000_0000));
    d.unmap(
        dma,
        &MapRequest {
            target: SegTarget::PeerHostBridge,
            ..bar
        },
    )
    .unwrap_err();
    assert_eq!(
        d.reports(),
        vec![DebugReport::UnmapTargetMismatch {
            dma,
            mapped: SegTarget::PeerBus(BusAddr::new(0xd000_0000)),
            unmapped: SegTarget::PeerHostBridge,
        }]
    );
    // A borrowed backend is a backend too.
    let arena = Arena::direct();
    let d2 = DmaDebug::new(&arena);
    let r = ram(0x1000, 8, TO);
    let x = d2.map(&r).unwrap();
    assert_eq!(arena.live_count(), 1);
    d2.unmap(x, &r).unwrap();
    assert_eq!(arena.live_count(), 0);
}
