//! Scenarios: the design promise made visible.
//!
//! Every mapping decision is checked end to end by moving real bytes on the
//! assembled machine's [`Fabric`](dma_sim::fabric::Fabric): a scenario maps
//! through a [`dma_api::device::DmaDevice`], lets the device use
//! the address on the wire, then reads back where the mapping promised the
//! bytes would land. The result carries the fabric's own numbers (payload
//! bytes, bytes across the root complex, bytes to RAM, faults and the hop
//! list), so "P2P kept N bytes off the root complex and RAM" is a measured
//! number, not a claim.
//!
//! Each scenario builds a fresh [`Assembly`] (so the counters and the fault
//! log are its own), picks its devices by role on whatever machine it is
//! given, and is skipped with "not applicable: …" only when the machine has
//! no such devices; anything else that goes wrong, an assembly failure
//! included, fails it. What the machine description answers (is there a
//! stolen-RAM carve-out, a GPU with registered VRAM, a NIC?) is asked
//! before assembling, so a scenario the machine cannot run costs no
//! assembly; [`run`] has assembled the machine in the asked mode first, so
//! a machine that does not assemble is still reported. One file per scenario; this file holds the runner and the
//! few helpers they share.

mod bounce;
mod fallback;
mod hmm_migrate;
mod hmm_peers;
mod hmm_vma;
mod host_bridge_p2p;
mod lazy_unmap;
mod nvmet_offload;
mod pick;
mod refused_read;
mod share_apu;
mod share_gpu_nic;
mod share_revoke;
mod stolen_ram;
mod strict_unmap;
mod switch_p2p;
mod xdomain_export;

use dma_api::device::DmaDevice;
use dma_api::topology::IommuGroups;
use dma_api::{Bdf, DmaAddr, PhysAddr};
use dma_sim::assembly::{Assembly, AssemblyError, AssemblyOptions, Endpoint, IommuMode};
use dma_sim::fabric::{format_route, Hop};
use dma_sim::machine::Machine;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Display;
use std::rc::Rc;
use std::sync::Arc;

/// How a scenario ended.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check held.
    Pass,
    /// A check failed; `reason` says which.
    Fail,
    /// The machine lacks what the scenario needs; `reason` says what.
    Skip,
}

impl Status {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// One scenario's record (also its JSON shape).
#[derive(Serialize, Clone, Debug)]
pub struct ScenarioResult {
    /// Short name (`switch-p2p`, …).
    pub name: &'static str,
    /// One line: what it shows.
    pub description: &'static str,
    /// Pass, fail or skip.
    pub status: Status,
    /// The outcome in one sentence (the measured claim, what failed, or why
    /// it does not apply).
    pub reason: String,
    /// Payload bytes devices moved on the fabric (delivered writes + reads).
    pub bytes: u64,
    /// Payload bytes across the root complex's PCIe boundary (every
    /// root-port ↔ host-bridge link, both directions).
    pub root_complex_bytes: u64,
    /// Payload bytes through the memory controller (RAM link).
    pub ram_bytes: u64,
    /// Every fault the fabric recorded, expected ones included.
    pub faults: Vec<String>,
    /// The hop list of the scenario's key transfer, one hop per entry.
    pub route: Vec<String>,
    /// What was picked, mapped and checked, step by step.
    pub details: Vec<String>,
}

/// A scenario: a name, a one-line description and its steps.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Short name.
    pub name: &'static str,
    /// One line.
    pub description: &'static str,
    run: fn(&mut Trial<'_>) -> Result<String, Stop>,
}

impl core::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .finish()
    }
}

/// Every scenario, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    switch_p2p::SCENARIO,
    host_bridge_p2p::SCENARIO,
    refused_read::SCENARIO,
    fallback::SCENARIO,
    stolen_ram::SCENARIO,
    bounce::SCENARIO,
    strict_unmap::SCENARIO,
    lazy_unmap::SCENARIO,
    share_gpu_nic::SCENARIO,
    share_apu::SCENARIO,
    share_revoke::SCENARIO,
    hmm_migrate::SCENARIO,
    hmm_peers::SCENARIO,
    hmm_vma::SCENARIO,
    xdomain_export::SCENARIO,
    nvmet_offload::SCENARIO,
];

