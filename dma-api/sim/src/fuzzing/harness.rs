//! The harness: assemble a generated machine, give every endpoint a backend
//! from a [`BackendFactory`], run the operation sequence through
//! `DmaDevice`s, and check the invariants after every step.
//!
//! The harness keeps its own record of what should be live (the model):
//! which device mapped which memory in which direction, where the bytes
//! must land (the memory itself, or the RAM a policy the harness installed
//! redirects to) and which DMA addresses the code handed back. The
//! invariants compare that record with what the fabric does.

use super::invariants;
use super::machine_gen::MachineSpec;
use super::ops::{FuzzCase, MemPick, MemRef, Op, PolicyPick};
use crate::assembly::{Assembly, AssemblyOptions, Endpoint, IommuMode, LayoutSizes};
use core::fmt;
use dma_api::debug::DmaDebug;
use dma_api::device::{DmaDevice, IovaLink};
use dma_api::memmap::RangeKind;
use dma_api::port::{DmaBackend, IovaState, PolicyDecision, ProviderPolicy};
use dma_api::topology::{DeviceRecord, IommuGroups};
use dma_api::types::SegKind;
use dma_api::{Bdf, Direction, DmaAddr, DmaAttrs, PhysAddr};
use dma_iommu::GroupId;
use scatterlist::SgTable;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Page size the harness reasons in (the IOMMU granule of every format the
/// assembly picks).
pub const PAGE: u64 = 4096;
/// Size of each provider's redirect region (and the modulus of its
/// redirect formula).
const REDIRECT_REGION: u64 = 64 << 20;
/// Where scratch buffers may be: the first 128 MiB of the scratch region.
const SCRATCH_PAGES: u64 = (128 << 20) / PAGE;

/// What a [`BackendFactory`] gets for one endpoint.
pub struct FactoryEnv<'a> {
    /// The assembled machine.
    pub assembly: &'a Assembly,
    /// The endpoint, with the backend the assembly gave it
    /// (`endpoint.device.raw_backend()`).
    pub endpoint: &'a Endpoint,
}

/// Supplies the backend each endpoint's `DmaDevice` is built over: the
/// assembly's own (the [`StandardBackends`]), a wrapper around it (a
/// decorator, a deliberately broken mutant), or a backend of the caller's.
pub trait BackendFactory {
    /// The backend for `env.endpoint`.
    fn backend(&self, env: &FactoryEnv<'_>) -> Arc<dyn DmaBackend>;
}

impl<F: Fn(&FactoryEnv<'_>) -> Arc<dyn DmaBackend>> BackendFactory for F {
    fn backend(&self, env: &FactoryEnv<'_>) -> Arc<dyn DmaBackend> {
        self(env)
    }
}

/// The assembly's own backends, unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardBackends;

impl BackendFactory for StandardBackends {
    fn backend(&self, env: &FactoryEnv<'_>) -> Arc<dyn DmaBackend> {
        env.endpoint.device.raw_backend().clone()
    }
}

/// A broken invariant: the step, what broke, and the input to replay.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The step after which it was found (`None`: at assembly or at the
    /// final teardown).
    pub step: Option<usize>,
    /// What broke.
    pub message: String,
    /// The whole input (its `Display` is the replay form).
    pub case: Box<FuzzCase>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(s) => writeln!(f, "invariant broken after step {s}: {}", self.message)?,
            None => writeln!(f, "invariant broken: {}", self.message)?,
        }
        write!(f, "{}", self.case)
    }
}

impl std::error::Error for Violation {}

/// What a run did (for coverage numbers and the deterministic tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Steps run.
    pub steps: usize,
    /// Mappings (single, table, coherent, IOVA links) that succeeded.
    pub mapped: usize,
    /// Mapping calls the code refused with an error.
    pub refused: usize,
    /// Byte windows moved and compared through the fabric.
    pub windows: u64,
    /// Addresses probed for unexplained reach.
    pub probes: u64,
    /// Endpoints of the machine.
    pub endpoints: usize,
}

/// One piece of a live mapping: DMA bytes `[dma, dma + len)` land at
/// `[land, land + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub dma: u64,
    pub len: u64,
    pub land: u64,
}

/// How a live mapping is held.
pub(crate) enum Handle {
    Single {
        dma: DmaAddr,
        len: u64,
    },
    Table(Box<SgTable>),
    Coherent {
        phys: PhysAddr,
        dma: DmaAddr,
    },
    Iova {
        state: IovaState,
        links: Vec<IovaPiece>,
    },
}

/// One link of a two-step IOVA reservation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IovaPiece {
    pub offset: u64,
    pub len: u64,
    pub span: Span,
    pub dir: Direction,
    /// Linked into the IOMMU (false: a bus address, nothing linked).
    pub linked: bool,
}

