//! The operation fuzzing catches real mistakes: each test plants one bug in
//! a wrapper around every endpoint's backend (handed to the harness as its
//! backend factory), runs seeded random cases until an invariant breaks,
//! within a stated budget, and replays the failing case to show it
//! reproduces. Without the bug the same cases pass
//! (tests/tests/fuzz_ops.rs runs them over the standard backends).

use dma_api::device::DmaConstraints;
use dma_api::port::{
    CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, IovaState, MapRequest, SegPlan,
    SegTarget,
};
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

struct Mutant {
    inner: Arc<dyn DmaBackend>,
    bug: Bug,
    /// OffByOne: the (shifted address, length) of live shifted mappings.
    shifted: Mutex<Vec<(u64, u64)>>,
    /// LateInvalidation: unmaps not done yet.
    pending: Mutex<Vec<(DmaAddr, MapRequest)>>,
}

impl Mutant {
    fn real(&self, dma: DmaAddr) -> DmaAddr {
        let s = self.shifted.lock().unwrap();
        match s.iter().find(|(a, l)| dma.raw() >= *a && dma.raw() < a + l) {
            Some(_) => DmaAddr::new(dma.raw() - 1),
            None => dma,
        }
    }

    fn catch_up(&self) -> Result<(), DmaError> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        for (dma, req) in pending {
            self.inner.unmap(dma, &req)?;
        }
        Ok(())
    }
}

impl DmaBackend for Mutant {
    fn name(&self) -> &str {
        "mutant"
    }
    fn map(&self, req: &MapRequest) -> Result<DmaAddr, DmaError> {
        if self.bug == Bug::LateInvalidation {
            self.catch_up()?;
        }
        let dma = self.inner.map(req)?;
        if self.bug == Bug::OffByOne && req.target == SegTarget::Ram && req.len > 1 {
            let s = dma.raw() + 1;
            self.shifted.lock().unwrap().push((s, req.len));
            return Ok(DmaAddr::new(s));
        }
        Ok(dma)
    }
    fn check(&self, req: &MapRequest) -> Result<(), DmaError> {
        self.inner.check(req)
    }
    fn unmap(&self, dma: DmaAddr, req: &MapRequest) -> Result<(), DmaError> {
        if self.bug == Bug::LateInvalidation {
            self.pending.lock().unwrap().push((dma, *req));
            return Ok(());
        }
        let real = self.real(dma);
        self.shifted
            .lock()
            .unwrap()
            .retain(|(a, _)| *a != dma.raw());
        self.inner.unmap(real, req)
    }
    fn map_coherent(&self, req: &CoherentRequest) -> Result<DmaAddr, DmaError> {
        self.inner.map_coherent(req)
    }
    fn unmap_coherent(&self, dma: DmaAddr, req: &CoherentRequest) -> Result<(), DmaError> {
        self.inner.unmap_coherent(dma, req)
    }
    fn map_sg(
        &self,
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<usize, DmaError> {
        let dir = if self.bug == Bug::OneProtection {
            Direction::Bidirectional
        } else {
            dir
        };
        let forged = self.trusted_plan(table, plan);
        let n = self.inner.map_sg(table, &forged, dir, attrs)?;
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
        table: &mut SgTable,
        plan: &[SegPlan],
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let dir = if self.bug == Bug::OneProtection {
            Direction::Bidirectional
        } else {
            dir
        };
        let forged = self.trusted_plan(table, plan);
        self.inner.unmap_sg(table, &forged, dir, attrs)
    }
    fn sync_for_cpu(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.inner.sync_for_cpu(self.real(dma), len, dir)
    }
    fn sync_for_device(&self, dma: DmaAddr, len: u64, dir: Direction) -> Result<(), DmaError> {
        self.inner.sync_for_device(self.real(dma), len, dir)
    }
    fn need_sync(&self, dma: DmaAddr) -> bool {
        self.inner.need_sync(self.real(dma))
    }
    fn max_mapping_size(&self) -> u64 {
        self.inner.max_mapping_size()
    }
    fn opt_mapping_size(&self) -> u64 {
        self.inner.opt_mapping_size()
    }
    fn merge_boundary(&self) -> u64 {
        self.inner.merge_boundary()
    }
    fn iova_ops(&self) -> Option<&dyn IovaOps> {
        self.inner.iova_ops()?;
        Some(self)
    }
    fn constraints(&self) -> Option<DmaConstraints> {
        self.inner.constraints()
    }
    fn set_constraints(&self, req: &ConstraintsRequest) -> Result<(), DmaError> {
        self.inner.set_constraints(req)
    }
    fn note_mapping_error_check(&self, dma: DmaAddr) {
        self.inner.note_mapping_error_check(dma)
    }
}

impl IovaOps for Mutant {
    fn try_alloc(&self, phys: PhysAddr, size: u64) -> Result<IovaState, DmaError> {
        self.ops()?.try_alloc(phys, size)
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
        let offset = if self.bug == Bug::LinkAtZero {
            0
        } else {
            offset
        };
        self.ops()?.link(state, phys, offset, size, dir, attrs)
    }
    fn sync(&self, state: &IovaState, offset: u64, size: u64) -> Result<(), DmaError> {
        self.ops()?.sync(state, offset, size)
    }
    fn unlink(
        &self,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        let offset = if self.bug == Bug::LinkAtZero {
            0
        } else {
            offset
        };
        self.ops()?.unlink(state, offset, size, dir, attrs)
    }
    fn destroy(
        &self,
        state: IovaState,
        mapped_len: u64,
        dir: Direction,
        attrs: DmaAttrs,
    ) -> Result<(), DmaError> {
        self.ops()?.destroy(state, mapped_len, dir, attrs)
    }
}

impl Mutant {
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

    fn ops(&self) -> Result<&dyn IovaOps, DmaError> {
        self.inner.iova_ops().ok_or(DmaError::IovaNotAllocated {
            iova: dma_api::Iova::new(0),
        })
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
        Arc::new(Mutant {
            inner: env.endpoint.device.raw_backend().clone(),
            bug,
            shifted: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
        })
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
