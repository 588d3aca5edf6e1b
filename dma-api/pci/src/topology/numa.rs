//! NUMA nodes of host bridges and functions.
//!
//! Linux gives every PCI function the node of its bus
//! (drivers/pci/probe.c `pci_device_add`: `set_dev_node(&dev->dev,
//! pcibus_to_node(bus))`), and a root bus gets its node from the firmware's
//! description of the host bridge (ACPI `_PXM`, or the device tree's
//! `numa-node-id`); no description means `NUMA_NO_NODE` (-1,
//! include/linux/numa.h). `/sys/bus/pci/devices/*/numa_node` shows the
//! function's node, -1 for none, and is writable by root to correct
//! firmware (drivers/pci/pci-sysfs.c `numa_node_store`), so a function may
//! differ from its host bridge. The model follows: a host bridge has a node
//! or none; a function inherits its host bridge's unless its record says
//! otherwise ([`NodeSpec`]).

use core::fmt;

/// A NUMA node number, below [`NumaNode::LIMIT`]. "No node" is
/// `Option::<NumaNode>::None`, never a sentinel.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NumaNode(u16);

/// A node number Linux cannot have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NumaNodeError {
    /// The value given.
    pub value: i64,
}

impl fmt::Display for NumaNodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NUMA node {} is out of range: a node is 0 to {} (MAX_NUMNODES at CONFIG_NODES_SHIFT=10), or -1 for none",
            self.value,
            NumaNode::LIMIT - 1
        )
    }
}

impl core::error::Error for NumaNodeError {}

impl NumaNode {
    /// The largest `MAX_NUMNODES` Linux builds with: `1 << NODES_SHIFT`,
    /// whose Kconfig range ends at 10 (arch/x86/Kconfig, arch/arm64/Kconfig).
    pub const LIMIT: u16 = 1 << 10;

    /// Node `n`, if below [`Self::LIMIT`].
    pub const fn new(n: u16) -> Option<Self> {
        if n < Self::LIMIT {
            Some(Self(n))
        } else {
            None
        }
    }

    /// The node number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Linux's integer form: -1 (`NUMA_NO_NODE`) is no node, 0 to
    /// `LIMIT - 1` a node; anything else is an error naming the value.
    pub fn from_linux(value: i64) -> Result<Option<Self>, NumaNodeError> {
        if value == -1 {
            return Ok(None);
        }
        u16::try_from(value)
            .ok()
            .and_then(Self::new)
            .map(Some)
            .ok_or(NumaNodeError { value })
    }

    /// Linux's integer form of an optional node (-1 for none), as sysfs
    /// prints it.
    pub fn to_linux(node: Option<Self>) -> i32 {
        node.map_or(-1, |n| i32::from(n.0))
    }
}

impl fmt::Display for NumaNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a function's node comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum NodeSpec {
    /// Its host bridge's node (`pci_device_add`), the default.
    #[default]
    HostBridge,
    /// This node, or none, whatever the host bridge has (a sysfs
    /// `numa_node`, or a machine file's override).
    Given(Option<NumaNode>),
}

impl NodeSpec {
    /// The node this gives under a host bridge on `host_bridge`.
    pub fn resolve(self, host_bridge: Option<NumaNode>) -> Option<NumaNode> {
        match self {
            Self::HostBridge => host_bridge,
            Self::Given(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_form_round_trips_and_rejects_out_of_range() {
        assert_eq!(NumaNode::from_linux(-1), Ok(None));
        assert_eq!(NumaNode::from_linux(0), Ok(NumaNode::new(0)));
        assert_eq!(NumaNode::from_linux(1023).map(NumaNode::to_linux), Ok(1023));
        assert_eq!(
            NumaNode::from_linux(1024),
            Err(NumaNodeError { value: 1024 })
        );
        assert_eq!(NumaNode::from_linux(-2), Err(NumaNodeError { value: -2 }));
        assert_eq!(NumaNode::to_linux(None), -1);
    }

    #[test]
    fn a_function_inherits_unless_given() {
        let n1 = NumaNode::new(1);
        assert_eq!(NodeSpec::HostBridge.resolve(n1), n1);
        assert_eq!(NodeSpec::Given(None).resolve(n1), None);
        assert_eq!(
            NodeSpec::Given(NumaNode::new(0)).resolve(n1),
            NumaNode::new(0)
        );
    }
}
