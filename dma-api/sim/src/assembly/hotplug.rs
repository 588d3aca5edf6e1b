//! Hot-plug on a running machine: [`Assembly::hot_add`] and
//! [`Assembly::hot_remove`].
//!
//! The kernel analogue is `pci_bus_add_device` → `iommu_probe_device` (the
//! new function joins its IOMMU group, computed by `pci_device_group`, and
//! the group's default domain, allocated if the group is new) → driver probe
//! (`DmaDevice`), and `pci_stop_and_remove_bus_device` → the driver unbinds
//! (here: refused while mappings are live) → `iommu_release_device` (the
//! context entry is cleared; an emptied group loses its domain) → the
//! device's resources leave the resource tree (memory-map BAR ranges,
//! p2pmem registrations). Every step works on the assembly's shared state
//! (`ctx`: topology, memory map, p2pmem; the IOMMU and its root-complex
//! view), so the dispatcher and the fabric see the change at once.
//! `Assembly::machine` stays the description the machine was built from.

use super::{
    dom_err, iommu_format, Assembly, AssemblyError, BackendEnv, BackendSpec, DomainNeed, Endpoint,
    GroupDomain, IommuMode,
};
use crate::machine::ArchName;
use dma_api::debug::DmaDebug;
use dma_api::device::DmaDevice;
use dma_api::memmap::{MemRange, RangeKind};
use dma_api::port::DmaBackend;
use dma_api::topology::{DeviceId, DeviceRecord, IommuGroups, TopologyError};
use dma_api::types::ProviderId;
use dma_api::Bdf;
use dma_iommu::dma::DmaDomain;
use dma_iommu::{DomainType, GroupId};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What hot-add needs to know about the new function, read under one
/// topology lock.
struct NewFunction {
    bars: Vec<MemRange>,
    bridge: bool,
    /// Its host bridge has an IOMMU.
    hb_iommu: bool,
    /// The other functions of its IOMMU group (`pci_device_group`).
    group_mates: Vec<Bdf>,
    /// Every function of the group is trusted.
    group_trusted: bool,
    /// Its host bridge's MMIO windows and dma-ranges (IOVA reservations).
    hb_windows: Option<(dma_api::WindowMap, dma_api::WindowMap)>,
}

/// Can a device whose backend needs `need` join a group whose domain is `ty`?
/// (`trusted` false: the domain code forced a lazy request strict.)
fn compatible(need: DomainNeed, ty: DomainType, trusted: bool) -> bool {
    match need {
        DomainNeed::Passthrough => ty == DomainType::Identity,
        DomainNeed::Strict => ty == DomainType::Dma,
        DomainNeed::Lazy => ty == DomainType::DmaFq || (ty == DomainType::Dma && !trusted),
    }
}

impl Assembly {
    /// Hot-adds one function (its parent must be present): into the shared
    /// topology (bumping its generation, so cached P2P verdicts are
    /// recomputed), its memory BARs into the memory map; then, behind an
    /// IOMMU, into its IOMMU group (computed like Linux `pci_device_group`
    /// on the topology with the function in it) — registered with the root
    /// complex's IOMMU view and attached to the group's domain, one
    /// allocated (and its PCI windows reserved) for a new group; finally,
    /// unless it is a bridge, its [`DmaDevice`] with the backend
    /// [`AssemblyOptions::backends`](super::AssemblyOptions) names (else the
    /// mode's default), as at build time.
    ///
    /// Until this returns, the function has no context entry and its DMA
    /// faults (`RcFaultReason::NoContext`). On any error nothing is left
    /// behind. Returns the function's BDF; [`Assembly::endpoint`] gives its
    /// device.
    pub fn hot_add(&mut self, record: DeviceRecord) -> Result<Bdf, AssemblyError> {
        let bdf = record.bdf;
        let id = self
            .ctx
            .topology
            .write()
            .hot_add(record)
            .map_err(AssemblyError::Topology)?;
        match self.attach(bdf, id) {
            Ok(()) => Ok(bdf),
            Err(e) => {
                self.teardown(&[(id, bdf)]);
                Err(e)
            }
        }
    }

