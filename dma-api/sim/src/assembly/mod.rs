//! Machine assembly: from a [`Machine`] description to a running simulated
//! machine — one shared RAM, the DMA context, a swiotlb pool below 4 GiB, an
//! IOMMU with one DMA domain per IOMMU group, the root complex's view of it,
//! and one [`DmaDevice`] per endpoint whose backend is picked *by name* from
//! the [`Registry`].
//!
//! This is the only place in the workspace that names concrete backends
//! (RFC §2); everything above it talks to `dyn DmaBackend`. The
//! kernel analogue is boot-time setup: `swiotlb_init` (kernel/dma/swiotlb.c),
//! `iommu_setup_default_domain` per group with `iommu.strict` /
//! `iommu.passthrough` (drivers/iommu/iommu.c), `iommu_dma_init_domain`
//! (drivers/iommu/dma-iommu.c), and `dma_debug_init` when dma-debug is on.

mod decode;
mod error;
mod hotplug;
mod layout;
mod registry;

pub use error::AssemblyError;
pub use layout::{LayoutSizes, RamLayout};
pub use registry::{BackendEnv, BackendSpec, Concrete, DomainNeed, Registry};

use crate::fabric::Fabric;
use crate::machine::{ArchName, Machine};
use crate::ram::{SimCpu, SimRam};
use crate::RcIommu;
use dma_api::debug::DmaDebug;
use dma_api::device::{DmaContext, DmaDevice};
use dma_api::port::DmaBackend;
use dma_api::swiotlb::Swiotlb;
use dma_api::topology::{CpuVendor, DeviceId};
use dma_api::Bdf;
use dma_iommu::dma::{DmaDomain, SharedIommu};
use dma_iommu::domain::FqMode;
use dma_iommu::pgtable::{AmdV1, AnyFormat, ArmLpae, ArmStage, Granule, VtdSs};
use dma_iommu::{DomainId, DomainType, GroupId, Iommu, SimClock};
use dma_iommu::{PhysMem, SharedMem};
use dma_pci::topology::IommuGroups;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How devices behind an IOMMU-equipped host bridge are mapped by default.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum IommuMode {
    /// No IOMMU (`iommu=off`): every device uses the direct backend and the
    /// root complex does not translate.
    Off,
    /// Translating DMA domains with strict invalidation (`iommu.strict=1`).
    #[default]
    Strict,
    /// Translating DMA domains with a flush queue (`iommu.strict=0`);
    /// untrusted devices still get strict domains.
    Lazy,
}

impl IommuMode {
    /// The wire name (`--iommu` value, JSON): `off`, `strict` or `lazy`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Strict => "strict",
            Self::Lazy => "lazy",
        }
    }

    /// The registry name of the default backend under an IOMMU.
    pub fn backend_name(self) -> &'static str {
        match self {
            Self::Off => "direct",
            Self::Strict => "iommu",
            Self::Lazy => "iommu-lazy",
        }
    }
}

impl core::str::FromStr for IommuMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Self::Off),
            "strict" => Ok(Self::Strict),
            "lazy" => Ok(Self::Lazy),
            _ => Err(format!("unknown IOMMU mode {s:?} (off, strict, lazy)")),
        }
    }
}

/// Knobs of [`Assembly::build`].
#[derive(Clone, Debug)]
pub struct AssemblyOptions {
    /// Default mapping under an IOMMU.
    pub iommu: IommuMode,
    /// `swiotlb=force`: direct backends bounce every RAM mapping.
    pub force_bounce: bool,
    /// Wrap every backend in [`DmaDebug`].
    pub debug: bool,
    /// Per-device backend names overriding the default.
    pub backends: BTreeMap<Bdf, String>,
    /// Sizes of the regions carved from low RAM.
    pub sizes: LayoutSizes,
    /// CPUs (IOVA caches and flush-queue rings).
    pub cpus: usize,
    /// The backend registry.
    pub registry: Registry,
}

