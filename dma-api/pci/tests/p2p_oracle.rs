//! The P2P oracle against the kernel's documented cases, plus our
//! extensions (per-access verdicts, generation-keyed cache), IOMMU groups and
//! p2pmem providers.

use dma_pci::p2p::{
    calc_map_type_and_dist, distance_many, Access, DistanceError, MapType, P2pMemError,
    P2pMemRegistry, Reason, RouteCache,
};
use dma_pci::topology::acs_param::{apply_config_acs, apply_disable_acs_redir};
use dma_pci::topology::{
    Acs, AcsCap, Bar, BarSpace, CpuInfo, CpuVendor, DeviceId, DeviceRecord, HostBridgeRecord,
    IommuGroups, PortType, Topology,
};
use dma_pci::types::PhysAddr;
use dma_pci::Bdf;

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn full_acs() -> Option<AcsCap> {
    Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF | Acs::EC,
        ctrl: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
    })
}

fn no_redirect_acs() -> Option<AcsCap> {
    Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF | Acs::EC,
        ctrl: Acs::SV | Acs::UF,
    })
}

fn dev(bdf: &str, port: PortType, parent: Option<&str>) -> DeviceRecord {
    let mut r = DeviceRecord::new(b(bdf), port, parent.map(b));
    r.vendor = 0x1234;
    r.device = 0x0001;
    r
}

fn bar(index: u8, addr: u64, size: u64) -> Bar {
    Bar {
        index,
        addr: PhysAddr::new(addr),
        size,
        space: BarSpace::Mem,
        is_64: true,
        prefetchable: true,
    }
}

fn hb(name: &str, bus: u8, ident: (u16, u16)) -> HostBridgeRecord {
    let mut h = HostBridgeRecord::new(name, 0, bus);
    h.ident = Some(ident);
    h
}

const INTEL: CpuInfo = CpuInfo {
    vendor: CpuVendor::Intel,
    family: 6,
    x86: true,
};

/// RP 00:01.0 -> USP 01:00.0 -> DSP 02:00.0 -> A 03:00.0 (+ 03:00.1)
///                          -> DSP 02:01.0 -> B 04:00.0
/// RP 00:02.0 -> C 05:00.0 ; second host bridge (bus 0x80): RP 80:01.0 -> D 81:00.0
fn switch_topo(cpu: CpuInfo, ident0: (u16, u16), ident1: (u16, u16)) -> Topology {
    let mut recs = vec![
        {
            let mut r = dev("00:01.0", PortType::RootPort, None);
            r.acs = full_acs();
            r
        },
        dev("01:00.0", PortType::SwitchUpstream, Some("00:01.0")),
        {
            let mut r = dev("02:00.0", PortType::SwitchDownstream, Some("01:00.0"));
            r.acs = no_redirect_acs();
            r
        },
        {
            let mut r = dev("02:01.0", PortType::SwitchDownstream, Some("01:00.0"));
            r.acs = no_redirect_acs();
            r
        },
        {
            let mut r = dev("03:00.0", PortType::Endpoint, Some("02:00.0"));
            r.multifunction = true;
            r.bars.push(bar(0, 0x1_0000_0000, 0x10_0000));
            r
        },
        {
            let mut r = dev("03:00.1", PortType::Endpoint, Some("02:00.0"));
            r.multifunction = true;
            r
        },
        {
            let mut r = dev("04:00.0", PortType::Endpoint, Some("02:01.0"));
            r.bars.push(bar(0, 0x1_0010_0000, 0x10_0000));
            r
        },
        {
            let mut r = dev("00:02.0", PortType::RootPort, None);
            r.acs = full_acs();
            r
        },
        dev("05:00.0", PortType::Endpoint, Some("00:02.0")),
        {
            let mut r = dev("80:01.0", PortType::RootPort, None);
            r.acs = full_acs();
            r
        },
        {
            let mut r = dev("81:00.0", PortType::Endpoint, Some("80:01.0"));
            r.bars.push(bar(0, 0x2_0000_0000, 0x10_0000));
            r
        },
    ];
    recs.reverse(); // order must not matter
    Topology::build(cpu, [hb("hb0", 0, ident0), hb("hb1", 0x80, ident1)], recs).unwrap()
}

fn id(t: &Topology, s: &str) -> DeviceId {
    t.lookup(b(s)).unwrap()
}