    /// Hot-removes the function at `bdf` and everything below it. Refused
    /// (nothing changes) while one of them has live mappings
    /// ([`AssemblyError::Busy`]) or peers hold p2pmem allocated from its
    /// registered ranges ([`AssemblyError::P2pMemInUse`]). Otherwise each is
    /// unregistered everywhere: its IOMMU context entry (its DMA then faults
    /// `NoContext`), its group membership (an emptied group is detached and
    /// loses its domain, so a function re-added there gets a fresh one), its
    /// p2pmem registrations and owner policy, its memory-map ranges (BARs and
    /// carve-outs), its `DmaDevice`, and the topology (bumping the
    /// generation). Returns the removed functions, `bdf` first.
    pub fn hot_remove(&mut self, bdf: Bdf) -> Result<Vec<Bdf>, AssemblyError> {
        let gone: Vec<(DeviceId, Bdf)> =
            {
                let topo = self.ctx.topology.read();
                let id = topo.lookup(bdf).ok_or(AssemblyError::Topology(
                    TopologyError::UnknownDevice { bdf },
                ))?;
                let mut out = Vec::new();
                let mut stack = vec![id];
                while let Some(x) = stack.pop() {
                    if let Some(d) = topo.device(x) {
                        out.push((x, d.bdf));
                        stack.extend(d.children.iter().rev().copied());
                    }
                }
                out
            };
        for (id, b) in &gone {
            if let Some(ep) = self.endpoints.get(b) {
                let d = &ep.device;
                let (singles, tables, coherent) =
                    (d.live_singles(), d.live_tables(), d.live_coherent());
                if singles + tables + coherent > 0 {
                    return Err(AssemblyError::Busy {
                        bdf: *b,
                        singles,
                        tables,
                        coherent,
                    });
                }
            }
            if let Some(st) = self.ctx.p2pmem.read().stats(*id) {
                let bytes = st.size.saturating_sub(st.available);
                if bytes > 0 {
                    return Err(AssemblyError::P2pMemInUse { bdf: *b, bytes });
                }
            }
        }
        self.teardown(&gone);
        Ok(gone.into_iter().map(|(_, b)| b).collect())
    }

    fn new_function(&self, id: DeviceId) -> Result<NewFunction, AssemblyError> {
        let topo = self.ctx.topology.read();
        let d = topo
            .device(id)
            .ok_or(AssemblyError::Topology(TopologyError::UnknownId { id }))?;
        let hb = topo.host_bridge(d.host_bridge);
        let groups = IommuGroups::compute(&topo);
        let mates: Vec<DeviceId> = groups
            .group_of(id)
            .and_then(|g| groups.groups().get(g))
            .cloned()
            .unwrap_or_default();
        Ok(NewFunction {
            bars: d
                .bars
                .iter()
                .filter(|b| b.is_mem())
                .map(|b| MemRange {
                    start: b.addr,
                    size: b.size,
                    kind: RangeKind::Bar {
                        provider: id.provider_id(),
                        bar: b.index,
                    },
                })
                .collect(),
            bridge: d.port.is_bridge(),
            hb_iommu: hb.is_some_and(|h| h.iommu),
            group_mates: mates
                .iter()
                .filter(|m| **m != id)
                .filter_map(|m| topo.device(*m).map(|x| x.bdf))
                .collect(),
            group_trusted: mates
                .iter()
                .all(|m| topo.device(*m).is_some_and(|x| !x.untrusted)),
            hb_windows: hb.map(|h| (h.mmio.clone(), h.dma_ranges.clone())),
        })
    }

