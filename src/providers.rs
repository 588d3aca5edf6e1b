//! Which functions are P2P providers and which are clients: one definition
//! for every command (`report`, `topo`, `p2p`) and every scenario, so they
//! cannot disagree.
//!
//! Peer memory is only what a provider registered (Linux
//! `pci_p2pdma_add_resource`; a machine file's `p2pmem = [...]` entries,
//! loaded into [`Machine::p2pmem`]). A machine read from sysfs carries no
//! registrations (sysfs shows a provider's `p2pmem/` sizes, not which BAR
//! ranges it registered), so for it the commands fall back to *candidate*
//! providers: endpoints with a memory BAR, clearly labelled as such.
//! Mapping always needs a registration; the scenarios use
//! [`Basis::Registered`] whatever the source.

use dma_api::topology::{Device, DeviceId};
use dma_sim::machine::Machine;

/// PCI class code base of bridges (host, PCI-PCI, …): never a DMA master.
const CLASS_BRIDGE: u32 = 0x06;

/// Why `d` is not an endpoint (`a bridge (root_port)`, `a bridge-class
/// function (class 060000)`), or `None` if it is one.
pub fn not_endpoint(d: &Device) -> Option<String> {
    if d.port.is_bridge() {
        Some(format!("a bridge ({})", d.port))
    } else if d.class >> 16 == CLASS_BRIDGE {
        Some(format!("a bridge-class function (class {:06x})", d.class))
    } else {
        None
    }
}

/// True for an endpoint: neither a bridge or port nor a bridge-class
/// function (a host bridge's own function). Endpoints are the P2P clients
/// and the DMA masters; they need no BARs.
pub fn is_endpoint(d: &Device) -> bool {
    not_endpoint(d).is_none()
}

/// What the provider set is made of.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Basis {
    /// The machine's registered p2pmem providers ([`Machine::p2pmem`]).
    #[default]
    Registered,
    /// Endpoints with a memory BAR: for sources that do not show
    /// registrations (`--sysfs`).
    Candidates,
}

impl Basis {
    /// `registered` or `candidates` (the report's `providers` field).
    pub fn name(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Candidates => "candidates",
        }
    }
}

/// The providers of a machine on one basis, in BDF order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProviderSet {
    /// What the set is made of.
    pub basis: Basis,
    /// The providers, in BDF order.
    pub devices: Vec<DeviceId>,
}

impl ProviderSet {
    /// True if `id` is a provider.
    pub fn contains(&self, id: DeviceId) -> bool {
        self.devices.contains(&id)
    }

    /// True if there is no provider.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

/// True if `d` has a memory (not I/O) BAR.
pub fn has_memory_bar(d: &Device) -> bool {
    d.bars.iter().any(|b| b.is_mem())
}

/// The provider set of `m` on `basis`: the registered p2pmem providers, or
/// the endpoints with a memory BAR; BDF order either way.
pub fn provider_set(m: &Machine, basis: Basis) -> ProviderSet {
    let t = &m.topology;
    let mut v: Vec<(dma_api::Bdf, DeviceId)> = match basis {
        Basis::Registered => m
            .p2pmem
            .providers()
            .filter_map(|id| t.device(id).map(|d| (d.bdf, id)))
            .collect(),
        Basis::Candidates => t
            .devices()
            .filter(|(_, d)| is_endpoint(d) && has_memory_bar(d))
            .map(|(id, d)| (d.bdf, id))
            .collect(),
    };
    v.sort_by_key(|(bdf, _)| *bdf);
    ProviderSet {
        basis,
        devices: v.into_iter().map(|(_, id)| id).collect(),
    }
}

/// The registered providers in the order a mapping user should try them:
/// published first (what `pci_p2pmem_find` hands out), then the
/// unpublished ones; BDF order within each.
pub fn registered_for_mapping(m: &Machine) -> Vec<DeviceId> {
    let mut v = provider_set(m, Basis::Registered).devices;
    v.sort_by_key(|id| !m.p2pmem.stats(*id).is_some_and(|s| s.published));
    v
}

/// The clients: every endpoint, in BDF order.
pub fn clients(m: &Machine) -> Vec<DeviceId> {
    m.topology
        .devices()
        .filter(|(_, d)| is_endpoint(d))
        .map(|(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_server_sets() {
        let m = Machine::reference().unwrap();
        let bdfs = |v: &[DeviceId]| -> Vec<String> {
            v.iter()
                .map(|id| m.topology.device(*id).unwrap().bdf.to_string())
                .collect()
        };
        let r = provider_set(&m, Basis::Registered);
        assert_eq!(
            bdfs(&r.devices),
            [
                "0000:00:08.0",
                "0000:03:00.0",
                "0000:05:00.0",
                "0000:06:00.0"
            ]
        );
        let c = provider_set(&m, Basis::Candidates);
        assert!(c.devices.len() > r.devices.len());
        assert!(c
            .devices
            .iter()
            .all(|id| is_endpoint(m.topology.device(*id).unwrap())));
        let mut sorted = bdfs(&c.devices);
        sorted.sort();
        assert_eq!(sorted, bdfs(&c.devices));
        // Published first (nvme0), then the rest in BDF order.
        assert_eq!(
            bdfs(&registered_for_mapping(&m)),
            [
                "0000:03:00.0",
                "0000:00:08.0",
                "0000:05:00.0",
                "0000:06:00.0"
            ]
        );
        assert!(clients(&m)
            .iter()
            .all(|id| is_endpoint(m.topology.device(*id).unwrap())));
    }
}