fn route(t: &Topology, p: &str, c: &str) -> dma_pci::p2p::Route {
    calc_map_type_and_dist(t, id(t, p), id(t, c)).unwrap()
}

const SKX: (u16, u16) = (0x8086, 0x2020);

#[test]
fn kernel_doc_distances() {
    let t = switch_topo(INTEL, SKX, SKX);
    let r = route(&t, "03:00.0", "03:00.0");
    assert_eq!(
        (r.verdict.map_type, r.verdict.distance),
        (MapType::BusAddr, 0)
    );
    assert_eq!(r.reasons, vec![Reason::SameFunction]);
    let r = route(&t, "03:00.0", "03:00.1");
    assert_eq!(
        (r.verdict.map_type, r.verdict.distance),
        (MapType::BusAddr, 2)
    );
    assert_eq!(
        r.reasons,
        vec![Reason::CommonUpstream {
            bridge: b("02:00.0")
        }]
    );
    let r = route(&t, "03:00.0", "04:00.0");
    assert_eq!(
        (r.verdict.map_type, r.verdict.distance),
        (MapType::BusAddr, 4)
    );
    assert_eq!(
        r.reasons,
        vec![Reason::CommonUpstream {
            bridge: b("01:00.0")
        }]
    );
    assert!(r.verdict.read && r.verdict.write);
    // Separate root ports: no common upstream, chain lengths 4 + 2.
    let r = route(&t, "03:00.0", "05:00.0");
    assert_eq!(
        (r.verdict.map_type, r.verdict.distance),
        (MapType::ThruHostBridge, 6)
    );
    assert_eq!(r.reasons[0], Reason::NoCommonUpstream);
}

#[test]
fn acs_redirect_turns_bus_route_into_host_bridge_route() {
    let mut t = switch_topo(INTEL, SKX, SKX);
    let dsp = id(&t, "02:01.0");
    t.set_acs_ctrl(dsp, Acs::SV | Acs::RR | Acs::CR | Acs::UF)
        .unwrap();
    let r = route(&t, "03:00.0", "04:00.0");
    assert_eq!(
        (r.verdict.map_type, r.verdict.distance),
        (MapType::ThruHostBridge, 4)
    );
    assert!(r.reasons.contains(&Reason::AcsRedirect {
        bridge: b("02:01.0"),
        bits: Acs::RR | Acs::CR
    }));
    // Not allow-listed: the same path is refused.
    let mut t = switch_topo(INTEL, (0x1234, 0x5678), SKX);
    t.set_acs_ctrl(id(&t, "02:00.0"), Acs::EC).unwrap();
    let r = route(&t, "04:00.0", "03:00.0");
    assert_eq!(r.verdict.map_type, MapType::NotSupported);
    assert!(r.reasons.contains(&Reason::HostBridgeNotAllowListed {
        bridge: "hb0".into(),
        vendor: 0x1234,
        device: 0x5678
    }));
    assert!(!r.verdict.read && !r.verdict.write);
    assert!(!r.verdict.permits(true, false));
}

#[test]
fn allow_list_same_and_different_host_bridges() {
    // REQ_SAME_HOST_BRIDGE (Xeon E5 0x3c00): fine within one bridge...
    let t = switch_topo(INTEL, (0x8086, 0x3c00), (0x8086, 0x3c00));
    assert_eq!(
        route(&t, "03:00.0", "05:00.0").verdict.map_type,
        MapType::ThruHostBridge
    );
    // ...refused across bridges.
    let r = route(&t, "03:00.0", "81:00.0");
    assert_eq!(r.verdict.map_type, MapType::NotSupported);
    assert!(r.reasons.contains(&Reason::DifferentHostBridges {
        provider: "hb0".into(),
        client: "hb1".into()
    }));
    assert!(r.reasons.contains(&Reason::HostBridgeSameOnly {
        bridge: "hb0".into(),
        vendor: 0x8086,
        device: 0x3c00
    }));
    // Skylake-E entries have no flag: across bridges is fine when both match.
    let t = switch_topo(INTEL, SKX, SKX);
    assert_eq!(
        route(&t, "81:00.0", "04:00.0").verdict.map_type,
        MapType::ThruHostBridge
    );
    // Both must match.
    let t = switch_topo(INTEL, SKX, (0x8086, 0x9999));
    assert_eq!(
        route(&t, "81:00.0", "04:00.0").verdict.map_type,
        MapType::NotSupported
    );
    // Google: any device ID.
    let t = switch_topo(INTEL, (0x1ae0, 0xabcd), (0x1ae0, 0x0001));
    assert_eq!(
        route(&t, "81:00.0", "04:00.0").verdict.map_type,
        MapType::ThruHostBridge
    );
}

