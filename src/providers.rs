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

/// Why a function is not in a provider set: a typed refusal, so `p2p`
/// names what is wrong instead of giving verdicts for a function that can
/// never provide peer memory.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NotProvider {
    /// A bridge, port or bridge-class function: it can never be a provider
    /// (`pci_p2pdma_add_resource` registers an endpoint's BAR).
    NotEndpoint {
        /// The function (`0000:02:00.0 (switch-dp0)`).
        device: String,
        /// What it is ([`not_endpoint`]).
        what: String,
    },
    /// An endpoint without a memory BAR: it has nothing to register.
    NoMemoryBar {
        /// The function.
        device: String,
    },
    /// An endpoint whose memory BARs nobody registered (registered basis).
    Unregistered {
        /// The function.
        device: String,
        /// Its memory BARs (`BAR2 (64M)`).
        bars: Vec<String>,
    },
}

impl std::fmt::Display for NotProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotEndpoint { device, what } => write!(
                f,
                "provider {device} cannot be a P2P provider: it is {what}, not an endpoint"
            ),
            Self::NoMemoryBar { device } => write!(
                f,
                "provider {device} cannot be a P2P provider: it has no memory BAR to register"
            ),
            Self::Unregistered { device, bars } => {
                let bars = match bars.as_slice() {
                    [] => String::new(),
                    [one] => format!("its memory {one} is not registered"),
                    [rest @ .., last] => format!(
                        "its memory {} and {last} are not registered",
                        rest.join(", ")
                    ),
                };
                write!(
                    f,
                    "provider {device} registers no p2pmem, so it is not a P2P provider: {bars}"
                )
            }
        }
    }
}

/// Why `d` is not a provider on `basis` (its label `device`), or `None`
/// if it may be one (an endpoint with a memory BAR, registered when the
/// basis is [`Basis::Registered`] and `registered` says so).
pub fn why_not_provider(
    d: &Device,
    device: String,
    basis: Basis,
    registered: bool,
) -> Option<NotProvider> {
    if let Some(what) = not_endpoint(d) {
        return Some(NotProvider::NotEndpoint { device, what });
    }
    if !has_memory_bar(d) {
        return Some(NotProvider::NoMemoryBar { device });
    }
    if basis == Basis::Registered && !registered {
        let bars = d
            .bars
            .iter()
            .filter(|b| b.is_mem())
            .map(|b| format!("BAR{} ({})", b.index, size_text(b.size)))
            .collect();
        return Some(NotProvider::Unregistered { device, bars });
    }
    None
}

/// Human size of a BAR: 64M, 16K.
fn size_text(v: u64) -> String {
    for (s, u) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if v >= 1 << u && v.is_multiple_of(1 << u) {
            return format!("{}{s}", v >> u);
        }
    }
    v.to_string()
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