/// A live mapping in the model.
pub(crate) struct Live {
    pub dev: Bdf,
    pub dir: Direction,
    pub handle: Handle,
    /// Where its bytes land, in DMA order.
    pub spans: Vec<Span>,
    /// Owners of the memory it maps (a replug of an owner waits for it).
    pub owners: BTreeSet<Bdf>,
    /// The step that created it or last linked into it (checked in full
    /// after that step; older mappings are sampled, see `invariants`).
    pub born: usize,
}

impl Live {
    /// What kind of mapping it is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.handle {
            Handle::Single { .. } => "single",
            Handle::Table(_) => "table",
            Handle::Coherent { .. } => "coherent",
            Handle::Iova { .. } => "IOVA reservation",
        }
    }
}

/// An unmapped translation that may stay reachable until the flush queue
/// is flushed (lazy invalidation).
pub(crate) struct Stale {
    pub group: GroupId,
    pub spans: Vec<Span>,
    pub at_ms: u64,
}

/// One endpoint as the harness drives it.
pub(crate) struct Dev {
    pub bdf: Bdf,
    pub group: GroupId,
    pub device: Arc<DmaDevice>,
    pub debug: Option<Arc<DmaDebug<Arc<dyn DmaBackend>>>>,
}

/// The redirect policy the harness installs: `phys` goes to
/// `base + phys % REDIRECT_REGION` (contiguous inside every BAR and
/// carve-out, which are size-aligned and at most that large).
struct Redirect {
    base: u64,
}

impl ProviderPolicy for Redirect {
    fn decide(&self, _: Bdf, phys: PhysAddr, len: u64, _: SegKind, _: Direction) -> PolicyDecision {
        let off = phys.raw() % REDIRECT_REGION;
        if off + len > REDIRECT_REGION {
            return PolicyDecision::Refuse("crosses the redirect region".into());
        }
        PolicyDecision::Redirect(PhysAddr::new(self.base + off))
    }
}

struct Fixed(PolicyDecision);

impl ProviderPolicy for Fixed {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        self.0.clone()
    }
}

/// A running case.
pub(crate) struct Run<'f> {
    pub a: Assembly,
    pub factory: &'f dyn BackendFactory,
    pub devs: Vec<Dev>,
    pub lives: Vec<Live>,
    pub stale: Vec<Stale>,
    /// Installed policies by owner, with their redirect base.
    pub policies: BTreeMap<Bdf, (PolicyPick, u64)>,
    pub now_ms: u64,
    pub epoch: u64,
    pub stats: RunStats,
    pub rng: u64,
    /// Groups whose invalidation is lazy.
    pub lazy_groups: BTreeSet<GroupId>,
    /// Groups with a translating domain.
    pub translating: BTreeSet<GroupId>,
    /// DMA addresses probed before, probed again at the end.
    pub history: Vec<u64>,
    /// The state the machine must return to.
    pub start: Option<invariants::Snapshot>,
    /// An ACS control register was written.
    acs_changed: bool,
    /// The case asked for lazy invalidation (`IommuMode::Lazy`).
    lazy_mode: bool,
    /// Does (device, DMA address, write) route through the IOMMU? Cleared
    /// when a re-add or an ACS write may change routes.
    pub via_iommu: std::collections::HashMap<(Bdf, u64, bool), bool>,
    /// Records to re-add endpoints with.
    records: BTreeMap<Bdf, DeviceRecord>,
    /// Every owner of memory (providers for policies), in BDF order.
    owners: Vec<Bdf>,
    /// Ports with an ACS capability.
    acs_ports: Vec<Bdf>,
}

/// Runs `case` over backends from `factory`, checking every invariant
/// after every step; the first broken one is the error.
pub fn run_case(case: &FuzzCase, factory: &dyn BackendFactory) -> Result<RunStats, Violation> {
    run_case_observed(case, factory, &mut |_, _| {})
}

