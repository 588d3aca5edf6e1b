//! Shape-by-shape pins of the P2P oracle and IOMMU groups against the kernel
//! (drivers/pci/p2pdma.c `calc_map_type_and_dist`, `host_bridge_whitelist`,
//! `pci_host_bridge_dev`, `cpu_supports_p2pdma`, `pci_p2pdma_distance_many`;
//! drivers/iommu/iommu.c `pci_device_group`; drivers/pci/pci.c
//! `pci_acs_enabled`, `pci_acs_flags_enabled`). Expected values were derived
//! by hand from the kernel loops; a regression in loop order or in which
//! nodes are tested for ACS redirect changes a row.

use dma_pci::p2p::allowlist::{self, P2PDMA_ALLOW_LIST};
use dma_pci::p2p::{
    calc_map_type_and_dist, distance_many, hardware_route, Access, DistanceError, MapType, Oracle,
    Reason,
};
use dma_pci::topology::acs_param::apply_disable_acs_redir;
use dma_pci::topology::{
    Acs, AcsCap, CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, IommuGroups, PortType,
    Topology,
};
use dma_pci::Bdf;

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

const INTEL: CpuInfo = CpuInfo {
    vendor: CpuVendor::Intel,
    family: 6,
    x86: true,
};
const SKX: (u16, u16) = (0x8086, 0x2030);
const UNLISTED: (u16, u16) = (0x1234, 0x5678);

const ISOLATING: Acs = Acs::SV.union(Acs::RR).union(Acs::CR).union(Acs::UF);

fn acs(ctrl: Acs) -> Option<AcsCap> {
    Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF | Acs::EC,
        ctrl,
    })
}

fn dev(bdf: &str, port: PortType, parent: Option<&str>) -> DeviceRecord {
    let mut r = DeviceRecord::new(b(bdf), port, parent.map(b));
    r.vendor = 0x1234;
    r.device = 0x0001;
    r
}

/// hb0 (bus 00):
///   RP 00:01.0 [ACS isolating] -> USP 01:00.0 [ACS cap, no ctrl]
///       -> DSP 02:00.0 [ACS, no redirect] -> A 03:00.0 + A1 03:00.1 (multifunction)
///       -> DSP 02:01.0 [ACS, no redirect] -> B 04:00.0
///   RP 00:02.0 [ACS isolating] -> C 05:00.0
///   RP 00:03.0 [ACS isolating] -> PCIe-to-PCI 06:00.0 -> P 07:00.0, Q 07:01.0 (conventional)
///   RCiEP 00:04.0; multifunction RCiEP 00:05.0 + 00:05.1 (no ACS)
/// hb1 (bus 80): RP 80:01.0 [ACS isolating] -> D 81:00.0
fn machine(cpu: CpuInfo, id0: (u16, u16), id1: (u16, u16)) -> Topology {
    let with = |mut r: DeviceRecord, a: Option<AcsCap>, mf: bool| {
        r.acs = a;
        r.multifunction = mf;
        r
    };
    let recs = vec![
        with(
            dev("00:01.0", PortType::RootPort, None),
            acs(ISOLATING),
            false,
        ),
        with(
            dev("01:00.0", PortType::SwitchUpstream, Some("00:01.0")),
            acs(Acs::empty()),
            false,
        ),
        with(
            dev("02:00.0", PortType::SwitchDownstream, Some("01:00.0")),
            acs(Acs::SV | Acs::UF),
            false,
        ),
        with(
            dev("02:01.0", PortType::SwitchDownstream, Some("01:00.0")),
            acs(Acs::SV | Acs::UF),
            false,
        ),
        with(
            dev("03:00.0", PortType::Endpoint, Some("02:00.0")),
            acs(Acs::empty()),
            true,
        ),
        with(
            dev("03:00.1", PortType::Endpoint, Some("02:00.0")),
            None,
            true,
        ),
        dev("04:00.0", PortType::Endpoint, Some("02:01.0")),
        with(
            dev("00:02.0", PortType::RootPort, None),
            acs(ISOLATING),
            false,
        ),
        dev("05:00.0", PortType::Endpoint, Some("00:02.0")),
        with(
            dev("00:03.0", PortType::RootPort, None),
            acs(ISOLATING),
            false,
        ),
        dev("06:00.0", PortType::PcieToPciBridge, Some("00:03.0")),
        dev("07:00.0", PortType::PciDevice, Some("06:00.0")),
        dev("07:01.0", PortType::PciDevice, Some("06:00.0")),
        dev("00:04.0", PortType::RcEndpoint, None),
        with(dev("00:05.0", PortType::RcEndpoint, None), None, true),
        with(dev("00:05.1", PortType::RcEndpoint, None), None, true),
        with(
            dev("80:01.0", PortType::RootPort, None),
            acs(ISOLATING),
            false,
        ),
        dev("81:00.0", PortType::Endpoint, Some("80:01.0")),
    ];
    let mut h0 = HostBridgeRecord::new("hb0", 0, 0);
    h0.ident = Some(id0);
    let mut h1 = HostBridgeRecord::new("hb1", 0, 0x80);
    h1.ident = Some(id1);
    Topology::build(cpu, [h0, h1], recs).unwrap()
}