impl Default for AssemblyOptions {
    fn default() -> Self {
        Self {
            iommu: IommuMode::Strict,
            force_bounce: false,
            debug: false,
            backends: BTreeMap::new(),
            sizes: LayoutSizes::default(),
            cpus: 2,
            registry: Registry::standard(),
        }
    }
}

/// The domain of one IOMMU group.
#[derive(Clone, Debug)]
pub struct GroupDomain {
    /// The domain.
    pub id: DomainId,
    /// Its type after attaching (an untrusted group forces `Dma`).
    pub ty: DomainType,
    /// The DMA-API cookie of translating domains.
    pub dma: Option<Arc<DmaDomain>>,
    /// The group's functions.
    pub members: Vec<Bdf>,
}

/// The IOMMU of the machine and the root complex's view of it.
#[derive(Clone, Debug)]
pub struct IommuParts {
    /// The IOMMU (domains, IOTLB, flush queues).
    pub iommu: SharedIommu,
    /// Its clock (flush-queue timers).
    pub clock: SimClock,
    /// The root complex's translation (every requester registered; hot-plug
    /// registers and unregisters).
    pub rc: Arc<RcIommu>,
    /// Domains by group: the index in `Machine::iommu_groups()` of the
    /// machine as built; groups that appear by hot-add get ids after those.
    pub domains: BTreeMap<GroupId, GroupDomain>,
}

/// One endpoint's DMA interface.
#[derive(Clone)]
pub struct Endpoint {
    /// The function.
    pub bdf: Bdf,
    /// Its name in the machine file.
    pub name: Option<String>,
    /// The registry name of its backend.
    pub backend_name: String,
    /// Its IOMMU group.
    pub group: GroupId,
    /// The device drivers use.
    pub device: Arc<DmaDevice>,
    /// The backend with its concrete type.
    pub concrete: Concrete,
    /// The dma-debug wrapper, when assembled with `debug`.
    pub debug: Option<Arc<DmaDebug<Arc<dyn DmaBackend>>>>,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("bdf", &self.bdf)
            .field("name", &self.name)
            .field("backend", &self.backend_name)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// A whole simulated machine.
pub struct Assembly {
    /// The description it was built from.
    pub machine: Machine,
    /// The shared RAM (page tables, swiotlb, buffers).
    pub mem: SharedMem,
    /// Where the carved regions are.
    pub layout: RamLayout,
    /// The DMA context every device shares.
    pub ctx: Arc<DmaContext>,
    /// The swiotlb pool.
    pub swiotlb: Arc<Swiotlb>,
    /// The IOMMU, unless `--iommu off` or no host bridge has one.
    pub iommu: Option<IommuParts>,
    /// The PCIe fabric over the same topology (shared with the context, so
    /// ACS changes act on both), memory map, RAM and IOMMU.
    pub fabric: Arc<Fabric>,
    /// The options used.
    pub options: AssemblyOptions,
    endpoints: BTreeMap<Bdf, Endpoint>,
    /// The IOMMU group of every function (bridges too).
    groups: BTreeMap<Bdf, GroupId>,
    /// The id the next group that appears by hot-add gets.
    next_group: u32,
}

impl core::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Assembly")
            .field("machine", &self.machine.name)
            .field("layout", &self.layout)
            .field("iommu", &self.iommu.is_some())
            .field("endpoints", &self.endpoints.len())
            .finish()
    }
}

/// The page-table format of the machine's IOMMU: AMD v1 on AMD x86, VT-d
/// second stage on other x86, ARM LPAE stage 1 on arm64, VT-d second stage
/// as the generic radix format elsewhere.
pub fn iommu_format(machine: &Machine) -> Result<AnyFormat, AssemblyError> {
    let err = |e: dma_iommu::PtError| AssemblyError::Iommu {
        what: "page-table format".into(),
        message: e.to_string(),
    };
    Ok(match machine.arch {
        ArchName::X86_64 if machine.topology.cpu().vendor == CpuVendor::Amd => {
            AnyFormat::AmdV1(AmdV1::new(4).map_err(err)?)
        }
        ArchName::Arm64 => {
            AnyFormat::ArmLpae(ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).map_err(err)?)
        }
        _ => AnyFormat::VtdSs(VtdSs::new(4).map_err(err)?),
    })
}

