//! The fabric on small hand-built topologies: offset windows (bus ≠ CPU
//! addresses), unroutable addresses, device-private memory, two host
//! bridges, multi-function ACS, the AMD rule and hot-remove.

use dma_api::memmap::{MemRange, MemoryMap, RangeKind};
use dma_api::p2p::Access;
use dma_api::sync::RwLock;
use dma_api::topology::{
    Acs, AcsCap, Bar, BarSpace, CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, PortType,
    Topology,
};
use dma_api::types::{BusAddr, DmaAddr, PhysAddr, ProviderId};
use dma_api::window::{AddrWindow, WindowMap};
use dma_api::Bdf;
use dma_sim::fabric::{Fabric, FaultReason, Hop, Node, Target};
use std::sync::Arc;

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn d(s: &str) -> Node {
    Node::Device(b(s))
}

const INTEL: CpuInfo = CpuInfo {
    vendor: CpuVendor::Intel,
    family: 6,
    x86: true,
};

fn bar(index: u8, addr: u64, size: u64) -> Bar {
    Bar {
        index,
        addr: PhysAddr::new(addr),
        size,
        space: BarSpace::Mem,
        is_64: true,
        prefetchable: false,
    }
}

fn dev(bdf: &str, port: PortType, parent: Option<&str>) -> DeviceRecord {
    DeviceRecord::new(b(bdf), port, parent.map(b))
}

fn win(cpu: u64, bus: u64, size: u64) -> AddrWindow {
    AddrWindow {
        cpu_start: PhysAddr::new(cpu),
        bus_start: BusAddr::new(bus),
        size,
    }
}

fn acs(ctrl: Acs) -> Option<AcsCap> {
    Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF | Acs::EC,
        ctrl,
    })
}

fn ram_map(extra: &[MemRange]) -> MemoryMap {
    let mut m = MemoryMap::new();
    m.insert(MemRange {
        start: PhysAddr::new(0),
        size: 0x4000_0000,
        kind: RangeKind::Ram,
    })
    .unwrap();
    for r in extra {
        m.insert(*r).unwrap();
    }
    m
}

/// An arm64-like SoC: RAM at CPU 0 appears at bus 0x8000_0000 (1 GiB);
/// MMIO at CPU 0x1_0000_0000 appears at bus 0x4000_0000 (256 MiB).
/// rp 00:00.0 (allow-listed ident) -> switch 01:00.0 -> dp 02:00.0 (ep A
/// 03:00.0, BAR0 at CPU 0x1_0000_0000) and dp 02:01.0 (ep B 04:00.0).
fn soc(dp1_acs: Acs) -> Fabric {
    let mut h = HostBridgeRecord::new("soc", 0, 0);
    h.ident = Some((0x8086, 0x2030));
    h.dma_ranges = WindowMap::new([win(0, 0x8000_0000, 0x4000_0000)]).unwrap();
    h.mmio = WindowMap::new([win(0x1_0000_0000, 0x4000_0000, 0x1000_0000)]).unwrap();
    let mut a = dev("03:00.0", PortType::Endpoint, Some("02:00.0"));
    a.bars = vec![bar(0, 0x1_0000_0000, 0x10_0000)];
    let mut bb = dev("04:00.0", PortType::Endpoint, Some("02:01.0"));
    bb.bars = vec![bar(0, 0x1_0010_0000, 0x100)];
    let mut dp0 = dev("02:00.0", PortType::SwitchDownstream, Some("01:00.0"));
    dp0.acs = acs(Acs::SV | Acs::UF);
    let mut dp1 = dev("02:01.0", PortType::SwitchDownstream, Some("01:00.0"));
    dp1.acs = acs(dp1_acs);
    let mut rp = dev("00:00.0", PortType::RootPort, None);
    rp.acs = acs(Acs::SV | Acs::RR | Acs::CR | Acs::UF);
    let t = Topology::build(
        INTEL,
        [h],
        [
            rp,
            dev("01:00.0", PortType::SwitchUpstream, Some("00:00.0")),
            dp0,
            dp1,
            a,
            bb,
        ],
    )
    .unwrap();
    Fabric::new(
        Arc::new(RwLock::new(t)),
        ram_map(&[MemRange {
            start: PhysAddr::new(0x1_0000_0000),
            size: 0x10_0000,
            kind: RangeKind::Bar {
                provider: ProviderId::new(4),
                bar: 0,
            },
        }]),
        Arc::new(std::sync::RwLock::new(dma_iommu::PhysMem::new())),
    )
}