fn set(t: &mut Topology, s: &str, ctrl: Acs) {
    let id = t.lookup(b(s)).unwrap();
    t.set_acs_ctrl(id, ctrl).unwrap();
}

/// Linux's verdict; checks on the way that `--oracle linux` is exactly it
/// and how the hardware oracle relates to it: the same distance, and a
/// Linux bus route (no redirect anywhere below the common bridge) or a
/// route with no common bridge is the hardware's too, for both accesses.
fn verdict(t: &Topology, p: &str, c: &str) -> (MapType, u32) {
    let (pid, cid) = (t.lookup(b(p)).unwrap(), t.lookup(b(c)).unwrap());
    let r = calc_map_type_and_dist(t, pid, cid).unwrap();
    assert_eq!(Oracle::Linux.route(t, pid, cid).unwrap(), r);
    let j = Oracle::Linux.judge(t, pid, cid).unwrap();
    let h = hardware_route(t, pid, cid).unwrap();
    assert_eq!(h.distance, r.verdict.distance, "{p} -> {c}");
    for a in [Access::Read, Access::Write] {
        assert_eq!(j.access(a).map_type, r.verdict.map_type);
        assert_eq!(j.access(a).allowed, r.verdict.allows(a));
        let same =
            r.verdict.map_type == MapType::BusAddr || r.reasons.contains(&Reason::NoCommonUpstream);
        if same {
            let hw = h.access(a);
            assert_eq!(
                (hw.map_type, hw.allowed),
                (r.verdict.map_type, r.verdict.allows(a)),
                "{p} -> {c} {a}"
            );
        }
    }
    (r.verdict.map_type, r.verdict.distance)
}

use MapType::{BusAddr as Bus, NotSupported as No, ThruHostBridge as Host};

/// (case, provider, client, ACS redirect set on (bdf), expected).
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    (MapType, u32),
);

