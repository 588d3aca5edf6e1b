//! The operation fuzzing catches real mistakes: each test plants one bug in
//! a wrapper around every endpoint's backend (handed to the harness as its
//! backend factory), runs seeded random cases until an invariant breaks,
//! within a stated budget, and replays the failing case to show it
//! reproduces. Without the bug the same cases pass
//! (tests/tests/fuzz_ops.rs runs them over the standard backends).

use dma_api::middleware::{Layered, Middleware};
use dma_api::port::{Bounce, DmaBackend, IovaOps, IovaState, MapRequest, SegPlan, SegTarget};
use dma_api::{Direction, DmaAddr, DmaAttrs, DmaError, PhysAddr};
use dma_sim::fuzzing::{run_case, FactoryEnv, FuzzCase, Violation};
use scatterlist::{DmaFlags, SgTable};
use std::sync::{Arc, Mutex};

/// The planted bug.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bug {
    /// The DMA address of a RAM mapping is one byte off (an off-by-one in
    /// the window translation).
    OffByOne,
    /// A strict unmap leaves the translation usable: the backend's unmap
    /// (and so its IOTLB invalidation) only happens at the next map.
    LateInvalidation,
    /// One IOMMU protection for a whole list: every table is mapped
    /// bidirectional, whatever the caller asked.
    OneProtection,
    /// Every range of a multi-range IOVA link is placed at offset 0.
    LinkAtZero,
    /// A table's bus-address (switch P2P) DMA segments take their length
    /// from the table's first entry instead of their own.
    BusLenFromFirst,
    /// A classifier that trusts the caller's kind: the caller claims every
    /// entry of a table is plain RAM and each is mapped as RAM at its own
    /// address, without asking the memory map — a BAR skips its P2P route
    /// and a redirecting owner's policy, stolen RAM its owner.
    TrustedKind,
}

/// The planted bug, as a layer over the standard backend: it changes only
/// the calls the bug lives in, everything else reaches the backend.
struct Mutant {
    bug: Bug,
    /// OffByOne: the (shifted address, length) of live shifted mappings.
    shifted: Mutex<Vec<(u64, u64)>>,
    /// LateInvalidation: unmaps not done yet.
    pending: Mutex<Vec<(DmaAddr, MapRequest)>>,
}

type Next = Arc<dyn DmaBackend>;

impl Mutant {
    fn real(&self, dma: DmaAddr) -> DmaAddr {
        let s = self.shifted.lock().unwrap();
        match s.iter().find(|(a, l)| dma.raw() >= *a && dma.raw() < a + l) {
            Some(_) => DmaAddr::new(dma.raw() - 1),
            None => dma,
        }
    }

    fn catch_up(&self, next: &Next) -> Result<(), DmaError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        for (dma, req) in pending {
            next.unmap(dma, &req)?;
        }
        Ok(())
    }

    /// OneProtection: every table bidirectional.
    fn table_dir(&self, dir: Direction) -> Direction {
        if self.bug == Bug::OneProtection {
            Direction::Bidirectional
        } else {
            dir
        }
    }

    /// LinkAtZero: every range of a link at offset 0.
    fn link_offset(&self, offset: u64) -> u64 {
        if self.bug == Bug::LinkAtZero {
            0
        } else {
            offset
        }
    }

    /// TrustedKind: the plan a classifier makes from the caller's claim
    /// (every entry plain RAM, mapped at its own address); otherwise the
    /// dispatcher's plan.
    fn trusted_plan(&self, table: &SgTable, plan: &[SegPlan]) -> Vec<SegPlan> {
        if self.bug != Bug::TrustedKind {
            return plan.to_vec();
        }
        table
            .iter()
            .map(|e| SegPlan {
                phys: e.phys(),
                target: SegTarget::Ram,
            })
            .collect()
    }
}