fn dom_err(what: String) -> impl FnOnce(dma_iommu::DomainError) -> AssemblyError {
    move |e| AssemblyError::Iommu {
        what,
        message: e.to_string(),
    }
}

struct Plan {
    bdf: Bdf,
    name: Option<String>,
    backend: String,
    spec: BackendSpec,
    group: GroupId,
}

impl Assembly {
    /// Builds `machine` with default options.
    pub fn new(machine: Machine) -> Result<Self, AssemblyError> {
        Self::build(machine, AssemblyOptions::default())
    }

    /// Builds `machine`.
    pub fn build(machine: Machine, options: AssemblyOptions) -> Result<Self, AssemblyError> {
        let groups = machine.iommu_groups();
        Self::build_grouped(machine, &groups, options)
    }

    /// [`build`](Self::build) with `groups`, the machine's
    /// [`iommu_groups`](Machine::iommu_groups), computed once by a caller
    /// that assembles one machine several times (`unidma check`, the
    /// scenarios): on a machine of 65 536 functions the groups are a sixth
    /// of an assembly. Groups of another topology generation are computed
    /// again.
    pub fn build_grouped(
        machine: Machine,
        groups: &IommuGroups,
        options: AssemblyOptions,
    ) -> Result<Self, AssemblyError> {
        let computed;
        let groups = if groups.generation() == machine.topology.generation() {
            debug_assert_eq!(
                *groups,
                machine.iommu_groups(),
                "groups of another topology"
            );
            groups
        } else {
            computed = machine.iommu_groups();
            &computed
        };
        let arch =
            dma_arch::by_name(machine.arch.name()).map_err(|_| AssemblyError::UnknownArch {
                name: machine.arch.name().to_string(),
            })?;
        let layout = RamLayout::carve(&machine.memmap, options.sizes)?;
        let mem: SharedMem = Arc::new(RwLock::new(PhysMem::with_pool(
            layout.page_tables.0,
            layout.page_tables.1,
        )));
        // One BAR store for the CPU's view (the context's memory port) and
        // the devices' (the fabric).
        let bars: SharedMem = Arc::new(RwLock::new(PhysMem::with_pool(dma_api::PhysAddr::ZERO, 0)));
        let cpu = SimCpu::new(mem.clone(), bars.clone(), machine.memmap.clone());
        let ctx = machine.dma_context(arch, cpu.port(), layout.coherent)?;
        let swiotlb = Arc::new(Swiotlb::new(
            SimRam(mem.clone()).port(),
            layout.swiotlb.0,
            layout.swiotlb.1,
        )?);
        let topo = &machine.topology;
        let group_of = |id: DeviceId| GroupId(groups.group_of(id).unwrap_or(usize::MAX) as u32);
        let hb_iommu = |id: DeviceId| {
            topo.device(id)
                .and_then(|d| topo.host_bridge(d.host_bridge))
                .is_some_and(|hb| hb.iommu)
        };
        let iommu_on = options.iommu != IommuMode::Off;
        for hb in topo.host_bridges() {
            if !(iommu_on && hb.iommu) {
                decode::check_untranslated(hb, &machine.memmap)?;
            }
        }

        // Which backend each endpoint gets.
        for bdf in options.backends.keys() {
            let ok = topo
                .lookup(*bdf)
                .and_then(|id| topo.device(id))
                .is_some_and(|d| !d.port.is_bridge());
            if !ok {
                return Err(AssemblyError::UnknownDevice { bdf: *bdf });
            }
        }
        let mut plans = Vec::new();
        for (id, d) in topo.devices().filter(|(_, d)| !d.port.is_bridge()) {
            let translated = iommu_on && hb_iommu(id);
            let backend = options.backends.get(&d.bdf).cloned().unwrap_or_else(|| {
                if translated {
                    options.iommu.backend_name().to_string()
                } else {
                    "direct".to_string()
                }
            });
            let spec =
                *options
                    .registry
                    .get(&backend)
                    .ok_or_else(|| AssemblyError::UnknownBackend {
                        bdf: d.bdf,
                        name: backend.clone(),
                        known: options.registry.names(),
                    })?;
            if spec.need != DomainNeed::Passthrough && !translated {
                return Err(AssemblyError::NoIommu {
                    bdf: d.bdf,
                    backend,
                });
            }
            plans.push(Plan {
                bdf: d.bdf,
                name: d.name.clone(),
                backend,
                spec,
                group: group_of(id),
            });
        }

        // The IOMMU: one domain per group under an IOMMU host bridge.
        let iommu = if iommu_on && topo.host_bridges().iter().any(|hb| hb.iommu) {
            let clock = SimClock::new();
            let mut io = Iommu::with_mem(mem.clone(), clock.clone());
            io.set_fq_mode(FqMode::PerCpu {
                cpus: options.cpus.max(1),
            });
            let fmt = iommu_format(&machine)?;
            let mut pending = Vec::new();
            // The plans of each group, indexed once: linear in the devices.
            let mut plans_of: BTreeMap<GroupId, Vec<&Plan>> = BTreeMap::new();
            for p in &plans {
                plans_of.entry(p.group).or_default().push(p);
            }
            for (gi, members) in groups.groups().iter().enumerate() {
                let Some(&first) = members.first() else {
                    continue;
                };
                if !hb_iommu(first) {
                    continue;
                }
                let g = GroupId(gi as u32);
                let mut need: Option<(Bdf, &str, DomainNeed)> = None;
                for p in plans_of.get(&g).into_iter().flatten() {
                    match need {
                        None => need = Some((p.bdf, &p.backend, p.spec.need)),
                        Some((b, n, k)) if k != p.spec.need => {
                            return Err(AssemblyError::GroupConflict {
                                group: g.0,
                                a: (b, n.to_string()),
                                b: (p.bdf, p.backend.clone()),
                            })
                        }
                        Some(_) => {}
                    }
                }
                let need = need.map_or(
                    match options.iommu {
                        IommuMode::Lazy => DomainNeed::Lazy,
                        _ => DomainNeed::Strict,
                    },
                    |n| n.2,
                );
                let bdfs: Vec<Bdf> = members
                    .iter()
                    .filter_map(|id| topo.device(*id).map(|d| d.bdf))
                    .collect();
                let trusted = members
                    .iter()
                    .all(|id| topo.device(*id).is_some_and(|d| !d.untrusted));
                let d = io
                    .alloc_domain(need.domain_type(), fmt)
                    .map_err(dom_err(format!("domain for group {gi}")))?;
                io.attach_group(g, trusted, d)
                    .map_err(dom_err(format!("attach group {gi}")))?;
                let ty = io.domain_type(d).unwrap_or(need.domain_type());
                let hb = topo
                    .device(first)
                    .and_then(|x| topo.host_bridge(x.host_bridge))
                    .map(|hb| (hb.mmio.clone(), hb.dma_ranges.clone()));
                pending.push((g, d, ty, bdfs, hb));
            }
            let shared: SharedIommu = Arc::new(Mutex::new(io));
            let rc = RcIommu::new(shared.clone());
            for (g, _, _, bdfs, _) in &pending {
                for b in bdfs {
                    rc.add_requester(*b, *g);
                }
            }
            let mut domains = BTreeMap::new();
            for (g, d, ty, members, hb) in pending {
                let dma = if matches!(ty, DomainType::Dma | DomainType::DmaFq) {
                    let dd = DmaDomain::new(shared.clone(), d, options.cpus.max(1))?;
                    if let Some((mmio, ranges)) = &hb {
                        dd.reserve_pci_windows(mmio, ranges, machine.arch == ArchName::X86_64)?;
                    }
                    Some(dd)
                } else {
                    None
                };
                domains.insert(
                    g,
                    GroupDomain {
                        id: d,
                        ty,
                        dma,
                        members,
                    },
                );
            }
            Some(IommuParts {
                iommu: shared,
                clock,
                rc: Arc::new(rc),
                domains,
            })
        } else {
            None
        };

        // One DmaDevice per endpoint.
        let mut endpoints = BTreeMap::new();
        for p in plans {
            let domain = iommu
                .as_ref()
                .and_then(|io| io.domains.get(&p.group))
                .and_then(|gd| gd.dma.clone().map(|d| (p.group, d)));
            let env = BackendEnv {
                ctx: &ctx,
                swiotlb: &swiotlb,
                force_bounce: options.force_bounce,
                bdf: p.bdf,
                domain: if p.spec.need == DomainNeed::Passthrough {
                    None
                } else {
                    domain
                },
            };
            let concrete = (p.spec.build)(&env)?;
            let (backend, debug): (Arc<dyn DmaBackend>, _) = if options.debug {
                let d = Arc::new(DmaDebug::new(concrete.as_dyn()));
                (d.clone(), Some(d))
            } else {
                (concrete.as_dyn(), None)
            };
            let device = Arc::new(DmaDevice::new(ctx.clone(), p.bdf, backend)?);
            endpoints.insert(
                p.bdf,
                Endpoint {
                    bdf: p.bdf,
                    name: p.name,
                    backend_name: p.backend,
                    group: p.group,
                    device,
                    concrete,
                    debug,
                },
            );
        }
        let mut fabric = Fabric::new(ctx.topology.clone(), machine.memmap.clone(), mem.clone())
            .with_bar_store(bars);
        if let Some(io) = &iommu {
            fabric = fabric.with_iommu(io.rc.clone());
        }
        let group_ids = topo
            .devices()
            .map(|(id, d)| (d.bdf, group_of(id)))
            .collect();
        let next_group = groups.groups().len() as u32;
        Ok(Self {
            fabric: Arc::new(fabric),
            machine,
            mem,
            layout,
            ctx,
            swiotlb,
            iommu,
            options,
            endpoints,
            groups: group_ids,
            next_group,
        })
    }