/// Runs every scenario on `machine` with `mode` as the default IOMMU mode
/// (the swiotlb and unmap scenarios pick their own). Fails only if the
/// machine cannot be assembled in `mode` at all.
///
/// The assembly that proves the machine assembles is fresh (nothing has
/// used it), so it is handed to the first scenario that asks for one in
/// `mode` on the unedited machine instead of being built again.
pub fn run(machine: &Machine, mode: IommuMode) -> Result<Vec<ScenarioResult>, AssemblyError> {
    let groups = machine.iommu_groups();
    let mut spare = Some(Assembly::build_grouped(
        machine.clone(),
        &groups,
        options(mode),
    )?);
    Ok(SCENARIOS
        .iter()
        .map(|s| run_one_with(s, machine, Some(&groups), mode, &mut spare))
        .collect())
}

/// Runs one scenario.
pub fn run_one(s: &Scenario, machine: &Machine, mode: IommuMode) -> ScenarioResult {
    run_one_with(s, machine, None, mode, &mut None)
}

/// [`run_one`], taking `spare` (a fresh assembly of `machine` in `mode`)
/// for the scenario's first such assembly (it stays there if unused), and
/// assembling the machine with `groups`, its IOMMU groups, when given.
fn run_one_with(
    s: &Scenario,
    machine: &Machine,
    groups: Option<&IommuGroups>,
    mode: IommuMode,
    spare: &mut Option<Assembly>,
) -> ScenarioResult {
    let mut t = Trial {
        machine,
        groups,
        mode,
        spare: spare.take(),
        assembly: None,
        route: Vec::new(),
        details: Vec::new(),
    };
    let (status, reason) = match (s.run)(&mut t) {
        Ok(r) => (Status::Pass, r),
        Err(Stop::Skip(r)) => (Status::Skip, format!("not applicable: {r}")),
        Err(Stop::Fail(r)) => (Status::Fail, r),
    };
    *spare = t.spare.take();
    let (mut bytes, mut rc, mut ram, mut faults) = (0, 0, 0, Vec::new());
    if let Some(a) = &t.assembly {
        let c = a.fabric.counters();
        bytes = c.bytes_written.saturating_add(c.bytes_read);
        rc = a.fabric.root_complex_bytes();
        ram = a.fabric.ram_bytes();
        faults = a
            .fabric
            .faults()
            .iter()
            .map(|f| crate::names::named(&f.to_string(), machine))
            .collect();
    }
    ScenarioResult {
        name: s.name,
        description: s.description,
        status,
        reason,
        bytes,
        root_complex_bytes: rc,
        ram_bytes: ram,
        faults,
        route: crate::names::named(&format_route(&t.route), machine)
            .lines()
            .map(str::to_string)
            .collect(),
        details: t
            .details
            .iter()
            .map(|d| crate::names::named(d, machine))
            .collect(),
    }
}

fn options(mode: IommuMode) -> AssemblyOptions {
    AssemblyOptions {
        iommu: mode,
        ..AssemblyOptions::default()
    }
}

/// Why a scenario stopped early.
pub(crate) enum Stop {
    /// The machine lacks what it needs.
    Skip(String),
    /// A check failed.
    Fail(String),
}

/// `Stop::Skip` with a message.
pub(crate) fn skip(why: impl Into<String>) -> Stop {
    Stop::Skip(why.into())
}

/// Maps an error of step `what` to a failure naming both.
pub(crate) fn failed<E: Display>(what: &'static str) -> impl FnOnce(E) -> Stop {
    move |e| Stop::Fail(format!("{what}: {e}"))
}

/// Fails with `why()` unless `ok`.
pub(crate) fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), Stop> {
    if ok {
        Ok(())
    } else {
        Err(Stop::Fail(why()))
    }
}