/// [`run_case`], calling `after_step(i, stats)` once step `i` has run and
/// before its invariants are checked, or once it failed (so the step that
/// breaks one is observed too): how `unidma replay` attributes what the backends saw to
/// each step in one run.
pub fn run_case_observed(
    case: &FuzzCase,
    factory: &dyn BackendFactory,
    after_step: &mut dyn FnMut(usize, &RunStats),
) -> Result<RunStats, Violation> {
    let fail = |step: Option<usize>, message: String| Violation {
        step,
        message,
        case: Box::new(case.clone()),
    };
    let machine = loaded(&case.machine)
        .map_err(|e| fail(None, format!("generated machine does not load: {e}")))?;
    let opts = AssemblyOptions {
        iommu: case.mode,
        force_bounce: case.force_bounce,
        debug: case.debug,
        sizes: LayoutSizes {
            page_tables: 8 << 20,
            swiotlb: 4 << 20,
            coherent: 8 << 20,
        },
        ..AssemblyOptions::default()
    };
    let a = match Assembly::build(machine, opts) {
        Ok(a) => a,
        // zPCI-style machines refuse `iommu=off` (ambiguous decode): not an
        // input the harness can run, nothing to check.
        Err(crate::assembly::AssemblyError::AmbiguousBusDecode { .. }) => {
            return Ok(RunStats::default())
        }
        Err(e) => {
            return Err(fail(
                None,
                format!("generated machine does not assemble: {e}"),
            ))
        }
    };
    let mut run = Run::new(a, case, factory);
    run.start_checks().map_err(|m| fail(None, m))?;
    let trace = std::env::var_os("UNIDMA_FUZZ_TRACE").is_some();
    for (i, op) in case.ops.iter().enumerate() {
        let before = run.stats;
        if let Err(m) = run.step(op) {
            after_step(i, &run.stats);
            return Err(fail(Some(i), m));
        }
        if trace {
            let outcome = if run.stats.mapped > before.mapped {
                let l = run
                    .lives
                    .last()
                    .map(|l| format!("{} {:x?}", l.dev, l.spans));
                format!("mapped {}", l.unwrap_or_default())
            } else if run.stats.refused > before.refused {
                "refused".to_string()
            } else {
                String::new()
            };
            eprintln!("step {i}: {op:?} -> {outcome}");
        }
        run.stats.steps += 1;
        after_step(i, &run.stats);
        invariants::after_step(&mut run, op, i).map_err(|m| fail(Some(i), m))?;
    }
    // Every live mapping and every edge from every device, once, before
    // the teardown (the steps sampled the older state).
    let last = case.ops.len().checked_sub(1);
    invariants::full(&mut run).map_err(|m| fail(last, m))?;
    run.teardown().map_err(|m| fail(None, m))?;
    invariants::at_end(&mut run).map_err(|m| fail(None, m))?;
    Ok(run.stats)
}

/// Machines loaded lately, by spec: a fuzzer mostly mutates the operations
/// and keeps the machine, and rendering plus loading the machine file is a
/// tenth of a case. A hit is the machine the loader returned for the same
/// file (a `Machine` is plain data; every case assembles its own copy).
const LOADED_CACHE: usize = 8;