#[test]
fn ram_bus_addresses_translate_through_dma_ranges() {
    let f = soc(Acs::SV | Acs::UF);
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 13) as u8).collect();
    f.dma_write(b("04:00.0"), DmaAddr::new(0x8000_1000), &data)
        .unwrap();
    let mut got = vec![0u8; data.len()];
    f.cpu_read(PhysAddr::new(0x1000), &mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(f.ram_bytes(), 5000);
    // The CPU address itself is not a bus address here: no window claims it.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0x1000), &[1; 4])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::Unroutable {
            bus: BusAddr::new(0x1000),
            host_bridge: "soc".into()
        }
    );
    // Past the end of the dma-range.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0xc000_0000), &[1; 4])
        .unwrap_err();
    assert!(matches!(e.reason, FaultReason::Unroutable { .. }));
    assert_eq!(f.faults().len(), 2);
    assert_eq!(f.ram_bytes(), 5000);
}

#[test]
fn switch_decodes_bar_bus_addresses_not_cpu_addresses() {
    let f = soc(Acs::SV | Acs::UF);
    // Bus 0x4000_0040 is ep A's BAR0 + 0x40 (CPU 0x1_0000_0040).
    f.dma_write(b("04:00.0"), DmaAddr::new(0x4000_0040), &[0xcd; 200])
        .unwrap();
    let mut got = [0u8; 200];
    f.cpu_read(PhysAddr::new(0x1_0000_0040), &mut got).unwrap();
    assert_eq!(got, [0xcd; 200]);
    assert_eq!(f.root_complex_bytes(), 0);
    assert_eq!(f.link_bytes(d("03:00.0"), d("02:00.0")).down, 200);
    // The BAR's CPU address on the wire is not decoded by the switch and
    // is nothing at the root complex either.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0x1_0000_0040), &[1; 4])
        .unwrap_err();
    assert!(matches!(e.reason, FaultReason::Unroutable { .. }));
}

#[test]
fn redirected_bus_address_reaches_the_bar_through_the_mmio_window() {
    let f = soc(Acs::SV | Acs::RR | Acs::UF);
    f.dma_write(b("04:00.0"), DmaAddr::new(0x4000_0000), &[0x11; 64])
        .unwrap();
    let mut got = [0u8; 64];
    f.cpu_read(PhysAddr::new(0x1_0000_0000), &mut got).unwrap();
    assert_eq!(got, [0x11; 64]);
    assert_eq!(f.root_complex_bytes(), 128);
    let hops = f
        .route_of(b("04:00.0"), DmaAddr::new(0x4000_0000), false)
        .unwrap();
    assert!(hops.contains(&Hop::AcsRedirect {
        port: b("02:01.0"),
        bits: Acs::RR
    }));
    assert_eq!(
        hops.last(),
        Some(&Hop::Deliver(Target::Bar {
            device: b("03:00.0"),
            bar: 0,
            phys: PhysAddr::new(0x1_0000_0000)
        }))
    );
}

#[test]
fn device_private_memory_and_bar_straddles_fault() {
    let f = soc(Acs::SV | Acs::UF);
    // 0x80 bytes at ep B's BAR0 (0x100 bytes) + 0xc0 run past its end.
    let e = f
        .dma_write(b("03:00.0"), DmaAddr::new(0x4010_00c0), &[1; 0x80])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::StraddlesBar {
            device: b("04:00.0"),
            bar: 0
        }
    );
    let mut m = single_rp(INTEL, None, (0x8086, 0x2030));
    m.1.insert(MemRange {
        start: PhysAddr::new(0x8000_0000),
        size: 0x1000,
        kind: RangeKind::DevicePrivate {
            owner: ProviderId::new(1),
        },
    })
    .unwrap();
    let f = Fabric::new(
        Arc::new(RwLock::new(m.0)),
        m.1,
        Arc::new(std::sync::RwLock::new(dma_iommu::PhysMem::new())),
    );
    let e = f
        .dma_read(b("01:00.0"), DmaAddr::new(0x8000_0010), &mut [0u8; 4])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::DevicePrivate {
            phys: PhysAddr::new(0x8000_0010),
            owner: ProviderId::new(1)
        }
    );
    assert_eq!(
        f.cpu_write(PhysAddr::new(0x8000_0000), &[1]),
        Err(dma_sim::fabric::CpuAccessError::DevicePrivate {
            phys: PhysAddr::new(0x8000_0000)
        })
    );
}

