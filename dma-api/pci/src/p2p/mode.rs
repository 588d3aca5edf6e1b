//! Which oracle answers: Linux's (what the kernel decides, what the mapping
//! dispatcher follows) or the hardware's (what PCIe routing does, per
//! access). Reports and analysis tools take either; mapping takes Linux's.

use super::hardware::{hardware_route, AccessRoute};
use super::oracle::calc_map_type_and_dist;
use super::reason::Reason;
use super::Route;
use crate::access::Access;
use crate::topology::{DeviceId, Topology, TopologyError};
use core::fmt;

/// An oracle mode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Oracle {
    /// drivers/pci/p2pdma.c `calc_map_type_and_dist`: ACS redirect anywhere
    /// below the common bridge, either side, sends both accesses through
    /// the host bridge ([`calc_map_type_and_dist`]).
    #[default]
    Linux,
    /// PCIe routing: request redirect at each request's ingress port,
    /// completion redirect at the completer's port, per access
    /// ([`super::hardware`]).
    Hardware,
}

impl Oracle {
    /// Both modes, Linux first.
    pub const ALL: [Oracle; 2] = [Oracle::Linux, Oracle::Hardware];

    /// Stable name for text and JSON: `linux` or `hardware`.
    pub const fn name(self) -> &'static str {
        match self {
            Oracle::Linux => "linux",
            Oracle::Hardware => "hardware",
        }
    }

    /// The mode named `s` (`linux`, `hardware`), or `None`.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == s)
    }

    /// The pair as one [`Route`]: Linux's exactly, or the hardware's pair
    /// view ([`super::hardware::HardwareRoute::route`]).
    pub fn route(
        self,
        topo: &Topology,
        provider: DeviceId,
        client: DeviceId,
    ) -> Result<Route, TopologyError> {
        match self {
            Oracle::Linux => calc_map_type_and_dist(topo, provider, client),
            Oracle::Hardware => hardware_route(topo, provider, client).map(|h| h.route()),
        }
    }

    /// The pair per access: for Linux both accesses share the route's map
    /// type and chain (less the other access's host-bridge refusal).
    pub fn judge(
        self,
        topo: &Topology,
        provider: DeviceId,
        client: DeviceId,
    ) -> Result<Judgement, TopologyError> {
        match self {
            Oracle::Linux => {
                let route = calc_map_type_and_dist(topo, provider, client)?;
                let one = |access: Access| {
                    AccessRoute {
                    access,
                    map_type: route.verdict.map_type,
                    allowed: route.verdict.allows(access),
                    reasons: route
                        .reasons
                        .iter()
                        .filter(|r| !matches!(r, Reason::AccessNotForwarded { access: a, .. } if *a != access))
                        .cloned()
                        .collect(),
                }
                };
                Ok(Judgement {
                    oracle: self,
                    read: one(Access::Read),
                    write: one(Access::Write),
                    route,
                })
            }
            Oracle::Hardware => {
                let h = hardware_route(topo, provider, client)?;
                Ok(Judgement {
                    oracle: self,
                    route: h.route(),
                    read: h.read,
                    write: h.write,
                })
            }
        }
    }
}

impl fmt::Display for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One pair judged by one oracle: the pair view and each access.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Judgement {
    /// Who judged.
    pub oracle: Oracle,
    /// The pair as one route ([`Oracle::route`]).
    pub route: Route,
    /// The client reads the provider's memory.
    pub read: AccessRoute,
    /// The client writes the provider's memory.
    pub write: AccessRoute,
}

impl Judgement {
    /// The answer for `access`.
    pub const fn access(&self, access: Access) -> &AccessRoute {
        match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_linux_is_the_default() {
        for o in Oracle::ALL {
            assert_eq!(Oracle::from_name(o.name()), Some(o));
        }
        assert_eq!(Oracle::from_name("kernel"), None);
        assert_eq!(Oracle::default(), Oracle::Linux);
    }
}