impl Middleware<Next> for Mutant {
    fn name<'a>(&'a self, _: &'a Next) -> &'a str {
        "mutant"
    }
    fn map(&self, next: &Next, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        if self.bug == Bug::LateInvalidation {
            self.catch_up(next)?;
        }
        let dma = next.map(req)?;
        if self.bug == Bug::OffByOne && req.target == SegTarget::Ram && req.len > 1 {
            let s = dma.raw() + 1;
            self.shifted.lock().unwrap().push((s, req.len));
            return Ok(DmaAddr::new(s));
        }
        Ok(dma)
    }
    fn unmap(&self, next: &Next, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        if self.bug == Bug::LateInvalidation {
            self.pending.lock().unwrap().push((dma, *req));
            return Ok(());
        }
        let real = self.real(dma);
        self.shifted
            .lock()
            .unwrap()
            .retain(|(a, _)| *a != dma.raw());
        next.unmap(real, req)
    }
    fn map_sg(
        &self,
        next: &Next,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let forged = self.trusted_plan(table, plan);
        let n = next.map_sg(table, &forged, self.table_dir(dir), attrs)?;
        if self.bug == Bug::BusLenFromFirst {
            let first = table.iter().next().map_or(0, |e| e.len());
            for seg in table.dma_iter_mut() {
                let f = seg.dma_flags();
                if f.contains(DmaFlags::BUS_ADDRESS) {
                    let at = seg.dma_address();
                    seg.set_dma(at, first, f)
                        .map_err(|_| DmaError::ZeroLength {
                            phys: PhysAddr::new(0),
                        })?;
                }
            }
        }
        Ok(n)
    }
    fn unmap_sg(
        &self,
        next: &Next,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let forged = self.trusted_plan(table, plan);
        next.unmap_sg(table, &forged, self.table_dir(dir), attrs)
    }
    fn sync_for_cpu(
        &self,
        next: &Next,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        next.sync_for_cpu(self.real(dma), len, dir)
    }
    fn sync_for_device(
        &self,
        next: &Next,
        dma: DmaAddr,
        len: u64,
        dir: Direction,
    ) -> Result<(), DmaError> {
        next.sync_for_device(self.real(dma), len, dir)
    }
    fn need_sync(&self, next: &Next, dma: DmaAddr) -> bool {
        next.need_sync(self.real(dma))
    }
    fn bounce_of(&self, next: &Next, dma: DmaAddr) -> Option<Bounce> {
        next.bounce_of(self.real(dma))
    }
    /// LinkAtZero lives in the two-step API: hand out the layer's view.
    fn iova_ops<'a>(&'a self, next: &'a Next, wrapped: &'a dyn IovaOps) -> Option<&'a dyn IovaOps> {
        next.iova_ops()?;
        Some(wrapped)
    }
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
        let offset = self.link_offset(offset);
        next.link(state, phys, offset, size, dir, attrs)
    }
    fn iova_unlink(
        &self,
        next: &dyn IovaOps,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let offset = self.link_offset(offset);
        next.unlink(state, offset, size, dir, attrs)
    }
}

/// xorshift64*: the same generator and inputs as tests/tests/fuzz_ops.rs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Budget: cases tried per planted bug.
const BUDGET: usize = 150;

/// Runs seeded cases with `bug` planted until one breaks an invariant;
/// returns the violation, after replaying its case to show it reproduces.
fn hunt(bug: Bug) -> (usize, Violation) {
    let factory = move |env: &FactoryEnv<'_>| -> Arc<dyn DmaBackend> {
        let mutant = Mutant {
            bug,
            shifted: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
        };
        Arc::new(Layered::wrap(
            env.endpoint.device.raw_backend().clone(),
            mutant,
        ))
    };
    let mut rng = Rng(0xd1a_5eed | 1);
    for i in 0..BUDGET {
        let len = 200 + (rng.next() % 600) as usize;
        let data: Vec<u8> = (0..len).map(|_| (rng.next() >> 32) as u8).collect();
        let Ok(case) = FuzzCase::from_bytes(&data) else {
            continue;
        };
        if let Err(v) = run_case(&case, &factory) {
            let again = run_case(&case, &factory).expect_err("the failing case reproduces");
            assert_eq!(again.message, v.message);
            assert_eq!(again.step, v.step);
            return (i, v);
        }
    }
    panic!("{bug:?}: no invariant broke in {BUDGET} cases");
}

#[test]
fn off_by_one_in_a_window_translation_is_caught() {
    let (i, v) = hunt(Bug::OffByOne);
    eprintln!("case #{i}: {}", v.message);
    assert!(
        v.message.contains("must land at") || v.message.contains("must carry"),
        "{v}"
    );
}

#[test]
fn a_strict_unmap_without_invalidation_is_caught() {
    let (i, v) = hunt(Bug::LateInvalidation);
    eprintln!("case #{i}: {}", v.message);
    assert!(
        v.message.contains("no live mapping of its group explains"),
        "{v}"
    );
}

#[test]
fn one_protection_for_a_whole_list_is_caught() {
    let (i, v) = hunt(Bug::OneProtection);
    eprintln!("case #{i}: {}", v.message);
    assert!(v.message.contains("read-only"), "{v}");
}

#[test]
fn ranges_of_a_link_placed_at_offset_zero_are_caught() {
    let (i, v) = hunt(Bug::LinkAtZero);
    eprintln!("case #{i}: {}", v.message);
}

#[test]
fn bus_address_segments_sized_from_the_first_entry_are_caught() {
    let (i, v) = hunt(Bug::BusLenFromFirst);
    eprintln!("case #{i}: {}", v.message);
    assert!(v.message.contains("table DMA segments carry"), "{v}");
}

#[test]
fn a_classifier_trusting_the_callers_kind_is_caught() {
    let (i, v) = hunt(Bug::TrustedKind);
    eprintln!("case #{i}: {}", v.message);
    // The bytes of a redirected (or peer) entry arrive at the memory the
    // caller named instead of where its owner sends them.
    assert!(
        v.message.contains("must land at") || v.message.contains("must carry"),
        "{v}"
    );
}