const SHAPES: &[Row] = &[
    ("same function", "03:00.0", "03:00.0", &[], (Bus, 0)),
    // `a = provider` is tested for redirect before the client walk finds it.
    (
        "same function, its own ACS redirects",
        "03:00.0",
        "03:00.0",
        &["03:00.0"],
        (Host, 0),
    ),
    (
        "two functions of one device",
        "03:00.0",
        "03:00.1",
        &[],
        (Bus, 2),
    ),
    // The common upstream bridge is tested in the provider loop.
    (
        "two functions, parent DSP redirects",
        "03:00.0",
        "03:00.1",
        &["02:00.0"],
        (Host, 2),
    ),
    (
        "two functions, provider function redirects",
        "03:00.0",
        "03:00.1",
        &["03:00.0"],
        (Host, 2),
    ),
    // The client walk starts at the client itself.
    (
        "two functions, client function redirects",
        "03:00.1",
        "03:00.0",
        &["03:00.0"],
        (Host, 2),
    ),
    (
        "siblings under a switch",
        "03:00.0",
        "04:00.0",
        &[],
        (Bus, 4),
    ),
    (
        "switch, provider DSP redirects",
        "03:00.0",
        "04:00.0",
        &["02:00.0"],
        (Host, 4),
    ),
    (
        "switch, client DSP redirects",
        "03:00.0",
        "04:00.0",
        &["02:01.0"],
        (Host, 4),
    ),
    (
        "switch, common USP redirects",
        "03:00.0",
        "04:00.0",
        &["01:00.0"],
        (Host, 4),
    ),
    // Above the common bridge: never reached by either loop.
    (
        "switch, root port above redirects",
        "03:00.0",
        "04:00.0",
        &["00:01.0"],
        (Bus, 4),
    ),
    // The provider is the common bridge itself (a root port with RR|CR on).
    (
        "root port to a device below it",
        "00:01.0",
        "03:00.0",
        &[],
        (Host, 3),
    ),
    (
        "switch port to a device below it",
        "02:00.0",
        "03:00.0",
        &[],
        (Bus, 1),
    ),
    (
        "device to the switch port above it",
        "03:00.0",
        "01:00.0",
        &[],
        (Bus, 2),
    ),
    // A root-bus function meets itself before any upstream walk.
    (
        "same RC integrated endpoint",
        "00:04.0",
        "00:04.0",
        &[],
        (Bus, 0),
    ),
    ("different root ports", "03:00.0", "05:00.0", &[], (Host, 6)),
    // No common bridge: redirects counted in the provider loop are ignored.
    (
        "different root ports, DSP redirects",
        "03:00.0",
        "05:00.0",
        &["02:00.0"],
        (Host, 6),
    ),
    (
        "different host bridges",
        "03:00.0",
        "81:00.0",
        &[],
        (Host, 6),
    ),
    (
        "conventional PCI siblings behind a PCIe-to-PCI bridge",
        "07:00.0",
        "07:01.0",
        &[],
        (Bus, 2),
    ),
    (
        "behind a PCIe-to-PCI bridge to another root port",
        "07:00.0",
        "05:00.0",
        &[],
        (Host, 5),
    ),
    (
        "two RC integrated endpoints",
        "00:04.0",
        "00:05.0",
        &[],
        (Host, 2),
    ),
    // Root-bus functions have no upstream bridge: never BUS_ADDR.
    (
        "two functions of one RC integrated endpoint",
        "00:05.0",
        "00:05.1",
        &[],
        (Host, 2),
    ),
    (
        "RC integrated endpoint to a device under a root port",
        "00:04.0",
        "05:00.0",
        &[],
        (Host, 3),
    ),
];

#[test]
fn calc_map_type_and_dist_shape_table_allow_listed() {
    for &(case, p, c, redir, want) in SHAPES {
        let mut t = machine(INTEL, SKX, SKX);
        for d in redir {
            set(&mut t, d, Acs::SV | Acs::RR | Acs::CR | Acs::UF);
        }
        assert_eq!(verdict(&t, p, c), want, "{case}");
    }
}

#[test]
fn calc_map_type_and_dist_shape_table_not_allow_listed() {
    // Same shapes with an unknown host bridge: every host-bridge route is
    // NOT_SUPPORTED, bus routes are unaffected, distances unchanged.
    for &(case, p, c, redir, (map, dist)) in SHAPES {
        let mut t = machine(INTEL, UNLISTED, UNLISTED);
        for d in redir {
            set(&mut t, d, Acs::SV | Acs::RR | Acs::CR | Acs::UF);
        }
        let want = if map == Host { (No, dist) } else { (map, dist) };
        assert_eq!(verdict(&t, p, c), want, "{case}");
    }
}