/// A scenario in progress: the machine, the assembly whose fabric the
/// result reports, and what was noted on the way.
pub(crate) struct Trial<'m> {
    machine: &'m Machine,
    /// The machine's IOMMU groups, when the runner has computed them.
    groups: Option<&'m IommuGroups>,
    mode: IommuMode,
    /// A fresh assembly of `machine` in `mode`, taken by the first
    /// [`assemble`](Self::assemble) in that mode.
    spare: Option<Assembly>,
    assembly: Option<Rc<Assembly>>,
    route: Vec<Hop>,
    details: Vec<String>,
}

impl Trial<'_> {
    /// The IOMMU mode asked for on the command line.
    pub(crate) fn mode(&self) -> IommuMode {
        self.mode
    }

    /// The machine.
    pub(crate) fn machine(&self) -> &Machine {
        self.machine
    }

    /// Assembles the machine in `mode`; this assembly's fabric is the one
    /// reported. A machine that cannot be assembled so fails the scenario
    /// with the error (a skip means only that the machine lacks the
    /// devices).
    pub(crate) fn assemble(&mut self, mode: IommuMode) -> Result<Rc<Assembly>, Stop> {
        if mode == self.mode {
            if let Some(a) = self.spare.take() {
                let a = Rc::new(a);
                self.assembly = Some(a.clone());
                return Ok(a);
            }
        }
        if let Some(g) = self.groups {
            let a = Assembly::build_grouped(self.machine.clone(), g, options(mode))
                .map_err(|e| self.not_assembled(mode, e))?;
            let a = Rc::new(a);
            self.assembly = Some(a.clone());
            return Ok(a);
        }
        self.assemble_machine(self.machine.clone(), mode)
    }

    /// The failure of an assembly in `mode`.
    fn not_assembled(&self, mode: IommuMode, e: AssemblyError) -> Stop {
        Stop::Fail(format!(
            "machine {} does not assemble with iommu={}: {e}",
            self.machine.name,
            mode.name()
        ))
    }

    /// [`assemble`](Self::assemble) for an edited copy of the machine.
    pub(crate) fn assemble_machine(
        &mut self,
        m: Machine,
        mode: IommuMode,
    ) -> Result<Rc<Assembly>, Stop> {
        self.assemble_machine_unless(m, mode, |_| None)
    }

    /// [`assemble_machine`](Self::assemble_machine), except that an error
    /// `lacks` recognises as the machine lacking what the scenario needs
    /// (`Some(why)`) skips it.
    pub(crate) fn assemble_machine_unless(
        &mut self,
        m: Machine,
        mode: IommuMode,
        lacks: impl FnOnce(&AssemblyError) -> Option<String>,
    ) -> Result<Rc<Assembly>, Stop> {
        let a = Assembly::build(m, options(mode)).map_err(|e| match lacks(&e) {
            Some(why) => skip(why),
            None => self.not_assembled(mode, e),
        })?;
        let a = Rc::new(a);
        self.assembly = Some(a.clone());
        Ok(a)
    }

    /// Adds a detail line.
    pub(crate) fn note(&mut self, line: impl Into<String>) {
        self.details.push(line.into());
    }

    /// Records the route a request of `who` at `dma` takes now.
    pub(crate) fn record_route(&mut self, a: &Assembly, who: Bdf, dma: DmaAddr, write: bool) {
        match a.fabric.route_of(who, dma, write) {
            Ok(h) => self.route = h,
            Err(f) => self.note(format!("no route: {f}")),
        }
    }
}

/// The endpoints that act as DMA masters, in BDF order: every endpoint
/// except bridge-class functions (the host bridge's own function); the
/// same endpoints the CLI takes as P2P clients
/// ([`crate::providers::is_endpoint`]).
pub(crate) fn masters(a: &Assembly) -> impl Iterator<Item = &Endpoint> + '_ {
    let topo = &a.machine.topology;
    a.endpoints().filter(move |e| {
        topo.lookup(e.bdf)
            .and_then(|id| topo.device(id))
            .is_some_and(is_master)
    })
}

/// True for a function that can be a DMA master (see [`masters`]).
pub(crate) fn is_master(d: &dma_api::topology::Device) -> bool {
    crate::providers::is_endpoint(d)
}