thread_local! {
    static LOADED: std::cell::RefCell<Vec<(MachineSpec, crate::machine::Machine)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn loaded(spec: &MachineSpec) -> Result<crate::machine::Machine, crate::machine::MachineError> {
    if let Some(m) =
        LOADED.with_borrow(|c| c.iter().find(|(s, _)| s == spec).map(|(_, m)| m.clone()))
    {
        return Ok(m);
    }
    let m = spec.machine()?;
    LOADED.with_borrow_mut(|c| {
        if c.len() == LOADED_CACHE {
            c.remove(0);
        }
        c.push((spec.clone(), m.clone()));
    });
    Ok(m)
}

/// The fuzz-target entry: decodes `data` into a [`FuzzCase`] and panics
/// with the replay form on a violation.
pub fn check_bytes(data: &[u8]) {
    if let Ok(case) = FuzzCase::from_bytes(data) {
        if let Err(v) = run_case(&case, &StandardBackends) {
            panic!("{v}");
        }
    }
}

fn record_of(d: &dma_api::topology::Device, parent: Option<Bdf>) -> DeviceRecord {
    let mut r = DeviceRecord::new(d.bdf, d.port, parent);
    r.name = d.name.clone();
    r.vendor = d.vendor;
    r.device = d.device;
    r.class = d.class;
    r.bars = d.bars.clone();
    r.dma_mask = d.dma_mask;
    r.coherent = d.coherent;
    r.untrusted = d.untrusted;
    r.multifunction = d.multifunction;
    r.acs = d.acs;
    r.numa_node = dma_pci::topology::NodeSpec::Given(d.numa_node);
    r
}

impl<'f> Run<'f> {
    fn new(a: Assembly, case: &FuzzCase, factory: &'f dyn BackendFactory) -> Self {
        let topo = &a.machine.topology;
        let mut records = BTreeMap::new();
        let mut acs_ports = Vec::new();
        for (_, d) in topo.devices() {
            let parent = d.parent.and_then(|p| topo.device(p)).map(|p| p.bdf);
            if !d.port.is_bridge() {
                records.insert(d.bdf, record_of(d, parent));
            }
            if d.acs.is_some_and(|c| !c.cap.is_empty()) {
                acs_ports.push(d.bdf);
            }
        }
        let mut owners: BTreeSet<Bdf> = BTreeSet::new();
        for r in a.machine.memmap.ranges() {
            let p = match r.kind {
                RangeKind::Bar { provider, .. } | RangeKind::StolenRam { owner: provider } => {
                    provider
                }
                _ => continue,
            };
            if let Some(d) = topo.device(dma_api::topology::DeviceId::from_provider(p)) {
                owners.insert(d.bdf);
            }
        }
        // Which groups translate, and which of those are lazy: from the
        // input (mode, host bridge IOMMU, untrusted members), not from the
        // domains the assembly made.
        let groups = IommuGroups::compute(topo);
        let mut translating = BTreeSet::new();
        let mut lazy_groups = BTreeSet::new();
        for (gi, members) in groups.groups().iter().enumerate() {
            let g = GroupId(gi as u32);
            let Some(first) = members.first().and_then(|id| topo.device(*id)) else {
                continue;
            };
            let hb = topo.host_bridge(first.host_bridge).is_some_and(|h| h.iommu);
            if case.mode == IommuMode::Off || !hb {
                continue;
            }
            translating.insert(g);
            let trusted = members
                .iter()
                .all(|id| topo.device(*id).is_some_and(|d| !d.untrusted));
            if case.mode == IommuMode::Lazy && trusted {
                lazy_groups.insert(g);
            }
        }
        // A fixed seed: the random draws of step k do not depend on how
        // many steps follow, so a prefix of the case runs its steps exactly
        // as the whole case does (`unidma replay`).
        let seed = 0x9e37_79b9_7f4a_7c15;
        let mut run = Self {
            devs: Vec::new(),
            lives: Vec::new(),
            stale: Vec::new(),
            policies: BTreeMap::new(),
            now_ms: 0,
            epoch: 0,
            stats: RunStats::default(),
            rng: seed,
            lazy_groups,
            translating,
            history: Vec::new(),
            acs_changed: false,
            lazy_mode: case.mode == IommuMode::Lazy,
            via_iommu: Default::default(),
            start: None,
            records,
            owners: owners.into_iter().collect(),
            acs_ports,
            a,
            factory,
        };
        let bdfs: Vec<Bdf> = run.a.endpoints().map(|e| e.bdf).collect();
        for b in bdfs {
            if let Some(d) = run.make_dev(b) {
                run.devs.push(d);
            }
        }
        run.stats.endpoints = run.devs.len();
        run
    }

    fn make_dev(&self, bdf: Bdf) -> Option<Dev> {
        let ep = self.a.endpoint(bdf)?;
        let backend = self.factory.backend(&FactoryEnv {
            assembly: &self.a,
            endpoint: ep,
        });
        let device = if Arc::ptr_eq(&backend, ep.device.raw_backend()) {
            ep.device.clone()
        } else {
            Arc::new(DmaDevice::new(self.a.ctx.clone(), bdf, backend).ok()?)
        };
        Some(Dev {
            bdf,
            group: ep.group,
            device,
            debug: ep.debug.clone(),
        })
    }

    pub(crate) fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The group of the device at `bdf` (current).
    pub(crate) fn group_of(&self, bdf: Bdf) -> Option<GroupId> {
        self.devs.iter().find(|d| d.bdf == bdf).map(|d| d.group)
    }

    fn dev(&self, i: u8) -> Option<&Dev> {
        if self.devs.is_empty() {
            return None;
        }
        self.devs.get(i as usize % self.devs.len())
    }

    /// The memory ranges of a kind, in a stable order.
    fn ranges(&self, pick: MemPick) -> Vec<(u64, u64)> {
        let l = &self.a.layout;
        match pick {
            MemPick::Scratch => vec![(
                l.scratch.0.raw(),
                SCRATCH_PAGES.min(l.scratch.1 / PAGE) * PAGE,
            )],
            MemPick::High => self
                .a
                .machine
                .memmap
                .ranges()
                .iter()
                .filter(|r| r.kind == RangeKind::Ram && r.start.raw() >= 1 << 32)
                .map(|r| (r.start.raw(), r.size.min(1 << 30)))
                .collect(),
            MemPick::Stolen => self
                .a
                .ctx
                .memmap
                .read()
                .ranges()
                .iter()
                .filter(|r| matches!(r.kind, RangeKind::StolenRam { .. }))
                .map(|r| (r.start.raw(), r.size))
                .collect(),
            MemPick::Bar => self
                .a
                .ctx
                .memmap
                .read()
                .ranges()
                .iter()
                .filter(|r| matches!(r.kind, RangeKind::Bar { .. }))
                .map(|r| (r.start.raw(), r.size))
                .collect(),
            MemPick::P2p => {
                let reg = self.a.ctx.p2pmem.read();
                let mut v: Vec<(u64, u64)> = reg
                    .providers()
                    .flat_map(|id| reg.resources(id).iter().map(|r| (r.phys.raw(), r.size)))
                    .collect();
                v.sort_unstable();
                v
            }
        }
    }

    /// `[phys, phys + len)` for `m` with `len` wanted bytes (clipped to the
    /// range; at least one byte).
    fn resolve(&self, m: MemRef, len: u64, page_aligned: bool) -> Option<(u64, u64)> {
        let rs = self.ranges(m.pick);
        if rs.is_empty() {
            return None;
        }
        let (start, size) = rs[m.which as usize % rs.len()];
        let pages = (size / PAGE).max(1);
        let mut at = start + (u64::from(m.page) % pages) * PAGE;
        if !page_aligned {
            at += u64::from(m.offset) % PAGE.min(size);
        }
        let end = start + size;
        if at >= end {
            return None;
        }
        Some((at, len.clamp(1, end - at)))
    }

    /// Where the bytes of `[phys, phys + len)` land, and its owner: the
    /// memory itself, or where the harness's redirect policy sends them.
    pub(crate) fn landing(&self, phys: u64, len: u64) -> (u64, Option<Bdf>) {
        let mm = self.a.ctx.memmap.read();
        let owner = match mm
            .kind_of_range(PhysAddr::new(phys), len)
            .map(|(r, _)| r.kind)
        {
            Some(RangeKind::Bar { provider, .. })
            | Some(RangeKind::StolenRam { owner: provider }) => {
                let topo = self.a.ctx.topology.read();
                topo.device(dma_api::topology::DeviceId::from_provider(provider))
                    .map(|d| d.bdf)
            }
            _ => None,
        };
        drop(mm);
        let land = match owner.and_then(|o| self.policies.get(&o)) {
            Some((PolicyPick::Redirect, base)) => base + phys % REDIRECT_REGION,
            _ => phys,
        };
        (land, owner)
    }

    fn live_index(&self, which: u8, iova_only: bool) -> Option<usize> {
        let idx: Vec<usize> = (0..self.lives.len())
            .filter(|&i| !iova_only || matches!(self.lives[i].handle, Handle::Iova { .. }))
            .collect();
        if idx.is_empty() {
            return None;
        }
        Some(idx[which as usize % idx.len()])
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::MapSingle { dev, mem, len, dir } => {
                let Some(d) = self.dev(*dev) else {
                    return Ok(());
                };
                let want = u64::from(*len) % (3 * PAGE) + 1;
                let Some((phys, len)) = self.resolve(*mem, want, false) else {
                    return Ok(());
                };
                let (bdf, device) = (d.bdf, d.device.clone());
                match device.map_phys(PhysAddr::new(phys), len, *dir, DmaAttrs::empty()) {
                    Ok(dma) => {
                        let (land, owner) = self.landing(phys, len);
                        self.stats.mapped += 1;
                        self.lives.push(Live {
                            dev: bdf,
                            dir: *dir,
                            handle: Handle::Single { dma, len },
                            spans: vec![Span {
                                dma: dma.raw(),
                                len,
                                land,
                            }],
                            owners: owner.into_iter().collect(),
                            born: self.stats.steps,
                        });
                    }
                    Err(_) => self.stats.refused += 1,
                }
            }
            Op::MapTable { dev, parts, dir } => {
                let Some(d) = self.dev(*dev) else {
                    return Ok(());
                };
                let (bdf, device) = (d.bdf, d.device.clone());
                let ranges: Vec<(PhysAddr, u64)> = parts
                    .iter()
                    .filter_map(|(m, l)| self.resolve(*m, u64::from(*l) % (3 * PAGE) + 1, false))
                    .map(|(p, l)| (PhysAddr::new(p), l))
                    .collect();
                if ranges.is_empty() {
                    return Ok(());
                }
                // One table the device writes must not cover the same bytes
                // twice (Linux dma-debug: "overlapping mappings aren't
                // supported"; with bouncing, the later entry's copy-back
                // wins): a driver bug, not an input the harness makes.
                if dir.device_writes() {
                    let mut lands: Vec<(u64, u64)> = ranges
                        .iter()
                        .map(|(p, l)| (self.landing(p.raw(), *l).0, *l))
                        .collect();
                    lands.sort_unstable();
                    if lands.windows(2).any(|w| w[1].0 < w[0].0 + w[0].1) {
                        return Ok(());
                    }
                }
                let Ok(mut table) = device.table_from_ranges(&ranges, 1 << 16) else {
                    self.stats.refused += 1;
                    return Ok(());
                };
                match device.map_sgtable(&mut table, *dir, DmaAttrs::empty()) {
                    Ok(_) => {
                        self.stats.mapped += 1;
                        let (spans, owners) = self.table_spans(&table)?;
                        self.lives.push(Live {
                            dev: bdf,
                            dir: *dir,
                            handle: Handle::Table(Box::new(table)),
                            spans,
                            owners,
                            born: self.stats.steps,
                        });
                    }
                    Err(_) => self.stats.refused += 1,
                }
            }
            Op::Unmap { which } => {
                let Some(i) = self.live_index(*which, false) else {
                    return Ok(());
                };
                self.unmap(i)?;
            }
            Op::Sync { which, for_cpu } => {
                let Some(i) = self.live_index(*which, false) else {
                    return Ok(());
                };
                invariants::sync_live(self, i, *for_cpu)?;
            }
            Op::IovaAlloc { dev, mem, pages } => {
                let Some(d) = self.dev(*dev) else {
                    return Ok(());
                };
                let Some((phys, _)) = self.resolve(*mem, 1, false) else {
                    return Ok(());
                };
                let (bdf, device) = (d.bdf, d.device.clone());
                let size = u64::from(*pages) * PAGE - phys % PAGE;
                match device.iova_try_alloc(PhysAddr::new(phys), size) {
                    Ok(Some(state)) => self.lives.push(Live {
                        dev: bdf,
                        dir: Direction::Bidirectional,
                        handle: Handle::Iova {
                            state,
                            links: Vec::new(),
                        },
                        spans: Vec::new(),
                        owners: BTreeSet::new(),
                        born: self.stats.steps,
                    }),
                    Ok(None) => {}
                    Err(_) => self.stats.refused += 1,
                }
            }
            Op::IovaLink {
                which,
                mem,
                at_page,
                pages,
                dir,
            } => {
                let Some(i) = self.live_index(*which, true) else {
                    return Ok(());
                };
                let Handle::Iova { state, links } = &self.lives[i].handle else {
                    return Ok(());
                };
                let state = *state;
                let npages = (state.first_offset + state.size) / PAGE;
                let at = u64::from(*at_page) % npages.max(1);
                let want = u64::from(*pages).min(npages - at) * PAGE;
                if want == 0
                    || links.iter().any(|l| {
                        let lo = (state.first_offset + l.offset) / PAGE;
                        let hi = (state.first_offset + l.offset + l.len).div_ceil(PAGE);
                        at < hi && lo < at + want / PAGE
                    })
                {
                    return Ok(());
                }
                let Some((phys, len)) = self.resolve(*mem, want, true) else {
                    return Ok(());
                };
                let offset = at * PAGE - state.first_offset.min(at * PAGE);
                if at == 0 && state.first_offset != 0 {
                    // The first granule starts at the reservation's offset.
                    return Ok(());
                }
                let dev = self.lives[i].dev;
                let Some(device) = self
                    .devs
                    .iter()
                    .find(|d| d.bdf == dev)
                    .map(|d| d.device.clone())
                else {
                    return Ok(());
                };
                match device.iova_link(
                    &state,
                    PhysAddr::new(phys),
                    offset,
                    len,
                    *dir,
                    DmaAttrs::empty(),
                ) {
                    Ok(res) => {
                        let (land, owner) = self.landing(phys, len);
                        let (dma, linked) = match res {
                            IovaLink::Linked => {
                                device
                                    .iova_sync(&state, offset, len)
                                    .map_err(|e| format!("iova_sync after a link failed: {e}"))?;
                                (state.base.raw() + state.first_offset + offset, true)
                            }
                            IovaLink::Bus(b) => (b.raw(), false),
                        };
                        self.stats.mapped += 1;
                        let step = self.stats.steps;
                        let live = &mut self.lives[i];
                        live.born = step;
                        live.owners.extend(owner);
                        if let Handle::Iova { links, .. } = &mut live.handle {
                            links.push(IovaPiece {
                                offset,
                                len,
                                span: Span { dma, len, land },
                                dir: *dir,
                                linked,
                            });
                        }
                        live.spans.push(Span { dma, len, land });
                    }
                    Err(_) => self.stats.refused += 1,
                }
            }
            Op::IovaUnlink { which, link } => {
                let Some(i) = self.live_index(*which, true) else {
                    return Ok(());
                };
                let dev = self.lives[i].dev;
                let group = self.group_of(dev);
                let Handle::Iova { state, links } = &mut self.lives[i].handle else {
                    return Ok(());
                };
                if links.is_empty() {
                    return Ok(());
                }
                let k = *link as usize % links.len();
                let l = links[k];
                let state = *state;
                let Some(device) = self
                    .devs
                    .iter()
                    .find(|d| d.bdf == dev)
                    .map(|d| d.device.clone())
                else {
                    return Ok(());
                };
                let stale = invariants::translated(self, dev, &[l.span], l.dir);
                if l.linked {
                    device
                        .iova_unlink(&state, l.offset, l.len, l.dir, DmaAttrs::empty())
                        .map_err(|e| format!("iova_unlink of a live link failed: {e}"))?;
                }
                if let Handle::Iova { links, .. } = &mut self.lives[i].handle {
                    links.remove(k);
                }
                self.lives[i].spans.retain(|s| *s != l.span);
                if l.linked {
                    self.went_stale(group, stale);
                }
                invariants::after_unmap(self, group, &[l.span])?;
            }
            Op::IovaDestroy { which } => {
                let Some(i) = self.live_index(*which, true) else {
                    return Ok(());
                };
                self.unmap(i)?;
            }
            Op::CoherentAlloc { dev, pages } => {
                let Some(d) = self.dev(*dev) else {
                    return Ok(());
                };
                let (bdf, device) = (d.bdf, d.device.clone());
                match device.alloc_coherent(u64::from(*pages) * PAGE) {
                    Ok((phys, dma)) => {
                        self.stats.mapped += 1;
                        self.lives.push(Live {
                            dev: bdf,
                            dir: Direction::Bidirectional,
                            handle: Handle::Coherent { phys, dma },
                            spans: vec![Span {
                                dma: dma.raw(),
                                len: u64::from(*pages) * PAGE,
                                land: phys.raw(),
                            }],
                            owners: BTreeSet::new(),
                            born: self.stats.steps,
                        });
                    }
                    Err(_) => self.stats.refused += 1,
                }
            }
            Op::SetPolicy { provider, policy } => {
                if self.owners.is_empty() {
                    return Ok(());
                }
                let k = *provider as usize % self.owners.len();
                let owner = self.owners[k];
                let Ok(pid) = self.a.ctx.provider_of(owner) else {
                    return Ok(());
                };
                let base =
                    self.a.layout.scratch.0.raw() + (128 << 20) + (k as u64 % 8) * REDIRECT_REGION;
                let p: Arc<dyn ProviderPolicy> = match policy {
                    PolicyPick::Allow => Arc::new(Fixed(PolicyDecision::Allow)),
                    PolicyPick::Refuse => Arc::new(Fixed(PolicyDecision::Refuse("fuzz".into()))),
                    PolicyPick::Redirect => Arc::new(Redirect { base }),
                };
                self.a.ctx.set_policy(pid, p);
                self.policies.insert(owner, (*policy, base));
            }
            Op::SetAcs { port, ctrl } => {
                if self.acs_ports.is_empty() || self.lives.iter().any(|l| !l.owners.is_empty()) {
                    // A live peer mapping's route would change under it.
                    return Ok(());
                }
                let bdf = self.acs_ports[*port as usize % self.acs_ports.len()];
                let mut t = self.a.ctx.topology.write();
                let Some(id) = t.lookup(bdf) else {
                    return Ok(());
                };
                let Some(cap) = t.device(id).and_then(|d| d.acs) else {
                    return Ok(());
                };
                let cap_bits = cap.cap.bits() as u8;
                let ctrl = super::machine_gen::normalize_acs_ctrl(cap_bits, *ctrl);
                let bits = dma_api::topology::Acs::from_bits_truncate(u16::from(ctrl)) & cap.cap;
                self.acs_changed = true;
                self.via_iommu.clear();
                t.set_acs_ctrl(id, bits)
                    .map_err(|e| format!("set_acs_ctrl inside the capability failed: {e}"))?;
            }
            Op::Replug { dev } => {
                let Some(d) = self.dev(*dev) else {
                    return Ok(());
                };
                let (bdf, old_group) = (d.bdf, d.group);
                if self
                    .lives
                    .iter()
                    .any(|l| l.dev == bdf || l.owners.contains(&bdf))
                {
                    return Ok(());
                }
                let Some(rec) = self.records.get(&bdf).cloned() else {
                    return Ok(());
                };
                // Siblings of a multi-function device stay; the function
                // goes and comes back with the same record.
                self.devs.retain(|d| d.bdf != bdf);
                let mut rec = rec;
                if let Some(acs) = self
                    .a
                    .ctx
                    .topology
                    .read()
                    .lookup(bdf)
                    .and_then(|id| self.a.ctx.topology.read().device(id).and_then(|d| d.acs))
                {
                    rec.acs = Some(acs);
                }
                self.a
                    .hot_remove(bdf)
                    .map_err(|e| format!("hot_remove of an idle endpoint {bdf} failed: {e}"))?;
                self.policies.remove(&bdf);
                self.via_iommu.clear();
                match self.a.hot_add(rec) {
                    Ok(_) => {}
                    // After an ACS change the function's group may now span
                    // groups that have their own domains, or hold a port
                    // whose domain type differs from the one the function's
                    // record asks for: a typed refusal, like Linux, which
                    // never regroups a running system.
                    Err(
                        crate::assembly::AssemblyError::GroupMerge { .. }
                        | crate::assembly::AssemblyError::GroupConflict { .. },
                    ) if self.acs_changed => return Ok(()),
                    Err(e) => return Err(format!("re-adding {bdf} at the same BDF failed: {e}")),
                }
                if let Some(d) = self.make_dev(bdf) {
                    self.regrouped(bdf, old_group, d.group);
                    self.devs.push(d);
                    self.devs.sort_by_key(|d| d.bdf);
                }
            }
            Op::Advance { ms } => {
                self.a
                    .advance(Duration::from_millis(u64::from(*ms)))
                    .map_err(|e| format!("advancing the flush-queue clock failed: {e}"))?;
                self.now_ms += u64::from(*ms);
            }
        }
        Ok(())
    }

    /// The spans of a mapped table: its DMA segments walked against its CPU
    /// entries (the DMA segments, in order, carry the CPU entries' bytes).
    fn table_spans(&self, table: &SgTable) -> Result<(Vec<Span>, BTreeSet<Bdf>), String> {
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut owners = BTreeSet::new();
        for e in table.iter() {
            let len = u64::from(e.len());
            let (land, owner) = self.landing(e.phys().raw(), len);
            owners.extend(owner);
            pieces.push((land, len));
        }
        let mut spans = Vec::new();
        let mut pi = 0usize;
        let mut used = 0u64;
        for s in table.dma_iter() {
            let (mut dma, mut left) = (s.dma_address().raw(), u64::from(s.dma_len()));
            while left > 0 {
                let Some(&(land, plen)) = pieces.get(pi) else {
                    return Err(format!(
                        "table DMA segments carry more bytes than its CPU entries (at DMA {dma:#x})"
                    ));
                };
                let n = (plen - used).min(left);
                spans.push(Span {
                    dma,
                    len: n,
                    land: land + used,
                });
                dma += n;
                left -= n;
                used += n;
                if used == plen {
                    pi += 1;
                    used = 0;
                }
            }
        }
        if pi != pieces.len() {
            return Err(format!(
                "table DMA segments carry fewer bytes than its {} CPU entries",
                pieces.len()
            ));
        }
        Ok((spans, owners))
    }

    /// The model of a re-added function's group, derived from the input as
    /// at start (`Run::new`), not copied from its old group: after an ACS
    /// write the function may come back alone in a new group, or join
    /// another one. Translation follows the host bridge, the same as
    /// before. A new group's default domain is lazy in lazy mode when every
    /// member is trusted, even if the old group was strict for an untrusted
    /// mate (Linux `iommu_get_default_domain_type`: an untrusted device
    /// gets a strict `DMA` domain); an untrusted function joining a lazy
    /// group makes it strict and flushes its queue (the domain layer's
    /// `attach_group`), so its stale translations are gone.
    fn regrouped(&mut self, bdf: Bdf, old_group: GroupId, group: GroupId) {
        if !self.translating.contains(&old_group) {
            return;
        }
        self.translating.insert(group);
        let trusted = {
            let topo = self.a.ctx.topology.read();
            let groups = IommuGroups::compute(&topo);
            topo.lookup(bdf)
                .and_then(|id| groups.group_of(id))
                .and_then(|g| groups.groups().get(g))
                .is_some_and(|members| {
                    members
                        .iter()
                        .all(|id| topo.device(*id).is_some_and(|d| !d.untrusted))
                })
        };
        let joined = self.devs.iter().any(|d| d.group == group);
        if !joined {
            if self.lazy_mode && trusted {
                self.lazy_groups.insert(group);
            } else {
                self.lazy_groups.remove(&group);
            }
        } else if !trusted && self.lazy_groups.remove(&group) {
            self.stale.retain(|s| s.group != group);
        }
    }

    fn went_stale(&mut self, group: Option<GroupId>, spans: Vec<Span>) {
        if let Some(g) = group.filter(|g| self.lazy_groups.contains(g)) {
            self.stale.push(Stale {
                group: g,
                spans,
                at_ms: self.now_ms,
            });
        }
    }

    /// Unmaps live mapping `i` with the call that undoes it.
    pub(crate) fn unmap(&mut self, i: usize) -> Result<(), String> {
        let live = self.lives.remove(i);
        let group = self.group_of(live.dev);
        let stale = match &live.handle {
            Handle::Iova { links, .. } => links
                .iter()
                .flat_map(|l| invariants::translated(self, live.dev, &[l.span], l.dir))
                .collect(),
            _ => invariants::translated(self, live.dev, &live.spans, live.dir),
        };
        let Some(device) = self
            .devs
            .iter()
            .find(|d| d.bdf == live.dev)
            .map(|d| d.device.clone())
        else {
            return Err(format!("live mapping of {} without its device", live.dev));
        };
        let res = match live.handle {
            Handle::Single { dma, len } => device.unmap_phys(dma, len, live.dir, DmaAttrs::empty()),
            Handle::Table(mut t) => device.unmap_sgtable(&mut t, live.dir, DmaAttrs::empty()),
            Handle::Coherent { phys, dma } => device.free_coherent(phys, dma),
            Handle::Iova { state, ref links } => {
                let mapped = links
                    .iter()
                    .filter(|l| l.linked)
                    .map(|l| l.offset + l.len)
                    .max()
                    .unwrap_or(0);
                let dir = links.first().map_or(Direction::Bidirectional, |l| l.dir);
                device.iova_destroy(state, mapped, dir, DmaAttrs::empty())
            }
        };
        res.map_err(|e| format!("unmapping a live mapping of {} failed: {e}", live.dev))?;
        self.went_stale(group, stale);
        invariants::after_unmap(self, group, &live.spans)
    }

    /// Unmaps everything live and lets every flush queue drain.
    fn teardown(&mut self) -> Result<(), String> {
        while !self.lives.is_empty() {
            self.unmap(self.lives.len() - 1)?;
        }
        self.a
            .advance(Duration::from_secs(2))
            .map_err(|e| format!("final flush failed: {e}"))?;
        self.now_ms += 2000;
        Ok(())
    }

    /// Checks before the first step (and snapshots nothing: the start state
    /// of every domain is empty).
    fn start_checks(&mut self) -> Result<(), String> {
        invariants::at_end(self)
    }
}