#[test]
fn pci_bridge_has_acs_redir_is_any_of_rr_cr_ec_in_control() {
    for (bits, redirects) in [
        (Acs::RR, true),
        (Acs::CR, true),
        (Acs::EC, true),
        (Acs::SV | Acs::UF | Acs::TB | Acs::DT, false),
    ] {
        let mut t = machine(INTEL, SKX, SKX);
        let id = t.lookup(b("02:01.0")).unwrap();
        // The capability must allow the bit for set_acs_ctrl in a real port;
        // the control register is what the kernel reads.
        t.set_acs_ctrl(id, bits).unwrap();
        let want = if redirects { (Host, 4) } else { (Bus, 4) };
        assert_eq!(verdict(&t, "03:00.0", "04:00.0"), want, "{bits}");
    }
}

#[test]
fn acs_redirect_reasons_name_exactly_the_kernel_acs_list() {
    // The kernel's acs_list (printed as the disable_acs_redir string) has the
    // provider-side nodes up to and including the common bridge, then the
    // client side below it.
    let mut t = machine(INTEL, SKX, SKX);
    for d in ["00:01.0", "01:00.0", "02:00.0", "02:01.0", "03:00.0"] {
        set(&mut t, d, Acs::RR);
    }
    let r = calc_map_type_and_dist(
        &t,
        t.lookup(b("03:00.0")).unwrap(),
        t.lookup(b("04:00.0")).unwrap(),
    )
    .unwrap();
    let acs: Vec<Bdf> = r
        .reasons
        .iter()
        .filter_map(|x| match x {
            Reason::AcsRedirect { bridge, .. } => Some(*bridge),
            _ => None,
        })
        .collect();
    assert_eq!(
        acs,
        vec![b("03:00.0"), b("02:00.0"), b("01:00.0"), b("02:01.0")]
    );
    // The kernel's one-line hint, and applying it gives a bus route.
    let hint = r.disable_acs_redir_param().unwrap();
    assert_eq!(hint, "0000:03:00.0;0000:02:00.0;0000:01:00.0;0000:02:01.0");
    apply_disable_acs_redir(&mut t, &hint).unwrap();
    assert_eq!(verdict(&t, "03:00.0", "04:00.0"), (Bus, 4));
    // No redirect in the way, or no common upstream bridge: no hint.
    let r = calc_map_type_and_dist(
        &t,
        t.lookup(b("03:00.0")).unwrap(),
        t.lookup(b("05:00.0")).unwrap(),
    )
    .unwrap();
    assert_eq!(r.disable_acs_redir_param(), None);
}

#[test]
fn host_bridge_whitelist_rules() {
    let intel_e5 = (0x8086, 0x3c00); // REQ_SAME_HOST_BRIDGE
    let google = (0x1ae0, 0xbeef); // PCI_ANY_ID entry
    let cases = [
        (SKX, SKX, Host, Host),
        (intel_e5, intel_e5, Host, No),
        (intel_e5, SKX, Host, No),
        (SKX, UNLISTED, Host, No),
        (UNLISTED, SKX, No, No),
        (google, SKX, Host, Host),
        ((0x10de, 0x2f95), (0x1d17, 0x1008), Host, Host),
        ((0x1d17, 0x1003), (0x1d17, 0x1008), Host, No),
    ];
    for (h0, h1, same_hb, cross_hb) in cases {
        let t = machine(INTEL, h0, h1);
        assert_eq!(verdict(&t, "03:00.0", "05:00.0").0, same_hb, "{h0:x?}");
        assert_eq!(
            verdict(&t, "03:00.0", "81:00.0").0,
            cross_hb,
            "{h0:x?}/{h1:x?}"
        );
        // Symmetric in provider/client.
        assert_eq!(
            verdict(&t, "81:00.0", "03:00.0").0,
            cross_hb,
            "{h1:x?}/{h0:x?}"
        );
    }
}