    /// Everything of [`hot_add`](Self::hot_add) after the topology.
    fn attach(&mut self, bdf: Bdf, id: DeviceId) -> Result<(), AssemblyError> {
        let f = self.new_function(id)?;
        {
            let mut mm = self.ctx.memmap.write();
            for r in &f.bars {
                mm.insert(*r).map_err(AssemblyError::MemoryMap)?;
            }
        }

        // Its group: the one its group mates are in, or a new one.
        let existing: BTreeSet<GroupId> = f
            .group_mates
            .iter()
            .filter_map(|b| self.groups.get(b).copied())
            .collect();
        let group = match existing.len() {
            0 => {
                let g = GroupId(self.next_group);
                self.next_group += 1;
                g
            }
            1 => existing.first().copied().unwrap_or(GroupId(u32::MAX)),
            _ => {
                return Err(AssemblyError::GroupMerge {
                    bdf,
                    groups: existing.iter().map(|g| g.0).collect(),
                })
            }
        };
        self.groups.insert(bdf, group);

        // Its backend (endpoints only), as at build time.
        let translated = self.iommu.is_some() && f.hb_iommu;
        let plan: Option<(String, BackendSpec)> = if f.bridge {
            None
        } else {
            let backend = self.options.backends.get(&bdf).cloned().unwrap_or_else(|| {
                if translated {
                    self.options.iommu.backend_name().to_string()
                } else {
                    "direct".to_string()
                }
            });
            let spec = *self.options.registry.get(&backend).ok_or_else(|| {
                AssemblyError::UnknownBackend {
                    bdf,
                    name: backend.clone(),
                    known: self.options.registry.names(),
                }
            })?;
            if spec.need != DomainNeed::Passthrough && !translated {
                return Err(AssemblyError::NoIommu { bdf, backend });
            }
            Some((backend, spec))
        };

        // The IOMMU: attach the group to its domain (a new one for a new
        // group), then give the function its context entry.
        if translated {
            self.attach_domain(bdf, group, &f, plan.as_ref())?;
        }

        // Its DmaDevice.
        let Some((backend_name, spec)) = plan else {
            return Ok(());
        };
        let domain = self
            .iommu
            .as_ref()
            .and_then(|io| io.domains.get(&group))
            .and_then(|gd| gd.dma.clone().map(|d| (group, d)));
        let env = BackendEnv {
            ctx: &self.ctx,
            swiotlb: &self.swiotlb,
            force_bounce: self.options.force_bounce,
            bdf,
            domain: if spec.need == DomainNeed::Passthrough {
                None
            } else {
                domain
            },
        };
        let concrete = (spec.build)(&env)?;
        let (backend, debug): (Arc<dyn DmaBackend>, _) = if self.options.debug {
            let d = Arc::new(DmaDebug::new(concrete.as_dyn()));
            (d.clone(), Some(d))
        } else {
            (concrete.as_dyn(), None)
        };
        let device = Arc::new(DmaDevice::new(self.ctx.clone(), bdf, backend)?);
        let name = {
            let topo = self.ctx.topology.read();
            topo.device(id).and_then(|d| d.name.clone())
        };
        self.endpoints.insert(
            bdf,
            Endpoint {
                bdf,
                name,
                backend_name,
                group,
                device,
                concrete,
                debug,
            },
        );
        Ok(())
    }

