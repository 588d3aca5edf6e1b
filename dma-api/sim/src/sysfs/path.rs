//! Where a function sits, read from its canonical `/sys/devices/...` path.
//!
//! Linux registers each PCI function as a child of its upstream bridge's
//! device and each root bus under a host-bridge device named `pciDDDD:BB`
//! (drivers/pci/probe.c), so the canonical path is the upstream chain:
//! `/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0`. Paths may hold
//! non-PCI components (ACPI or VMBus parents above the host bridge) and
//! nested host bridges (VMD: `.../0000:00:0e.0/pci10000:e0/10000:e0:06.0`).

use dma_pci::bdf::Bdf;
use dma_pci::config::HostBridgeId;

/// The upstream facts a canonical path gives.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DevicePath {
    /// The function's own address (last component).
    pub bdf: Bdf,
    /// The upstream bridge: the component right before the function, if it
    /// is a BDF. `None` for a function on a root bus.
    pub parent: Option<Bdf>,
    /// The nearest `pciDDDD:BB` component above the function.
    pub host_bridge: Option<HostBridgeId>,
}

/// Decodes the `/`-separated canonical path of a function. `None` if the
/// last component is not a BDF.
pub fn parse_device_path(path: &str) -> Option<DevicePath> {
    let mut comps = path.split('/').filter(|c| !c.is_empty()).rev();
    let bdf: Bdf = comps.next()?.parse().ok()?;
    let mut parent = None;
    let mut host_bridge = None;
    for (i, c) in comps.enumerate() {
        if i == 0 {
            parent = c.parse::<Bdf>().ok();
        }
        if let Ok(h) = c.parse::<HostBridgeId>() {
            host_bridge = Some(h);
            break;
        }
    }
    Some(DevicePath {
        bdf,
        parent,
        host_bridge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bdf {
        s.parse().unwrap()
    }

    #[test]
    fn chain_parent_and_host_bridge() {
        let p = parse_device_path("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:03.0")
            .unwrap();
        assert_eq!(p.bdf, b("0000:02:03.0"));
        assert_eq!(p.parent, Some(b("0000:01:00.0")));
        assert_eq!(p.host_bridge, Some(HostBridgeId { domain: 0, bus: 0 }));

        let p = parse_device_path("/sys/devices/pci0000:40/0000:40:00.0").unwrap();
        assert_eq!(p.parent, None);
        assert_eq!(
            p.host_bridge,
            Some(HostBridgeId {
                domain: 0,
                bus: 0x40
            })
        );

        // VMD: the nested host bridge wins and the function has no PCI parent.
        let p = parse_device_path(
            "/sys/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0/10000:e1:00.0",
        )
        .unwrap();
        assert_eq!(p.parent, Some(b("10000:e0:06.0")));
        assert_eq!(
            p.host_bridge,
            Some(HostBridgeId {
                domain: 0x10000,
                bus: 0xe0
            })
        );
        let p = parse_device_path("/sys/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0")
            .unwrap();
        assert_eq!(p.parent, None);

        // Hyper-V style: host bridge below a non-PCI parent.
        let p = parse_device_path("/sys/devices/LNXSYSTM:00/VMBUS:00/abcd/pci7870:00/7870:00:00.0")
            .unwrap();
        assert_eq!(
            p.host_bridge,
            Some(HostBridgeId {
                domain: 0x7870,
                bus: 0
            })
        );
        // No host bridge at all, and not a function.
        let p = parse_device_path("/tmp/x/0000:05:00.0").unwrap();
        assert_eq!((p.parent, p.host_bridge), (None, None));
        assert_eq!(parse_device_path("/sys/devices/pci0000:00"), None);
        assert_eq!(parse_device_path(""), None);
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_paths_never_panic(p in "[/a-z0-9:.]{0,80}") {
            let _ = parse_device_path(&p);
        }

        #[test]
        fn built_chains_decode(dom in 0u32..0x2_0000, buses in proptest::collection::vec((any::<u8>(), 0u8..32, 0u8..8), 1..6)) {
            let hb = HostBridgeId { domain: dom, bus: buses[0].0 };
            let mut path = format!("/sys/devices/{hb}");
            let bdfs: Vec<Bdf> = buses.iter().map(|&(b, d, f)| Bdf::new(dom, b, d, f).unwrap()).collect();
            for b in &bdfs {
                path += &format!("/{b}");
            }
            let p = parse_device_path(&path).unwrap();
            prop_assert_eq!(p.bdf, *bdfs.last().unwrap());
            prop_assert_eq!(p.parent, bdfs.len().checked_sub(2).map(|i| bdfs[i]));
            prop_assert_eq!(p.host_bridge, Some(hb));
        }
    }
}