#[test]
fn cpu_supports_p2pdma_is_x86_amd_family_0x17_or_later_only() {
    let cpu = |vendor, family, x86| CpuInfo {
        vendor,
        family,
        x86,
    };
    for (c, ok) in [
        (cpu(CpuVendor::Amd, 0x17, true), true),
        (cpu(CpuVendor::Amd, 0x19, true), true),
        (cpu(CpuVendor::Amd, 0x1a, true), true),
        (cpu(CpuVendor::Amd, 0x16, true), false),
        (cpu(CpuVendor::Amd, 0x17, false), false),
        (cpu(CpuVendor::Intel, 0x17, true), false),
        // Hygon (X86_VENDOR_HYGON, family 0x18) is a different vendor:
        // the kernel rule does not cover it.
        (cpu(CpuVendor::Other, 0x18, true), false),
    ] {
        assert_eq!(c.supports_p2pdma(), ok, "{c:?}");
        let t = machine(c, UNLISTED, UNLISTED);
        let want = if ok { Host } else { No };
        assert_eq!(verdict(&t, "03:00.0", "81:00.0").0, want, "{c:?}");
        // The CPU rule never turns a bus route into something else.
        assert_eq!(verdict(&t, "03:00.0", "04:00.0").0, Bus, "{c:?}");
    }
}

#[test]
fn pci_p2pdma_whitelist_entries_exactly() {
    // (vendor, device or ANY, REQ_SAME_HOST_BRIDGE), in the kernel's order.
    const KERNEL: &[(u16, Option<u16>, bool)] = &[
        (0x8086, Some(0x3c00), true),
        (0x8086, Some(0x3c01), true),
        (0x8086, Some(0x2f00), true),
        (0x8086, Some(0x2f01), true),
        (0x8086, Some(0x2030), false),
        (0x8086, Some(0x2031), false),
        (0x8086, Some(0x2032), false),
        (0x8086, Some(0x2033), false),
        (0x8086, Some(0x2020), false),
        (0x8086, Some(0x09a2), false),
        (0x8086, Some(0x0b25), false), // DSA_SPR0
        (0x8086, Some(0x0cfe), false), // IAX_SPR0
        (0x8086, Some(0x11fb), false), // DSA_GNRD
        (0x8086, Some(0x1212), false), // DSA_DMR
        (0x8086, Some(0x1216), false), // IAA_DMR
        (0x8086, Some(0x4940), false), // QAT_4XXX
        (0x8086, Some(0x4942), false), // QAT_401XX
        (0x8086, Some(0x4944), false), // QAT_402XX
        (0x8086, Some(0x4946), false), // QAT_420XX
        (0x8086, Some(0x4948), false), // QAT_6XXX
        (0x1ae0, None, false),         // Google, PCI_ANY_ID
        (0x10de, Some(0x2f95), false),
        (0x10de, Some(0x2f96), false),
        (0x10de, Some(0x2f97), false),
        (0x10de, Some(0x2f98), false),
        (0x1d17, Some(0x1003), true),
        (0x1d17, Some(0x1005), true),
        (0x1d17, Some(0x1006), true),
        (0x1d17, Some(0x1007), true),
        (0x1d17, Some(0x1008), false),
    ];
    let ours: Vec<(u16, Option<u16>, bool)> = P2PDMA_ALLOW_LIST
        .iter()
        .map(|e| (e.vendor, e.device, e.req_same_host_bridge))
        .collect();
    assert_eq!(ours, KERNEL);
    for &(v, d, same_only) in KERNEL {
        let d = d.unwrap_or(0x1234);
        assert!(allowlist::allows(v, d, true));
        assert_eq!(allowlist::allows(v, d, false), !same_only);
    }
    // Not listed: AMD root complexes (the CPU rule covers them), a near miss.
    assert!(allowlist::lookup(0x1022, 0x1450).is_none());
    assert!(allowlist::lookup(0x8086, 0x2034).is_none());
    assert!(allowlist::lookup(0x10de, 0x2f99).is_none());
}