#[test]
fn derived_host_bridge_identity() {
    // No override: pci_host_bridge_dev picks the first root-bus function if it
    // is 00.0 or a root port. Here 00:01.0 (a root port, 1234:0001).
    let mut h = HostBridgeRecord::new("hb", 0, 0);
    h.ident = None;
    let mut rp = dev("00:01.0", PortType::RootPort, None);
    rp.vendor = 0x8086;
    rp.device = 0x2030;
    let t = Topology::build(
        INTEL,
        [h],
        [
            rp,
            dev("01:00.0", PortType::Endpoint, Some("00:01.0")),
            dev("00:03.0", PortType::RootPort, None),
            dev("02:00.0", PortType::Endpoint, Some("00:03.0")),
        ],
    )
    .unwrap();
    let hb0 = t.device(id(&t, "00:01.0")).unwrap().host_bridge;
    assert_eq!(t.host_bridge_ident(hb0), Some((0x8086, 0x2030)));
    assert_eq!(
        route(&t, "01:00.0", "02:00.0").verdict.map_type,
        MapType::ThruHostBridge
    );
    // First function is an endpoint at 00:05.0: no identity → not supported.
    let mut h = HostBridgeRecord::new("hb", 0, 0);
    h.ident = None;
    let t = Topology::build(
        INTEL,
        [h],
        [
            dev("00:05.0", PortType::RcEndpoint, None),
            dev("00:06.0", PortType::RcEndpoint, None),
        ],
    )
    .unwrap();
    let r = route(&t, "00:05.0", "00:06.0");
    assert_eq!(r.verdict.map_type, MapType::NotSupported);
    assert!(r.reasons.contains(&Reason::HostBridgeUnidentified {
        bridge: "hb".into()
    }));
}

#[test]
fn amd_family_rule() {
    let zen = CpuInfo {
        vendor: CpuVendor::Amd,
        family: 0x19,
        x86: true,
    };
    let t = switch_topo(zen, (0x1022, 0x14d8), (0x1022, 0x14d8));
    let r = route(&t, "03:00.0", "81:00.0");
    assert_eq!(r.verdict.map_type, MapType::ThruHostBridge);
    assert!(r.reasons.contains(&Reason::AmdZen { family: 0x19 }));
    let pre_zen = CpuInfo {
        family: 0x16,
        ..zen
    };
    let t = switch_topo(pre_zen, (0x1022, 0x14d8), (0x1022, 0x14d8));
    assert_eq!(
        route(&t, "03:00.0", "81:00.0").verdict.map_type,
        MapType::NotSupported
    );
    // CONFIG_X86 only.
    let not_x86 = CpuInfo { x86: false, ..zen };
    let t = switch_topo(not_x86, (0x1022, 0x14d8), (0x1022, 0x14d8));
    assert_eq!(
        route(&t, "03:00.0", "81:00.0").verdict.map_type,
        MapType::NotSupported
    );
}

#[test]
fn direction_limited_host_bridge() {
    let mut h = hb("hb0", 0, SKX);
    h.p2p_read = false;
    let t = Topology::build(
        INTEL,
        [h],
        [
            dev("00:01.0", PortType::RootPort, None),
            dev("01:00.0", PortType::Endpoint, Some("00:01.0")),
            dev("00:02.0", PortType::RootPort, None),
            dev("02:00.0", PortType::Endpoint, Some("00:02.0")),
        ],
    )
    .unwrap();
    let r = route(&t, "01:00.0", "02:00.0");
    assert_eq!(r.verdict.map_type, MapType::ThruHostBridge);
    assert!(!r.verdict.allows(Access::Read));
    assert!(r.verdict.allows(Access::Write));
    assert!(r.verdict.permits(false, true));
    assert!(!r.verdict.permits(true, false));
    assert!(!r.verdict.permits(true, true));
    assert!(r.reasons.contains(&Reason::AccessNotForwarded {
        bridge: "hb0".into(),
        access: Access::Read
    }));
}