/// Whether a device owns a stolen-RAM carve-out (an APU), from one pass
/// over the memory map (a pass per device was quadratic on a machine with
/// thousands of providers and memory ranges).
pub(crate) fn apu_test(m: &Machine) -> impl Fn(dma_api::topology::DeviceId) -> bool {
    let owners: BTreeSet<_> = m
        .memmap
        .ranges()
        .iter()
        .filter_map(|r| match r.kind {
            dma_api::memmap::RangeKind::StolenRam { owner } => Some(owner),
            _ => None,
        })
        .collect();
    move |id| owners.contains(&id.provider_id())
}

/// The DMA device at `bdf`.
pub(crate) fn device(a: &Assembly, bdf: Bdf) -> Result<Arc<DmaDevice>, Stop> {
    a.device(bdf)
        .cloned()
        .ok_or_else(|| Stop::Fail(format!("no DMA device for {bdf}")))
}

/// A recognisable byte pattern with no zero byte (a write that never
/// happened over zeroed memory cannot pass for it), using every value
/// 1..=255 (so a stuck bit shows too); the same as the end-to-end tests'.
pub(crate) fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let x = (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8);
            x % 255 + 1
        })
        .collect()
}

/// Payload bytes the devices moved that crossed neither the root complex
/// nor RAM, from the fabric's counters: every byte moved minus the bytes
/// counted at the root complex or at RAM (exact for one transfer, a lower
/// bound when transfers of both kinds mix).
pub(crate) fn kept_off_root_complex(a: &Assembly) -> u64 {
    let c = a.fabric.counters();
    let moved = c.bytes_written.saturating_add(c.bytes_read);
    moved.saturating_sub(a.fabric.root_complex_bytes().max(a.fabric.ram_bytes()))
}

/// The CPU's view of `[at, at + len)`.
pub(crate) fn cpu_read(a: &Assembly, at: PhysAddr, len: u64) -> Result<Vec<u8>, Stop> {
    let mut b = vec![0u8; len as usize];
    a.fabric.cpu_read(at, &mut b).map_err(failed("CPU read"))?;
    Ok(b)
}

