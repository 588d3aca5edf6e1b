//! Every `DmaBackend` call, defaults included, reaches the wrapped backend
//! unchanged through the one delegation mechanism (`Layered` with a
//! middleware that changes nothing), through a layer that hands out its own
//! view of the two-step IOVA API, through the pointer forwards (`&`, `Box`,
//! `Arc`) and through the decorators for the calls they do not change.
//!
//! The inner backend answers every call with a value of its own that the
//! trait's default would not give (`map_coherent` not `map`'s address,
//! `checks_mapped_segments` true, a bounce, constraints, ...) and logs the
//! call, so a wrapper that falls back to a default or calls something else
//! fails. The list of calls checked is compared with the methods declared
//! in `port/backend.rs`: a method added to `DmaBackend` or `IovaOps` fails
//! here until it is checked, and so until the mechanism forwards it.

mod common;

use common::table;
use dma_api::debug::DmaDebug;
use dma_api::device::DmaConstraints;
use dma_api::middleware::{
    FaultInject, FaultOps, Identity, InjectError, Layered, Middleware, Tracing, Trigger,
};
use dma_api::port::{
    Bounce, BounceCause, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, IovaState,
    MapRequest, SegPlan, SegTarget,
};
use dma_api::{Bdf, Direction, DmaAddr, DmaAttrs, DmaError, DmaMask, Iova, PhysAddr};
use scatterlist::SgTable;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// `DmaError::ZeroLength` at a marker address: each call fails with its own.
fn marked(at: u64) -> DmaError {
    DmaError::ZeroLength {
        phys: PhysAddr::new(at),
    }
}

fn constraints() -> DmaConstraints {
    DmaConstraints::pci(DmaMask::new(44).unwrap())
}

const BOUNCE: Bounce = Bounce {
    slot: PhysAddr::new(0xb00b_0000),
    cause: BounceCause::Untrusted,
};

const STATE: IovaState = IovaState {
    base: Iova::new(0xf00f_0000),
    size: 0x3000,
    first_offset: 0x10,
};