#[test]
fn pci_host_bridge_dev_is_first_root_bus_function_if_00_0_or_root_port() {
    let build = |recs: Vec<DeviceRecord>| {
        Topology::build(INTEL, [HostBridgeRecord::new("hb", 0, 0)], recs).unwrap()
    };
    let with_id = |mut r: DeviceRecord, v, d| {
        r.vendor = v;
        r.device = d;
        r
    };
    // 00:00.0 (any type) decides, even if a later root port is listed.
    let t = build(vec![
        with_id(dev("00:00.0", PortType::PciDevice, None), 0x8086, 0x09a2),
        with_id(dev("00:01.0", PortType::RootPort, None), 0x1234, 0x0002),
    ]);
    let hb = t.host_bridge_ids().next().unwrap().0;
    assert_eq!(t.host_bridge_ident(hb), Some((0x8086, 0x09a2)));
    // First is a root port at 00:1c.0 (Skylake style).
    let t = build(vec![with_id(
        dev("00:1c.0", PortType::RootPort, None),
        0x8086,
        0x2031,
    )]);
    assert_eq!(t.host_bridge_ident(hb), Some((0x8086, 0x2031)));
    // First is an endpoint at 00:02.0: no device, even if a root port follows.
    let t = build(vec![
        dev("00:02.0", PortType::RcEndpoint, None),
        with_id(dev("00:1c.0", PortType::RootPort, None), 0x8086, 0x2031),
    ]);
    assert_eq!(t.host_bridge_ident(hb), None);
}