/// One root port 00:00.0 with a two-function device 01:00.{0,1} (BAR0 of
/// each at 0xe000_0000 / 0xe000_1000); identity windows.
fn single_rp(cpu: CpuInfo, fn_acs: Option<AcsCap>, ident: (u16, u16)) -> (Topology, MemoryMap) {
    let mut h = HostBridgeRecord::new("hb", 0, 0);
    h.ident = Some(ident);
    let mut rp = dev("00:00.0", PortType::RootPort, None);
    rp.acs = acs(Acs::SV | Acs::RR | Acs::CR | Acs::UF);
    let mut f0 = dev("01:00.0", PortType::Endpoint, Some("00:00.0"));
    f0.multifunction = true;
    f0.acs = fn_acs;
    f0.bars = vec![bar(0, 0xe000_0000, 0x1000)];
    let mut f1 = dev("01:00.1", PortType::Endpoint, Some("00:00.0"));
    f1.multifunction = true;
    f1.acs = fn_acs;
    f1.bars = vec![bar(0, 0xe000_1000, 0x1000)];
    let t = Topology::build(cpu, [h], [rp, f0, f1]).unwrap();
    (t, ram_map(&[]))
}

fn fabric_of((t, m): (Topology, MemoryMap)) -> Fabric {
    Fabric::new(
        Arc::new(RwLock::new(t)),
        m,
        Arc::new(std::sync::RwLock::new(dma_iommu::PhysMem::new())),
    )
}

#[test]
fn function_acs_redirect_sends_sibling_function_traffic_up_the_port() {
    // Without function ACS the device delivers internally.
    let f = fabric_of(single_rp(INTEL, None, (0x8086, 0x2030)));
    f.dma_write(b("01:00.0"), DmaAddr::new(0xe000_1000), &[1; 16])
        .unwrap();
    assert!(f.links().is_empty());
    // With RR on the function: out to the root port, UF forwards it up,
    // the host bridge forwards it back down.
    let f = fabric_of(single_rp(
        INTEL,
        acs(Acs::SV | Acs::RR | Acs::UF),
        (0x8086, 0x2030),
    ));
    f.dma_write(b("01:00.0"), DmaAddr::new(0xe000_1000), &[2; 16])
        .unwrap();
    let up = f.link_bytes(d("01:00.0"), d("00:00.0"));
    let down = f.link_bytes(d("01:00.1"), d("00:00.0"));
    assert_eq!((up.up, up.down, down.up, down.down), (16, 0, 0, 16));
    assert_eq!(f.root_complex_bytes(), 32);
    let mut got = [0u8; 16];
    f.cpu_read(PhysAddr::new(0xe000_1000), &mut got).unwrap();
    assert_eq!(got, [2; 16]);
    // The same with UF off on the root port: the TLP cannot loop back.
    {
        let mut t = f.topology().write();
        let rp = t.lookup(b("00:00.0")).unwrap();
        t.set_acs_ctrl(rp, Acs::SV | Acs::RR | Acs::CR).unwrap();
    }
    let e = f
        .dma_write(b("01:00.0"), DmaAddr::new(0xe000_1000), &[3; 16])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::LoopbackRefused { port: b("00:00.0") }
    );
}

