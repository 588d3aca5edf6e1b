//! IOMMU groups with Linux `pci_device_group` semantics
//! (drivers/iommu/iommu.c, drivers/pci/pci.c `pci_acs_enabled` /
//! `pci_acs_path_enabled`, drivers/pci/search.c `pci_for_each_dma_alias`).
//!
//! For each function:
//! 1. DMA aliases: walking up, a PCIe-to-PCI bridge (or a conventional PCI
//!    bridge) takes over the requester ID, so the function joins the topmost
//!    such bridge's group.
//! 2. From there, walking up bus by bus: while the bridge above is not
//!    isolated all the way to the root (`pci_acs_path_enabled(bridge, NULL,
//!    SV|RR|CR|UF)` fails), the bridge becomes the representative.
//! 3. Functions of one multi-function slot that are not ACS-isolated share a
//!    group (`get_pci_function_alias_group`).
//!
//! Linux builds groups incrementally in probe order; the union of those
//! relations is order-independent, which is what we compute (union-find).
//! Quirk tables (`pci_dev_specific_acs_enabled`, DMA alias quirks) are not
//! modelled.

use super::acs::Acs;
use super::device::{DeviceId, PortType};
use super::Topology;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// drivers/pci/pci.c `pci_acs_enabled(pdev, SV|RR|CR|UF)` (without quirks).
pub fn acs_isolated(topo: &Topology, id: DeviceId) -> bool {
    let Some(d) = topo.device(id) else {
        return false;
    };
    if !d.port.is_pcie() {
        return false;
    }
    let flags = |d: &super::Device| d.acs.is_some_and(|a| a.flags_enabled(Acs::REQ_ISOLATION));
    match d.port {
        PortType::PcieToPciBridge | PortType::PciToPcieBridge => false,
        PortType::SwitchDownstream | PortType::RootPort => flags(d),
        PortType::Endpoint
        | PortType::SwitchUpstream
        | PortType::LegacyEndpoint
        | PortType::RcEndpoint => !d.multifunction || flags(d),
        PortType::PciBridge | PortType::PciDevice => false,
    }
}

/// drivers/pci/pci.c `pci_acs_path_enabled(start, NULL, SV|RR|CR|UF)`:
/// every function from `start` up to the root bus is isolated.
pub fn acs_path_isolated(topo: &Topology, start: DeviceId) -> bool {
    let mut cur = Some(start);
    while let Some(id) = cur {
        if !acs_isolated(topo, id) {
            return false;
        }
        cur = topo.upstream(id);
    }
    true
}

/// The topmost DMA alias of `id` (drivers/pci/search.c
/// `pci_for_each_dma_alias`): PCIe-to-PCI bridges and conventional bridges
/// on the way up own the requester ID; root/switch ports do not.
pub fn dma_alias_root(topo: &Topology, id: DeviceId) -> DeviceId {
    let mut rep = id;
    let mut cur = topo.upstream(id);
    while let Some(b) = cur {
        if let Some(bd) = topo.device(b) {
            match bd.port {
                PortType::RootPort | PortType::SwitchUpstream | PortType::SwitchDownstream => {}
                _ => rep = b,
            }
        }
        cur = topo.upstream(b);
    }
    rep
}

/// The representative `pci_device_group` ends at for `id`: its topmost DMA
/// alias, then the topmost bridge above it whose path to the root is not
/// isolated.
pub fn group_representative(topo: &Topology, id: DeviceId) -> DeviceId {
    let mut rep = dma_alias_root(topo, id);
    let mut cur = topo.upstream(rep);
    while let Some(b) = cur {
        if acs_path_isolated(topo, b) {
            break;
        }
        rep = b;
        cur = topo.upstream(b);
    }
    rep
}

/// The partition of all functions into IOMMU groups.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IommuGroups {
    /// Groups, each sorted by BDF; groups ordered by their first BDF.
    groups: Vec<Vec<DeviceId>>,
    /// Group number by arena index ([`ABSENT`] where no device is), as
    /// long as the highest present index: equal partitions compare equal.
    of: Vec<usize>,
    generation: u64,
}

/// No device at this arena index.
const ABSENT: usize = usize::MAX;

/// `value` by `id.index()`, [`ABSENT`] elsewhere, up to the highest id.
fn by_index(pairs: impl Iterator<Item = (DeviceId, usize)> + Clone) -> Vec<usize> {
    let len = pairs
        .clone()
        .map(|(id, _)| id.index() + 1)
        .max()
        .unwrap_or(0);
    let mut v = alloc::vec![ABSENT; len];
    for (id, value) in pairs {
        v[id.index()] = value;
    }
    v
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl IommuGroups {
    /// Computes the groups of `topo`.
    pub fn compute(topo: &Topology) -> Self {
        let ids: Vec<DeviceId> = topo.devices().map(|(id, _)| id).collect();
        // Position in `ids` by arena index (ids are dense arena indices;
        // `ABSENT` for a removed slot): a lookup per union, not a search.
        let slot = by_index(ids.iter().enumerate().map(|(i, &d)| (d, i)));
        let pos = |id: DeviceId| slot.get(id.index()).copied().filter(|&i| i != ABSENT);
        let mut parent: Vec<usize> = (0..ids.len()).collect();
        let union = |parent: &mut Vec<usize>, a: DeviceId, b: DeviceId| {
            if let (Some(x), Some(y)) = (pos(a), pos(b)) {
                let (rx, ry) = (find(parent, x), find(parent, y));
                if rx != ry {
                    parent[rx.max(ry)] = rx.min(ry);
                }
            }
        };
        for &id in &ids {
            let rep = group_representative(topo, id);
            union(&mut parent, id, rep);
            // Non-isolated functions of one slot share a group.
            let Some(rd) = topo.device(rep) else { continue };
            if rd.multifunction && !acs_isolated(topo, rep) {
                // drivers/iommu/iommu.c `get_pci_function_alias_group`: the
                // other functions of the same bus and slot, looked up by
                // BDF (at most 8), not by scanning the bus, so the groups
                // of a machine cost O(n log n) however flat it is.
                for f in 0..8u8 {
                    let Some(s) = rd.bdf.with_func(f).and_then(|b| topo.lookup(b)) else {
                        continue;
                    };
                    if s == rep {
                        continue;
                    }
                    if let Some(sd) = topo.device(s) {
                        if sd.parent == rd.parent
                            && sd.host_bridge == rd.host_bridge
                            && !acs_isolated(topo, s)
                        {
                            union(&mut parent, rep, s);
                        }
                    }
                }
            }
        }
        let mut by_root: BTreeMap<usize, Vec<DeviceId>> = BTreeMap::new();
        for (i, &id) in ids.iter().enumerate() {
            let r = find(&mut parent, i);
            by_root.entry(r).or_default().push(id);
        }
        // `ids` is in BDF order and roots are minimal indices, so groups come
        // out ordered by first BDF with members in BDF order.
        let groups: Vec<Vec<DeviceId>> = by_root.into_values().collect();
        let of = by_index(
            groups
                .iter()
                .enumerate()
                .flat_map(|(g, members)| members.iter().map(move |&m| (m, g))),
        );
        Self {
            groups,
            of,
            generation: topo.generation(),
        }
    }

    /// The groups.
    pub fn groups(&self) -> &[Vec<DeviceId>] {
        &self.groups
    }

    /// The group number of `id`.
    pub fn group_of(&self, id: DeviceId) -> Option<usize> {
        self.of.get(id.index()).copied().filter(|&g| g != ABSENT)
    }

    /// The topology generation these groups were computed at.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}