/// Answers every call with its marker and logs the call's name.
#[derive(Default)]
struct Marked(Mutex<Vec<&'static str>>);

impl Marked {
    fn log(&self, call: &'static str) {
        self.0.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl DmaBackend for Marked {
    fn name(&self) -> &str {
        self.log("name");
        "marked"
    }
    fn map(&self, _: &MapRequest) -> Result<DmaAddr, DmaError> {
        self.log("map");
        Ok(DmaAddr::new(0x1001))
    }
    fn check(&self, _: &MapRequest) -> Result<(), DmaError> {
        self.log("check");
        Err(marked(0x2002))
    }
    fn unmap(&self, _: DmaAddr, _: &MapRequest) -> Result<(), DmaError> {
        self.log("unmap");
        Err(marked(0x3003))
    }
    fn map_coherent(&self, _: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        self.log("map_coherent");
        Ok(DmaAddr::new(0x4004))
    }
    fn unmap_coherent(&self, _: DmaAddr, _: &CoherentRequest) -> Result<(), DmaError> {
        self.log("unmap_coherent");
        Err(marked(0x5005))
    }
    fn map_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<usize, DmaError> {
        self.log("map_sg");
        Err(marked(0x6006))
    }
    fn unmap_sg(
        &self,
        _: &mut SgTable,
        _: &[SegPlan],
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.log("unmap_sg");
        Err(marked(0x7007))
    }
    fn map_sg_ram(
        &self,
        _: &mut SgTable,
        _: Direction,
        _: DmaAttrs,
    ) -> Option<Result<usize, DmaError>> {
        self.log("map_sg_ram");
        Some(Err(marked(0x1_5005)))
    }
    fn unmap_sg_ram(
        &self,
        _: &mut SgTable,
        _: Direction,
        _: DmaAttrs,
    ) -> Option<Result<(), DmaError>> {
        self.log("unmap_sg_ram");
        Some(Err(marked(0x1_6006)))
    }
    fn sync_for_cpu(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        self.log("sync_for_cpu");
        Err(marked(0x8008))
    }
    fn sync_for_device(&self, _: DmaAddr, _: u64, _: Direction) -> Result<(), DmaError> {
        self.log("sync_for_device");
        Err(marked(0x9009))
    }
    fn need_sync(&self, _: DmaAddr) -> bool {
        self.log("need_sync");
        true
    }
    fn bounce_of(&self, _: DmaAddr) -> Option<Bounce> {
        self.log("bounce_of");
        Some(BOUNCE)
    }
    fn max_mapping_size(&self) -> u64 {
        self.log("max_mapping_size");
        0xc00c
    }
    fn opt_mapping_size(&self) -> u64 {
        self.log("opt_mapping_size");
        0xd00d
    }
    fn merge_boundary(&self) -> u64 {
        self.log("merge_boundary");
        0xe00e
    }
    fn checks_mapped_segments(&self) -> bool {
        self.log("checks_mapped_segments");
        true
    }
    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        self.log("iova_ops");
        Some(self)
    }
    fn constraints(&self) -> Option<DmaConstraints> {
        self.log("constraints");
        Some(constraints())
    }
    fn set_constraints(&self, _: &ConstraintsRequest) -> Result<(), DmaError> {
        self.log("set_constraints");
        Ok(())
    }
    fn note_mapping_error_check(&self, _: DmaAddr) {
        self.log("note_mapping_error_check");
    }
}

impl IovaOps for Marked {
    fn try_alloc(&self, _: PhysAddr, _: u64) -> Result<IovaState, DmaError> {
        self.log("try_alloc");
        Ok(STATE)
    }
    fn link(
        &self,
        _: &IovaState,
        _: PhysAddr,
        _: u64,
        _: u64,
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.log("link");
        Err(marked(0x1_1001))
    }
    fn sync(&self, _: &IovaState, _: u64, _: u64) -> Result<(), DmaError> {
        self.log("sync");
        Err(marked(0x1_2002))
    }
    fn unlink(
        &self,
        _: &IovaState,
        _: u64,
        _: u64,
        _: Direction,
        _: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.log("unlink");
        Err(marked(0x1_3003))
    }
    fn destroy(&self, _: IovaState, _: u64, _: Direction, _: DmaAttrs) -> Result<(), DmaError> {
        self.log("destroy");
        Err(marked(0x1_4004))
    }
}

/// The `IovaOps` calls.
const TWO_STEP: [&str; 5] = ["try_alloc", "link", "sync", "unlink", "destroy"];

/// Calls every method of `b` (and of its two-step API) once, checking
/// that `inner` saw exactly that call and `b` returned its marker. `name`
/// is the name `b` should report (decorators put theirs around it).
/// Returns the calls checked.
fn exercise(b: &dyn DmaBackend, inner: &Marked, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut expect = |call: &'static str, same: bool| {
        assert!(same, "{call}: not the backend's answer");
        // `name` is asked by the decorators' constructors only; the rest
        // must reach the inner backend exactly once.
        let mut log = inner.take();
        if TWO_STEP.contains(&call) {
            // A layer's own view asks the wrapped backend for its API on
            // each two-step call.
            log.retain(|c| *c != "iova_ops");
        }
        if call != "name" || name == "marked" {
            assert_eq!(log, [call], "{call} did not reach the backend");
        }
        seen.insert(call.to_string());
    };
    let dev: Bdf = "03:00.0".parse().unwrap();
    let req = MapRequest {
        phys: PhysAddr::new(0x10_0000),
        len: 0x200,
        dir: Direction::ToDevice,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    };
    let coh = CoherentRequest {
        device: dev,
        phys: PhysAddr::new(0x20_0000),
        len: 0x1000,
        attrs: DmaAttrs::empty(),
    };
    let creq = ConstraintsRequest {
        device: dev,
        constraints: constraints(),
        coherent_pool: (PhysAddr::new(0x1000_0000), 0x10_0000),
    };
    let dma = DmaAddr::new(0x1001);
    let (mut t, plan) = table(&[(0x30_0000, 0x1000)]);
    let dir = Direction::ToDevice;
    let none = DmaAttrs::empty();

    expect("name", b.name() == name);
    expect("map", b.map(&req) == Ok(dma));
    expect("check", b.check(&req) == Err(marked(0x2002)));
    expect("unmap", b.unmap(dma, &req) == Err(marked(0x3003)));
    let c = b.map_coherent(&coh);
    expect("map_coherent", c == Ok(DmaAddr::new(0x4004)));
    let c = b.unmap_coherent(DmaAddr::new(0x4004), &coh);
    expect("unmap_coherent", c == Err(marked(0x5005)));
    let r = b.map_sg(&mut t, &plan, dir, none);
    expect("map_sg", r == Err(marked(0x6006)));
    let r = b.unmap_sg(&mut t, &plan, dir, none);
    expect("unmap_sg", r == Err(marked(0x7007)));
    // A decorator declines the plan-less calls (`Middleware::map_sg_ram`):
    // then nothing may reach the backend, and they are not counted.
    let r = b.map_sg_ram(&mut t, dir, none);
    match r {
        Some(r) => expect("map_sg_ram", r == Err(marked(0x1_5005))),
        None => assert_eq!(inner.take(), Vec::<&str>::new(), "declined map_sg_ram"),
    }
    let r = b.unmap_sg_ram(&mut t, dir, none);
    match r {
        Some(r) => expect("unmap_sg_ram", r == Err(marked(0x1_6006))),
        None => assert_eq!(inner.take(), Vec::<&str>::new(), "declined unmap_sg_ram"),
    }
    let r = b.sync_for_cpu(dma, 0x10, dir);
    expect("sync_for_cpu", r == Err(marked(0x8008)));
    let r = b.sync_for_device(dma, 0x10, dir);
    expect("sync_for_device", r == Err(marked(0x9009)));
    expect("need_sync", b.need_sync(dma));
    expect("bounce_of", b.bounce_of(dma) == Some(BOUNCE));
    expect("max_mapping_size", b.max_mapping_size() == 0xc00c);
    expect("opt_mapping_size", b.opt_mapping_size() == 0xd00d);
    expect("merge_boundary", b.merge_boundary() == 0xe00e);
    expect("checks_mapped_segments", b.checks_mapped_segments());
    expect("constraints", b.constraints() == Some(constraints()));
    expect("set_constraints", b.set_constraints(&creq) == Ok(()));
    b.note_mapping_error_check(dma);
    expect("note_mapping_error_check", true);
    let ops = b.iova_ops();
    expect("iova_ops", ops.is_some());
    let ops = ops.unwrap();
    let r = ops.try_alloc(PhysAddr::new(0x10_0010), 0x2000);
    expect("try_alloc", r == Ok(STATE));
    let r = ops.link(&STATE, PhysAddr::new(0x10_0010), 0, 0x1000, dir, none);
    expect("link", r == Err(marked(0x1_1001)));
    expect("sync", ops.sync(&STATE, 0, 0x1000) == Err(marked(0x1_2002)));
    let r = ops.unlink(&STATE, 0, 0x1000, dir, none);
    expect("unlink", r == Err(marked(0x1_3003)));
    let r = ops.destroy(STATE, 0x1000, dir, none);
    expect("destroy", r == Err(marked(0x1_4004)));
    seen
}

/// The methods `trait NAME` declares in `src`, in declaration order.
fn declared(src: &str, name: &str) -> Vec<String> {
    let start = src
        .find(&format!("pub trait {name}"))
        .unwrap_or_else(|| panic!("no trait {name} in port/backend.rs"));
    let body = &src[start..];
    let end = body.find("\n}").expect("the trait ends");
    body[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("    fn "))
        .map(|l| l.split(['(', '<']).next().unwrap().to_string())
        .collect()
}

fn every_method() -> BTreeSet<String> {
    let src = include_str!("../src/port/backend.rs");
    let mut all: BTreeSet<String> = declared(src, "DmaBackend").into_iter().collect();
    all.extend(declared(src, "IovaOps"));
    all
}

#[test]
fn the_list_of_methods_is_read_from_the_trait() {
    let all = every_method();
    for m in [
        "name",
        "map_coherent",
        "note_mapping_error_check",
        "destroy",
    ] {
        assert!(all.contains(m), "{m} missing from {all:?}");
    }
    assert!(all.len() >= 25, "{all:?}");
}

#[test]
fn the_backend_alone_answers_every_call_with_its_marker() {
    let m = Marked::default();
    assert_eq!(exercise(&m, &m, "marked"), every_method());
}

#[test]
fn an_empty_layer_forwards_every_method() {
    let m = Marked::default();
    let one = Layered::wrap(&m, Identity);
    assert_eq!(exercise(&one, &m, "marked"), every_method());
    let two = Layered::wrap(Layered::wrap(&m, Identity), Identity);
    assert_eq!(exercise(&two, &m, "marked"), every_method());
}

/// A layer that changes only the two-step API's visibility: it hands out
/// its own view, whose calls all default to forwarding.
struct OwnIovaView;

impl<B: DmaBackend + ?Sized> Middleware<B> for OwnIovaView {
    fn iova_ops<'a>(&'a self, next: &'a B, wrapped: &'a dyn IovaOps) -> Option<&'a dyn IovaOps> {
        next.iova_ops()?;
        Some(wrapped)
    }
}