#[test]
fn distance_many_sums_and_any_not_supported_is_minus_one() {
    let t = machine(INTEL, SKX, UNLISTED);
    let id = |s: &str| t.lookup(b(s)).unwrap();
    let a = id("03:00.0");
    // 0 (itself) + 2 (sibling function) + 4 (switch) + 6 (host bridge).
    assert_eq!(
        distance_many(&t, a, &[a, id("03:00.1"), id("04:00.0"), id("05:00.0")]),
        Ok(12)
    );
    // A client behind the unlisted host bridge: -1, and every failing route
    // is reported (the kernel's verbose mode keeps going).
    match distance_many(&t, a, &[id("81:00.0"), id("04:00.0"), id("81:00.0")]) {
        Err(DistanceError::NotSupported { routes }) => assert_eq!(routes.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(distance_many(&t, a, &[]), Err(DistanceError::NoClients));
}

fn groups(t: &Topology) -> impl Fn(&str, &str) -> bool + '_ {
    let g = IommuGroups::compute(t);
    move |x: &str, y: &str| {
        g.group_of(t.lookup(b(x)).unwrap()) == g.group_of(t.lookup(b(y)).unwrap())
    }
}

#[test]
fn pci_device_group_shape_table() {
    let t = machine(INTEL, SKX, SKX);
    let same = groups(&t);
    // Multifunction endpoint functions without enabled ACS share a group
    // (get_pci_function_alias_group).
    assert!(same("03:00.0", "03:00.1"));
    // DSPs without RR/CR: not isolated, so what is below joins the DSP.
    assert!(same("03:00.1", "02:00.0"));
    assert!(same("04:00.0", "02:01.0"));
    // The USP (single function) is isolated and so is the root port: the
    // walk stops below them.
    assert!(!same("02:00.0", "01:00.0"));
    assert!(!same("02:00.0", "02:01.0"));
    // PCIe-to-PCI bridge: everything behind it aliases to the bridge.
    assert!(same("07:00.0", "07:01.0"));
    assert!(same("07:00.0", "06:00.0"));
    assert!(!same("06:00.0", "00:03.0"));
    // RC integrated endpoints: single function alone; a multifunction one
    // without ACS shares its slot's group.
    assert!(!same("00:04.0", "00:05.0"));
    assert!(same("00:05.0", "00:05.1"));
    assert!(!same("05:00.0", "00:02.0"));
}

#[test]
fn pci_device_group_root_port_without_isolation_takes_everything_below() {
    let mut t = machine(INTEL, SKX, SKX);
    set(&mut t, "00:01.0", Acs::SV | Acs::CR | Acs::UF); // RR missing
    let same = groups(&t);
    for d in ["01:00.0", "02:00.0", "02:01.0", "03:00.0", "04:00.0"] {
        assert!(same(d, "00:01.0"), "{d}");
    }
    assert!(!same("00:01.0", "00:02.0"));
}

#[test]
fn pci_device_group_dsp_isolation_needs_all_of_sv_rr_cr_uf() {
    for missing in [Acs::SV, Acs::RR, Acs::CR, Acs::UF] {
        let mut t = machine(INTEL, SKX, SKX);
        set(&mut t, "02:01.0", ISOLATING - missing);
        assert!(groups(&t)("04:00.0", "02:01.0"), "{missing}");
    }
    let mut t = machine(INTEL, SKX, SKX);
    set(&mut t, "02:01.0", ISOLATING);
    assert!(!groups(&t)("04:00.0", "02:01.0"));
    // EC, TB, DT are not part of REQ_ACS_FLAGS.
    set(&mut t, "02:01.0", ISOLATING | Acs::EC);
    assert!(!groups(&t)("04:00.0", "02:01.0"));
}

#[test]
fn pci_acs_enabled_on_multifunction_endpoints() {
    // RP (isolating) -> 01:00.0 + 01:00.1, multifunction endpoints.
    let build = |f0: Option<AcsCap>, f1: Option<AcsCap>| {
        let mut rp = dev("00:01.0", PortType::RootPort, None);
        rp.acs = acs(ISOLATING);
        let mut e0 = dev("01:00.0", PortType::Endpoint, Some("00:01.0"));
        e0.multifunction = true;
        e0.acs = f0;
        let mut e1 = dev("01:00.1", PortType::Endpoint, Some("00:01.0"));
        e1.multifunction = true;
        e1.acs = f1;
        Topology::build(INTEL, [HostBridgeRecord::new("hb", 0, 0)], [rp, e0, e1]).unwrap()
    };
    // An ACS capability implementing none of SV/RR/CR/UF: pci_acs_flags_enabled
    // treats missing capabilities as hard-wired on, so both are isolated.
    let empty = Some(AcsCap::default());
    let t = build(empty, empty);
    assert!(!groups(&t)("01:00.0", "01:00.1"));
    // Capabilities present but not enabled: not isolated, one group.
    let t = build(acs(Acs::empty()), acs(Acs::empty()));
    assert!(groups(&t)("01:00.0", "01:00.1"));
    // No ACS capability at all on a multifunction endpoint: not isolated.
    let t = build(None, None);
    assert!(groups(&t)("01:00.0", "01:00.1"));
    // One isolated function: the alias rule needs both non-isolated.
    let t = build(acs(ISOLATING), None);
    assert!(!groups(&t)("01:00.0", "01:00.1"));
}

#[test]
fn pci_device_group_multifunction_root_ports_without_acs_share_with_children() {
    let mut recs = Vec::new();
    for (rp, ep) in [("00:1c.0", "01:00.0"), ("00:1c.1", "02:00.0")] {
        let mut r = dev(rp, PortType::RootPort, None);
        r.multifunction = true;
        recs.push(r);
        recs.push(dev(ep, PortType::Endpoint, Some(rp)));
    }
    let mut rp = dev("00:1d.0", PortType::RootPort, None);
    rp.acs = acs(ISOLATING);
    recs.push(rp);
    recs.push(dev("03:00.0", PortType::Endpoint, Some("00:1d.0")));
    let t = Topology::build(INTEL, [HostBridgeRecord::new("hb", 0, 0)], recs).unwrap();
    let same = groups(&t);
    assert!(same("01:00.0", "02:00.0"));
    assert!(same("00:1c.0", "00:1c.1"));
    assert!(same("01:00.0", "00:1c.1"));
    assert!(!same("03:00.0", "00:1c.0"));
    assert!(!same("03:00.0", "00:1d.0"));
}