#[test]
fn amd_zen_forwards_without_the_allow_list() {
    let redirecting = acs(Acs::SV | Acs::RR | Acs::UF);
    let f = fabric_of(single_rp(INTEL, redirecting, (0x1234, 0x5678)));
    let e = f
        .dma_write(b("01:00.0"), DmaAddr::new(0xe000_1000), &[1; 8])
        .unwrap_err();
    match e.reason {
        FaultReason::HostBridgeP2pRefused {
            access, reasons, ..
        } => {
            assert_eq!(access, Access::Write);
            assert!(reasons
                .iter()
                .any(|r| matches!(r, dma_api::p2p::Reason::HostBridgeNotAllowListed { .. })));
        }
        r => panic!("unexpected {r:?}"),
    }
    let zen = CpuInfo {
        vendor: CpuVendor::Amd,
        family: 0x19,
        x86: true,
    };
    let f = fabric_of(single_rp(zen, redirecting, (0x1234, 0x5678)));
    f.dma_write(b("01:00.0"), DmaAddr::new(0xe000_1000), &[1; 8])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 16);
}

/// Two host bridges (domains 0 and 1), one root port and endpoint each.
fn two_bridges(ident: (u16, u16)) -> Fabric {
    let mut h0 = HostBridgeRecord::new("hb0", 0, 0);
    h0.ident = Some(ident);
    let mut h1 = HostBridgeRecord::new("hb1", 1, 0);
    h1.ident = Some(ident);
    let mut e0 = dev("0000:01:00.0", PortType::Endpoint, Some("0000:00:00.0"));
    e0.bars = vec![bar(0, 0xe000_0000, 0x1000)];
    let mut e1 = dev("0001:01:00.0", PortType::Endpoint, Some("0001:00:00.0"));
    e1.bars = vec![bar(0, 0xf000_0000, 0x1000)];
    let t = Topology::build(
        INTEL,
        [h0, h1],
        [
            dev("0000:00:00.0", PortType::RootPort, None),
            dev("0001:00:00.0", PortType::RootPort, None),
            e0,
            e1,
        ],
    )
    .unwrap();
    fabric_of((t, ram_map(&[])))
}

#[test]
fn p2p_across_host_bridges_crosses_the_root_complex_interconnect() {
    let f = two_bridges((0x8086, 0x2030));
    f.dma_write(b("0001:01:00.0"), DmaAddr::new(0xe000_0100), &[5; 100])
        .unwrap();
    let (h0, h1) = {
        let t = f.topology().read();
        let mut ids = t.host_bridge_ids().map(|(i, _)| Node::HostBridge(i));
        (ids.next().unwrap(), ids.next().unwrap())
    };
    assert_eq!(f.link_bytes(h1, Node::RootComplex).up, 100);
    assert_eq!(f.link_bytes(h0, Node::RootComplex).down, 100);
    assert_eq!(f.link_bytes(d("0000:00:00.0"), h0).down, 100);
    assert_eq!(f.ram_bytes(), 0);
    let mut got = [0u8; 100];
    f.cpu_read(PhysAddr::new(0xe000_0100), &mut got).unwrap();
    assert_eq!(got, [5; 100]);

    // An entry with REQ_SAME_HOST_BRIDGE (Xeon E5 0x3c00) refuses across.
    let f = two_bridges((0x8086, 0x3c00));
    let e = f
        .dma_write(b("0001:01:00.0"), DmaAddr::new(0xe000_0100), &[5; 4])
        .unwrap_err();
    match e.reason {
        FaultReason::HostBridgeP2pRefused { reasons, .. } => assert!(reasons
            .iter()
            .any(|r| matches!(r, dma_api::p2p::Reason::HostBridgeSameOnly { .. }))),
        r => panic!("unexpected {r:?}"),
    }
}

#[test]
fn hot_removed_bar_is_no_longer_a_target() {
    let f = soc(Acs::SV | Acs::UF);
    f.dma_write(b("04:00.0"), DmaAddr::new(0x4000_0000), &[1; 8])
        .unwrap();
    {
        let mut t = f.topology().write();
        let a = t.lookup(b("03:00.0")).unwrap();
        t.hot_remove(a).unwrap();
    }
    // Unclaimed below, the MMIO window turns it into a CPU address the
    // memory map still lists as the removed BAR: no memory behind it.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0x4000_0000), &[1; 8])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::NoMemory {
            phys: PhysAddr::new(0x1_0000_0000),
            len: 8
        }
    );
    assert_eq!(
        f.cpu_write(PhysAddr::new(0x1_0000_0000), &[1]),
        Err(dma_sim::fabric::CpuAccessError::NotBacked {
            phys: PhysAddr::new(0x1_0000_0000)
        })
    );
}