#[test]
fn a_layer_viewing_the_iova_api_forwards_every_two_step_call() {
    let m = Marked::default();
    let view = Layered::wrap(&m, OwnIovaView);
    let ops = view.iova_ops().unwrap() as *const dyn IovaOps as *const ();
    assert_eq!(ops, &view as *const _ as *const (), "the layer's own view");
    m.take();
    assert_eq!(exercise(&view, &m, "marked"), every_method_but_plan_less());
}

#[test]
fn pointers_forward_every_method() {
    let m = Arc::new(Marked::default());
    let by_ref: &dyn DmaBackend = &*m;
    assert_eq!(exercise(&by_ref, &m, "marked"), every_method());
    let boxed: Box<dyn DmaBackend> = Box::new(Arc::clone(&m));
    assert_eq!(exercise(&boxed, &m, "marked"), every_method());
    let shared: Arc<dyn DmaBackend> = m.clone();
    assert_eq!(exercise(&shared, &m, "marked"), every_method());
}

/// What a decorator forwards: every call but the plan-less table calls,
/// which it declines so that every table comes through its `map_sg`.
fn every_method_but_plan_less() -> BTreeSet<String> {
    let mut all = every_method();
    assert!(all.remove("map_sg_ram") && all.remove("unmap_sg_ram"));
    all
}

#[test]
fn the_decorators_forward_every_call_they_do_not_change() {
    let m = Marked::default();
    let d = DmaDebug::new(&m);
    m.take();
    assert_eq!(
        exercise(&d, &m, "debug(marked)"),
        every_method_but_plan_less()
    );
    let t = Tracing::ring(&m, 64);
    m.take();
    assert_eq!(
        exercise(&t, &m, "tracing(marked)"),
        every_method_but_plan_less()
    );
    let f = FaultInject::new(
        &m,
        FaultOps::all(),
        Trigger::Never,
        InjectError::NoResources,
    );
    m.take();
    assert_eq!(
        exercise(&f, &m, "fault(marked)"),
        every_method_but_plan_less()
    );
}