/// The device `who` writes a pattern at `dma`; the CPU must then see it at
/// `at`. Returns the pattern.
pub(crate) fn write_lands(
    a: &Assembly,
    who: Bdf,
    dma: DmaAddr,
    at: PhysAddr,
    len: u64,
    seed: u8,
) -> Result<Vec<u8>, Stop> {
    let data = pattern(len, seed);
    a.fabric
        .dma_write(who, dma, &data)
        .map_err(failed("device write"))?;
    check(cpu_read(a, at, len)? == data, || {
        format!("{who} wrote {len:#x} bytes at {dma}, but they are not at phys {at}")
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(t: &mut Trial<'_>) -> Result<String, Stop> {
        let a = t.assemble(IommuMode::Strict)?;
        let e = masters(&a).next().map(|e| e.bdf);
        let bdf = e.ok_or_else(|| skip("no device"))?;
        let buf = a.layout.scratch.0;
        let dev = device(&a, bdf)?;
        let dma = dev
            .map_phys(
                buf,
                0x1000,
                dma_api::Direction::FromDevice,
                Default::default(),
            )
            .map_err(failed("map_phys"))?;
        write_lands(&a, bdf, dma, buf, 0x1000, 1)?;
        check(false, || "deliberate".into())?;
        Ok("unreachable".into())
    }

    fn skips(_: &mut Trial<'_>) -> Result<String, Stop> {
        Err(skip("nothing here"))
    }

    #[test]
    fn a_failed_check_is_a_failure_with_the_numbers_so_far() {
        let m = Machine::reference().unwrap();
        let s = Scenario {
            name: "t",
            description: "d",
            run: fails,
        };
        let r = run_one(&s, &m, IommuMode::Strict);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.reason, "deliberate");
        assert_eq!(r.bytes, 0x1000);
        assert_eq!(r.ram_bytes, 0x1000);
        let s = Scenario {
            name: "t",
            description: "d",
            run: skips,
        };
        let r = run_one(&s, &m, IommuMode::Strict);
        assert_eq!(r.status, Status::Skip);
        assert_eq!(r.reason, "not applicable: nothing here");
        assert_eq!(r.bytes, 0);
    }

    fn assembles_a_machine_without_ram(t: &mut Trial<'_>) -> Result<String, Stop> {
        let mut m = t.machine().clone();
        m.memmap
            .remove_where(|k| *k == dma_api::memmap::RangeKind::Ram);
        t.assemble_machine(m, IommuMode::Strict)?;
        Ok("assembled".into())
    }

    /// Bug: an assembly failure was reported as "skipped" (exit 0). A skip
    /// means only that the machine lacks the devices; a machine that does
    /// not assemble fails the scenario, with the error.
    #[test]
    fn an_assembly_failure_is_a_failure_not_a_skip() {
        let m = Machine::reference().unwrap();
        let s = Scenario {
            name: "t",
            description: "d",
            run: assembles_a_machine_without_ram,
        };
        let r = run_one(&s, &m, IommuMode::Strict);
        assert_eq!(r.status, Status::Fail, "{}", r.reason);
        assert!(
            r.reason.contains("does not assemble") && r.reason.contains("RAM"),
            "{}",
            r.reason
        );
    }

    fn assembles_lazy(t: &mut Trial<'_>) -> Result<String, Stop> {
        t.assemble(IommuMode::Lazy)?;
        Ok("lazy".into())
    }

    fn assembles_strict(t: &mut Trial<'_>) -> Result<String, Stop> {
        let a = t.assemble(IommuMode::Strict)?;
        Ok(format!("{:?}", a.options.iommu))
    }

    /// The runner's fresh assembly goes to the first scenario that asks
    /// for one in the runner's mode, and only to it; one in another mode
    /// leaves it.
    #[test]
    fn the_spare_assembly_goes_to_the_first_scenario_in_its_mode() {
        let m = Machine::reference().unwrap();
        let spare = Assembly::build(m.clone(), options(IommuMode::Strict)).unwrap();
        let at = spare.fabric.as_ref() as *const _;
        let mut spare = Some(spare);
        let lazy = Scenario {
            name: "l",
            description: "d",
            run: assembles_lazy,
        };
        let r = run_one_with(&lazy, &m, None, IommuMode::Strict, &mut spare);
        assert_eq!(r.status, Status::Pass, "{}", r.reason);
        assert!(
            spare.is_some(),
            "a lazy assembly must not take the strict spare"
        );
        let mut t = Trial {
            machine: &m,
            groups: None,
            mode: IommuMode::Strict,
            spare: spare.take(),
            assembly: None,
            route: Vec::new(),
            details: Vec::new(),
        };
        let a = t.assemble(IommuMode::Strict).ok().unwrap();
        assert!(core::ptr::eq(a.fabric.as_ref(), at), "the spare is used");
        assert!(t.spare.is_none());
        let b = t.assemble(IommuMode::Strict).ok().unwrap();
        assert!(!core::ptr::eq(b.fabric.as_ref(), at), "used once only");
        let strict = Scenario {
            name: "s",
            description: "d",
            run: assembles_strict,
        };
        assert_eq!(
            run_one_with(&strict, &m, None, IommuMode::Strict, &mut None).status,
            Status::Pass
        );
    }

    /// Every byte non-zero for every seed and length up to 64 KiB, and the
    /// pattern uses every non-zero byte value (a stuck bit shows).
    #[test]
    fn pattern_is_never_zero() {
        for seed in 0..=255u8 {
            let full = pattern(64 << 10, seed);
            if let Some(i) = full.iter().position(|b| *b == 0) {
                panic!("seed {seed}: zero byte at offset {i:#x}");
            }
            assert_eq!(pattern(0x3000, seed), full[..0x3000]);
        }
        let mut seen = [false; 256];
        for b in pattern(64 << 10, 7) {
            seen[b as usize] = true;
        }
        assert_eq!(
            seen.iter().filter(|x| **x).count(),
            255,
            "every non-zero value"
        );
    }
}