    /// Every endpoint, in BDF order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> + '_ {
        self.endpoints.values()
    }

    /// The endpoint at `bdf`.
    pub fn endpoint(&self, bdf: Bdf) -> Option<&Endpoint> {
        self.endpoints.get(&bdf)
    }

    /// The endpoint named by a BDF (`03:00.0`) or its machine-file name.
    pub fn find(&self, spec: &str) -> Option<&Endpoint> {
        if let Ok(b) = spec.parse::<Bdf>() {
            if let Some(e) = self.endpoints.get(&b) {
                return Some(e);
            }
        }
        self.endpoints
            .values()
            .find(|e| e.name.as_deref() == Some(spec))
    }

    /// The DMA device at `bdf`.
    pub fn device(&self, bdf: Bdf) -> Option<&Arc<DmaDevice>> {
        self.endpoints.get(&bdf).map(|e| &e.device)
    }

    /// The CPU's view of every memory kind (RAM, stolen RAM, BAR backing):
    /// the context's memory port, what `map_or_fallback` copies peer bytes
    /// through.
    pub fn peer_memory(&self) -> dma_api::CpuMem {
        self.ctx.mem.clone()
    }

    /// Advances the IOMMU's clock by `d` and runs the expired flush-queue
    /// timers (`fq_flush_timeout`). Returns how many domains were flushed.
    pub fn advance(&self, d: Duration) -> Result<usize, AssemblyError> {
        let Some(io) = &self.iommu else {
            return Ok(0);
        };
        io.clock.advance(d);
        io.iommu
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .poll()
            .map_err(dom_err("flush-queue timer".into()))
    }
}