    /// Attaches `group` (with `bdf` in it) to its domain and registers `bdf`
    /// with the root complex's IOMMU view.
    fn attach_domain(
        &mut self,
        bdf: Bdf,
        group: GroupId,
        f: &NewFunction,
        plan: Option<&(String, BackendSpec)>,
    ) -> Result<(), AssemblyError> {
        let x86 = self.machine.arch == ArchName::X86_64;
        let cpus = self.options.cpus.max(1);
        let default_need = match self.options.iommu {
            IommuMode::Lazy => DomainNeed::Lazy,
            _ => DomainNeed::Strict,
        };
        let fmt = iommu_format(&self.machine)?;
        // Who else asked for what in this group (for a conflict message).
        let other = self
            .endpoints
            .values()
            .find(|e| e.group == group)
            .map(|e| (e.bdf, e.backend_name.clone()));
        let Some(io) = self.iommu.as_mut() else {
            return Ok(());
        };
        if let Some(gd) = io.domains.get_mut(&group) {
            if let Some((name, spec)) = plan {
                if !compatible(spec.need, gd.ty, f.group_trusted) {
                    let a = other.unwrap_or_else(|| {
                        let first = gd.members.first().copied().unwrap_or(bdf);
                        (first, format!("{:?} domain", gd.ty))
                    });
                    return Err(AssemblyError::GroupConflict {
                        group: group.0,
                        a,
                        b: (bdf, name.clone()),
                    });
                }
            }
            let d = gd.id;
            let ty = {
                let mut g = io
                    .iommu
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                g.attach_group(group, f.group_trusted, d)
                    .map_err(dom_err(format!("attach group {} (hot-add {bdf})", group.0)))?;
                g.domain_type(d).unwrap_or(gd.ty)
            };
            gd.ty = ty;
            if let Err(i) = gd.members.binary_search(&bdf) {
                gd.members.insert(i, bdf);
            }
        } else {
            let need = plan.map_or(default_need, |(_, s)| s.need);
            let (d, ty) = {
                let mut g = io
                    .iommu
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let d = g
                    .alloc_domain(need.domain_type(), fmt)
                    .map_err(dom_err(format!(
                        "domain for group {} (hot-add {bdf})",
                        group.0
                    )))?;
                g.attach_group(group, f.group_trusted, d)
                    .map_err(dom_err(format!("attach group {} (hot-add {bdf})", group.0)))?;
                (d, g.domain_type(d).unwrap_or(need.domain_type()))
            };
            // From here on the group is attached: teardown detaches it.
            io.domains.insert(
                group,
                GroupDomain {
                    id: d,
                    ty,
                    dma: None,
                    members: vec![bdf],
                },
            );
            if matches!(ty, DomainType::Dma | DomainType::DmaFq) {
                let dd = DmaDomain::new(io.iommu.clone(), d, cpus)?;
                if let Some((mmio, ranges)) = &f.hb_windows {
                    dd.reserve_pci_windows(mmio, ranges, x86)?;
                }
                if let Some(gd) = io.domains.get_mut(&group) {
                    gd.dma = Some(dd);
                }
            }
        }
        io.rc.add_requester(bdf, group);
        Ok(())
    }

    /// Unregisters `gone` everywhere (whatever part of it exists): the
    /// topology (the subtree of the first), memory-map ranges, p2pmem,
    /// owner policies, endpoints, group membership and context entries.
    fn teardown(&mut self, gone: &[(DeviceId, Bdf)]) {
        if let Some(&(first, _)) = gone.first() {
            let mut topo = self.ctx.topology.write();
            if topo.device(first).is_some() {
                // Present (checked): cannot fail.
                let _ = topo.hot_remove(first);
            }
        }
        let providers: BTreeSet<ProviderId> = gone.iter().map(|(id, _)| id.provider_id()).collect();
        self.ctx.memmap.write().remove_where(|k| match k {
            RangeKind::Ram => false,
            RangeKind::Bar { provider, .. } => providers.contains(provider),
            RangeKind::StolenRam { owner } | RangeKind::DevicePrivate { owner } => {
                providers.contains(owner)
            }
        });
        {
            let mut reg = self.ctx.p2pmem.write();
            for (id, _) in gone {
                reg.remove_device(*id);
            }
        }
        {
            let mut pol = self.ctx.policies.write();
            for p in &providers {
                pol.remove(p);
            }
        }
        for (_, b) in gone {
            self.endpoints.remove(b);
            let group = self.groups.remove(b);
            let Some(io) = self.iommu.as_mut() else {
                continue;
            };
            io.rc.remove_requester(*b);
            let Some(g) = group else { continue };
            let emptied = io.domains.get_mut(&g).is_some_and(|gd| {
                gd.members.retain(|m| m != b);
                gd.members.is_empty()
            });
            if emptied {
                io.iommu
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .detach_group(g);
                io.domains.remove(&g);
            }
        }
    }
}