#[test]
fn distance_many_sums_and_fails_on_any_unsupported() {
    let t = switch_topo(INTEL, SKX, (0x9999, 1));
    let p = id(&t, "03:00.0");
    let d = distance_many(&t, p, &[id(&t, "03:00.1"), id(&t, "04:00.0")]).unwrap();
    assert_eq!(d, 6);
    assert_eq!(distance_many(&t, p, &[]), Err(DistanceError::NoClients));
    match distance_many(&t, p, &[id(&t, "04:00.0"), id(&t, "81:00.0")]) {
        Err(DistanceError::NotSupported { routes }) => {
            assert_eq!(routes.len(), 1);
            assert_eq!(routes[0].client, b("81:00.0"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cache_invalidated_by_acs_change_and_hotplug() {
    let mut t = switch_topo(INTEL, (0x1234, 1), SKX);
    let (p, c) = (id(&t, "03:00.0"), id(&t, "04:00.0"));
    let mut cache = RouteCache::new();
    let v = cache.verdict(&t, p, c).unwrap();
    assert_eq!(v.map_type, MapType::BusAddr);
    assert_eq!(cache.verdict(&t, p, c).unwrap(), v);
    assert_eq!(cache.stats(), (1, 1));
    let g0 = t.generation();
    // pci=disable_acs_redir's inverse: turn redirect on at the DSP.
    apply_config_acs(&mut t, "1x1xx@0000:02:01.0").unwrap();
    assert!(t.generation() > g0);
    let v2 = cache.verdict(&t, p, c).unwrap();
    assert_eq!(v2.map_type, MapType::NotSupported);
    assert_eq!(cache.stats(), (1, 2));
    assert_eq!(cache.generation(), t.generation());
    // And back.
    let applied = apply_disable_acs_redir(&mut t, "0000:02:01.0").unwrap();
    assert_eq!(applied.changed.len(), 1);
    assert_eq!(cache.verdict(&t, p, c).unwrap().map_type, MapType::BusAddr);
    // Hot-remove the client: the stale id is gone.
    let g1 = t.generation();
    let removed = t.hot_remove(id(&t, "02:01.0")).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(t.generation() > g1);
    assert!(cache.verdict(&t, p, c).is_err());
    // Hot-add it back under the other DSP's sibling slot.
    t.hot_add(dev("02:01.0", PortType::SwitchDownstream, Some("01:00.0")))
        .unwrap();
    let c2 = t
        .hot_add(dev("04:00.0", PortType::Endpoint, Some("02:01.0")))
        .unwrap();
    assert_ne!(c2, c);
    assert_eq!(cache.verdict(&t, p, c2).unwrap().distance, 4);
}

#[test]
fn config_acs_semantics() {
    let mut t = switch_topo(INTEL, SKX, SKX);
    // DT is not implemented by the DSP: left off, with a warning.
    let a = apply_config_acs(&mut t, "1xx01xx@02:00.0").unwrap();
    let dsp0 = t.device(id(&t, "02:00.0")).unwrap().acs.unwrap();
    assert_eq!(dsp0.ctrl, Acs::SV | Acs::UF | Acs::RR);
    assert!(a.warnings.iter().any(|w| w.contains("DT")), "{a:?}");
    // Path form: 00:01.0/0.0/1.0 is the second DSP (no redirect bits on, so
    // unchanged); pci:1234:0001 matches every function here: the root ports
    // lose RR|CR, endpoints without ACS are warned about.
    let a = apply_disable_acs_redir(&mut t, "00:01.0/0.0/1.0;pci:1234:0001").unwrap();
    let changed: Vec<Bdf> = a.changed.iter().map(|c| c.0).collect();
    assert_eq!(
        changed,
        vec![b("00:01.0"), b("00:02.0"), b("02:00.0"), b("80:01.0")]
    );
    assert!(
        a.warnings.iter().any(|w| w.contains("03:00.0: no ACS")),
        "{a:?}"
    );
    // First matching entry wins per device: RR on from the first, the
    // second (RR off) is ignored for 02:01.0.
    let g = t.generation();
    let a = apply_config_acs(&mut t, "xxxx1xx@02:01.0;xxxx0xx@pci:0:0").unwrap();
    let dsp1 = t.device(id(&t, "02:01.0")).unwrap().acs.unwrap();
    assert!(dsp1.ctrl.contains(Acs::RR));
    // pci:0:0 matched everything else, where RR was already off.
    let rr = |s: &str| {
        t.device(id(&t, s))
            .unwrap()
            .acs
            .unwrap()
            .ctrl
            .contains(Acs::RR)
    };
    assert!(!rr("02:00.0") && !rr("00:01.0"));
    assert_eq!(a.changed.len(), 1, "{a:?}");
    assert_eq!(t.generation(), g + 1);
}

fn group_of(g: &IommuGroups, t: &Topology, s: &str) -> usize {
    g.group_of(id(t, s)).unwrap()
}

#[test]
fn iommu_groups_follow_acs() {
    let mut t = switch_topo(INTEL, SKX, SKX);
    // Redirect on at both DSPs: isolated.
    for d in ["02:00.0", "02:01.0"] {
        t.set_acs_ctrl(id(&t, d), Acs::SV | Acs::RR | Acs::CR | Acs::UF)
            .unwrap();
    }
    let g = IommuGroups::compute(&t);
    // Multifunction 03:00.0/.1 without ACS share a group; 04:00.0 is alone.
    assert_eq!(group_of(&g, &t, "03:00.0"), group_of(&g, &t, "03:00.1"));
    assert_ne!(group_of(&g, &t, "04:00.0"), group_of(&g, &t, "02:01.0"));
    assert_ne!(group_of(&g, &t, "03:00.0"), group_of(&g, &t, "02:00.0"));
    let before = g.groups().len();
    // Disabling RR on the DSP merges it with what is below.
    apply_config_acs(&mut t, "xxxx0xx@0000:02:01.0").unwrap();
    let g2 = IommuGroups::compute(&t);
    assert_eq!(group_of(&g2, &t, "04:00.0"), group_of(&g2, &t, "02:01.0"));
    assert_eq!(g2.groups().len(), before - 1);
    assert_eq!(g2.generation(), t.generation());
}

#[test]
fn pcie_to_pci_bridge_aliases_everything_below() {
    let t = Topology::build(
        INTEL,
        [hb("hb0", 0, SKX)],
        [
            {
                let mut r = dev("00:1c.0", PortType::RootPort, None);
                r.acs = full_acs();
                r
            },
            dev("01:00.0", PortType::PcieToPciBridge, Some("00:1c.0")),
            dev("02:00.0", PortType::PciDevice, Some("01:00.0")),
            dev("02:01.0", PortType::PciDevice, Some("01:00.0")),
            {
                let mut r = dev("00:1d.0", PortType::RootPort, None);
                r.acs = full_acs();
                r
            },
            dev("03:00.0", PortType::Endpoint, Some("00:1d.0")),
        ],
    )
    .unwrap();
    let g = IommuGroups::compute(&t);
    let x = group_of(&g, &t, "01:00.0");
    assert_eq!(group_of(&g, &t, "02:00.0"), x);
    assert_eq!(group_of(&g, &t, "02:01.0"), x);
    assert_ne!(group_of(&g, &t, "03:00.0"), x);
    assert_ne!(group_of(&g, &t, "00:1c.0"), x);
    assert_eq!(g.groups().len(), 4);
}

#[test]
fn p2pmem_alloc_stats_and_find_many() {
    let t = switch_topo(INTEL, SKX, SKX);
    let (a, bb, d) = (id(&t, "03:00.0"), id(&t, "04:00.0"), id(&t, "81:00.0"));
    let mut reg = P2pMemRegistry::new();
    assert!(matches!(
        reg.add_resource(&t, a, 1, 0, 0),
        Err(P2pMemError::NoSuchBar { bar: 1, .. })
    ));
    assert!(matches!(
        reg.add_resource(&t, a, 0, 0, 0x10_0000),
        Err(P2pMemError::OutOfBar { .. })
    ));
    assert!(matches!(
        reg.add_resource(&t, a, 0, 0x10_0000, 0x1000),
        Err(P2pMemError::OutOfBar { .. })
    ));
    reg.add_resource(&t, a, 0, 0x8000, 0).unwrap();
    assert!(matches!(
        reg.add_resource(&t, a, 0, 0x1000, 0x7000),
        Err(P2pMemError::AlreadyRegistered { .. })
    ));
    reg.add_resource(&t, a, 0, 0, 0x8000).unwrap(); // the rest
    let s = reg.stats(a).unwrap();
    assert_eq!(
        (s.size, s.available, s.published),
        (0x10_0000, 0x10_0000, false)
    );
    let x = reg.alloc(&t, a, 1).unwrap(); // rounds to one page
    assert_eq!(x.phys, PhysAddr::new(0x1_0000_0000));
    assert_eq!(x.bus.raw(), 0x1_0000_0000);
    let y = reg.alloc(&t, a, 0x1001).unwrap();
    assert_eq!(y.phys, PhysAddr::new(0x1_0000_1000));
    assert_eq!(reg.stats(a).unwrap().available, 0x10_0000 - 0x3000);
    reg.free(&t, x).unwrap();
    assert!(matches!(reg.free(&t, x), Err(P2pMemError::BadFree { .. })));
    assert_eq!(reg.stats(a).unwrap().available, 0x10_0000 - 0x2000);
    assert!(matches!(
        reg.alloc(&t, a, 0x10_0000),
        Err(P2pMemError::OutOfMemory { .. })
    ));

    // Unpublished memory is private to the owner.
    assert_eq!(reg.find_many(&t, &[bb]).unwrap(), None);
    reg.publish(&t, a, true).unwrap();
    assert_eq!(reg.find_many(&t, &[bb]).unwrap(), Some((a, 4)));
    // A tie: 04:00.0 and 81:00.0 both publish; for client 03:00.0 the
    // distances are 4 (switch) and 4 + 2 = 6 (host bridge); for 05:00.0
    // (other root port) they are 4 + 2 = 6 from 04:00.0... and 2 + 2 = 4
    // from 81:00.0.
    reg.add_resource(&t, bb, 0, 0, 0).unwrap();
    reg.publish(&t, bb, true).unwrap();
    reg.add_resource(&t, d, 0, 0, 0).unwrap();
    reg.publish(&t, d, true).unwrap();
    let c = id(&t, "05:00.0");
    assert_eq!(reg.find_many(&t, &[c]).unwrap(), Some((d, 4)));
    // Provider 03:00.0 vs 04:00.0 for client 03:00.1: 2 vs 4.
    assert_eq!(
        reg.find_many(&t, &[id(&t, "03:00.1")]).unwrap(),
        Some((a, 2))
    );
    // Exact tie: clients {03:00.0, 04:00.0}: 03:00.0 → 0 + 4, 04:00.0 → 4 + 0.
    // Lowest BDF wins.
    assert_eq!(reg.find_many(&t, &[a, bb]).unwrap(), Some((a, 4)));
    assert_eq!(reg.find_many(&t, &[bb, a]).unwrap(), Some((a, 4)));
}

/// Bug: a device id that is not in the topology was reported as "no device
/// 0000:00:00.0" (a default BDF nobody asked about). Every such error names
/// the id that was actually asked for, and never that fake BDF.
#[test]
fn unknown_device_errors_name_what_was_asked_not_a_default_bdf() {
    let mut t = switch_topo(INTEL, (0x8086, 0x2020), (0x8086, 0x2020));
    let gone = id(&t, "04:00.0");
    let client = id(&t, "03:00.0");
    t.hot_remove(gone).unwrap();
    let check = |what: &str, msg: String| {
        assert!(
            !msg.contains("0000:00:00.0"),
            "{what}: blames a BDF nobody asked about: {msg}"
        );
        assert!(
            msg.contains(&gone.to_string()),
            "{what}: does not name {gone}: {msg}"
        );
    };
    check(
        "calc_map_type_and_dist (provider)",
        calc_map_type_and_dist(&t, gone, client)
            .unwrap_err()
            .to_string(),
    );
    check(
        "calc_map_type_and_dist (client)",
        calc_map_type_and_dist(&t, client, gone)
            .unwrap_err()
            .to_string(),
    );
    check(
        "bar_bus_addr",
        t.bar_bus_addr(gone, 0).unwrap_err().to_string(),
    );
    check(
        "set_acs_ctrl",
        t.set_acs_ctrl(gone, Acs::empty()).unwrap_err().to_string(),
    );
    check("hot_remove", t.hot_remove(gone).unwrap_err().to_string());
    let mut cache = RouteCache::new();
    check(
        "RouteCache::verdict",
        cache.verdict(&t, gone, client).unwrap_err().to_string(),
    );
    // A present device without that BAR: the message names the device and
    // the BAR.
    let msg = t.bar_bus_addr(client, 3).unwrap_err().to_string();
    assert!(
        msg.contains("0000:03:00.0") && msg.contains("BAR 3"),
        "{msg}"
    );
}
