//! The fabric on the reference server (examples/machines/reference-server.toml):
//! bytes land where the route says, and the link counters prove which links
//! carried them.

use dma_api::p2p::Access;
use dma_api::topology::{Acs, HostBridgeId};
use dma_api::types::{DmaAddr, PhysAddr};
use dma_api::Bdf;
use dma_sim::fabric::{Dir, Fabric, FaultReason, Hop, Node, Target, Translation};
use dma_sim::machine::{Machine, REFERENCE_TOML};

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

fn d(s: &str) -> Node {
    Node::Device(b(s))
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        // Never a zero byte: a write that never happened over zeroed memory
        // cannot pass for the pattern.
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) % 255 + 1)
        .collect()
}

fn fabric() -> Fabric {
    Fabric::from_machine(&Machine::reference().unwrap())
}

fn hb0(f: &Fabric) -> Node {
    let t = f.topology().read();
    let (id, _) = t.host_bridge_ids().next().unwrap();
    Node::HostBridge(id)
}

fn hb_id(f: &Fabric) -> HostBridgeId {
    f.topology().read().host_bridge_ids().next().unwrap().0
}

fn set_acs(f: &Fabric, bdf: &str, ctrl: Acs) {
    let mut t = f.topology().write();
    let id = t.lookup(b(bdf)).unwrap();
    t.set_acs_ctrl(id, ctrl).unwrap();
}

const NVME0_BAR2: u64 = 0x40_0000_0000;

#[test]
fn device_write_to_ram_lands_at_dma_ranges_phys_and_reads_back() {
    let f = fabric();
    let data = pattern(10_000, 7);
    let addr = DmaAddr::new(0x1000_0800);
    f.dma_write(b("04:00.0"), addr, &data).unwrap();
    let mut ram = vec![0u8; data.len()];
    f.cpu_read(PhysAddr::new(0x1000_0800), &mut ram).unwrap();
    assert_eq!(ram, data);
    let mut back = vec![0u8; data.len()];
    f.dma_read(b("04:00.0"), addr, &mut back).unwrap();
    assert_eq!(back, data);

    let n = data.len() as u64;
    // Every link from the endpoint to RAM carried the write up and the read down.
    for (lo, up) in [
        (d("04:00.0"), d("02:01.0")),
        (d("02:01.0"), d("01:00.0")),
        (d("01:00.0"), d("00:01.0")),
        (d("00:01.0"), hb0(&f)),
        (hb0(&f), Node::RootComplex),
        (Node::RootComplex, Node::Ram),
    ] {
        let lb = f.link_bytes(lo, up);
        assert_eq!((lb.up, lb.down), (n, n), "{lo} <-> {up}");
    }
    assert_eq!(f.links().len(), 6);
    assert_eq!(f.root_complex_bytes(), 2 * n);
    assert_eq!(f.ram_bytes(), 2 * n);
    let c = f.counters();
    // 10_000 bytes from 0x800 into a page = 0x800 + 0x1000 + 0xf10 per
    // page. Writes split at 256 B: 8 + 16 + 16; reads at 512 B: 4 + 8 + 8.
    assert_eq!(c.bytes_written, n);
    assert_eq!(c.bytes_read, n);
    assert_eq!(c.tlps, 40 + 20);
    assert_eq!(c.faults, 0);
    assert!(f.faults().is_empty());
}

#[test]
fn route_to_ram_is_printable_hop_by_hop() {
    let f = fabric();
    let hops = f
        .route_of(b("07:00.0"), DmaAddr::new(0x2000), true)
        .unwrap();
    let want = vec![
        Hop::Link {
            link: dma_sim::fabric::LinkId::new(d("07:00.0"), d("00:02.0")),
            dir: Dir::Up,
        },
        Hop::Link {
            link: dma_sim::fabric::LinkId::new(d("00:02.0"), hb0(&f)),
            dir: Dir::Up,
        },
        Hop::Translate {
            at: hb_id(&f),
            by: Translation::DmaRanges,
            from: DmaAddr::new(0x2000),
            to: PhysAddr::new(0x2000),
        },
        Hop::Link {
            link: dma_sim::fabric::LinkId::new(hb0(&f), Node::RootComplex),
            dir: Dir::Up,
        },
        Hop::Link {
            link: dma_sim::fabric::LinkId::new(Node::RootComplex, Node::Ram),
            dir: Dir::Up,
        },
        Hop::Deliver(Target::Ram {
            phys: PhysAddr::new(0x2000),
        }),
    ];
    assert_eq!(hops, want, "{}", dma_sim::fabric::format_route(&hops));
    let text = dma_sim::fabric::format_route(&hops);
    assert!(text.starts_with("0000:07:00.0 -> 0000:00:02.0\n"), "{text}");
    assert!(
        text.contains("dma-ranges at hb#0: 0x2000 -> phys 0x2000"),
        "{text}"
    );
    // route_of moves and counts nothing.
    assert_eq!(f.counters().tlps, 0);
    assert!(f.links().is_empty());
}

#[test]
fn p2p_across_the_switch_keeps_bytes_off_the_root_complex_and_ram() {
    let f = fabric();
    let data = pattern(8192 + 100, 3);
    let addr = DmaAddr::new(NVME0_BAR2 + 0xf80);
    f.dma_write(b("04:00.0"), addr, &data).unwrap();
    let mut bar = vec![0u8; data.len()];
    f.cpu_read(PhysAddr::new(NVME0_BAR2 + 0xf80), &mut bar)
        .unwrap();
    assert_eq!(bar, data);
    let n = data.len() as u64;
    assert_eq!(f.root_complex_bytes(), 0);
    assert_eq!(f.ram_bytes(), 0);
    let links = f.links();
    assert_eq!(links.len(), 4, "{links:?}");
    assert_eq!(f.link_bytes(d("04:00.0"), d("02:01.0")).up, n);
    assert_eq!(f.link_bytes(d("02:01.0"), d("01:00.0")).up, n);
    assert_eq!(f.link_bytes(d("02:00.0"), d("01:00.0")).down, n);
    assert_eq!(f.link_bytes(d("03:00.0"), d("02:00.0")).down, n);

    // The CPU writes the BAR (MMIO); the peer reads it P2P: data flows back
    // down the requester's side.
    f.reset_counters();
    let mmio = pattern(3000, 99);
    f.cpu_write(PhysAddr::new(NVME0_BAR2 + 0x10_0000), &mmio)
        .unwrap();
    let mut got = vec![0u8; mmio.len()];
    f.dma_read(b("04:00.0"), DmaAddr::new(NVME0_BAR2 + 0x10_0000), &mut got)
        .unwrap();
    assert_eq!(got, mmio);
    assert_eq!(f.link_bytes(d("03:00.0"), d("02:00.0")).up, 3000);
    assert_eq!(f.link_bytes(d("04:00.0"), d("02:01.0")).down, 3000);
    assert_eq!(f.root_complex_bytes() + f.ram_bytes(), 0);

    let hops = f
        .route_of(b("04:00.0"), DmaAddr::new(NVME0_BAR2), true)
        .unwrap();
    assert_eq!(hops.len(), 5);
    assert_eq!(
        hops.last(),
        Some(&Hop::Deliver(Target::Bar {
            device: b("03:00.0"),
            bar: 2,
            phys: PhysAddr::new(NVME0_BAR2)
        }))
    );
}

#[test]
fn acs_redirect_sends_p2p_through_the_host_bridge_which_forwards_writes_only() {
    let f = fabric();
    // gpu0's downstream port 02:03.0 has RR: its P2P goes up.
    let data = pattern(4096, 11);
    f.dma_write(b("06:00.0"), DmaAddr::new(NVME0_BAR2), &data)
        .unwrap();
    let mut bar = vec![0u8; 4096];
    f.cpu_read(PhysAddr::new(NVME0_BAR2), &mut bar).unwrap();
    assert_eq!(bar, data);
    // Up through rp0 and down again: two root-complex link crossings, no RAM.
    assert_eq!(f.root_complex_bytes(), 2 * 4096);
    assert_eq!(f.ram_bytes(), 0);
    let l = f.link_bytes(d("00:01.0"), hb0(&f));
    assert_eq!((l.up, l.down), (4096, 4096));
    let hops = f
        .route_of(b("06:00.0"), DmaAddr::new(NVME0_BAR2), true)
        .unwrap();
    assert!(hops.contains(&Hop::AcsRedirect {
        port: b("02:03.0"),
        bits: Acs::RR
    }));
    assert!(hops.contains(&Hop::UpstreamForward { port: b("00:01.0") }));
    assert!(hops.iter().any(|h| matches!(
        h,
        Hop::Translate {
            by: Translation::MmioWindow,
            ..
        }
    )));

    // This root complex does not forward P2P reads.
    f.reset_counters();
    let mut buf = [0u8; 64];
    let e = f
        .dma_read(b("06:00.0"), DmaAddr::new(NVME0_BAR2 + 0x40), &mut buf)
        .unwrap_err();
    assert_eq!(e.requester, b("06:00.0"));
    assert_eq!(e.addr, DmaAddr::new(NVME0_BAR2 + 0x40));
    assert!(!e.write);
    match &e.reason {
        FaultReason::HostBridgeP2pRefused {
            provider,
            host_bridge,
            access,
            ..
        } => {
            assert_eq!(*provider, b("03:00.0"));
            assert_eq!(host_bridge, "pci0000:00");
            assert_eq!(*access, Access::Read);
        }
        r => panic!("unexpected {r:?}"),
    }
    assert_eq!(f.faults(), vec![e]);
    assert_eq!(buf, [0u8; 64]);
    assert_eq!(f.counters().faults, 1);
    assert_eq!(f.counters().tlps, 0);
    assert!(f.links().is_empty());
}

#[test]
fn acs_changes_at_run_time_reroute_the_next_tlp() {
    let f = fabric();
    f.dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[1; 512])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 0);
    set_acs(&f, "02:01.0", Acs::SV | Acs::RR | Acs::UF);
    f.dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[2; 512])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 1024);
    let mut bar = [0u8; 512];
    f.cpu_read(PhysAddr::new(NVME0_BAR2), &mut bar).unwrap();
    assert_eq!(bar, [2u8; 512]);
    // Redirect off again: direct once more.
    set_acs(&f, "02:01.0", Acs::SV | Acs::UF);
    f.reset_counters();
    f.dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[3; 512])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 0);
    assert_eq!(f.link_bytes(d("02:00.0"), d("01:00.0")).down, 512);
}

#[test]
fn egress_control_blocks_unless_redirect_is_on() {
    let f = fabric();
    set_acs(&f, "02:01.0", Acs::SV | Acs::EC | Acs::UF);
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[9; 16])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::AcsBlocked {
            port: b("02:01.0"),
            bits: Acs::EC
        }
    );
    let mut bar = [0u8; 16];
    f.cpu_read(PhysAddr::new(NVME0_BAR2), &mut bar).unwrap();
    assert_eq!(bar, [0u8; 16]);
    // RR + EC: redirect wins, the write lands via the host bridge.
    set_acs(&f, "02:01.0", Acs::SV | Acs::RR | Acs::EC | Acs::UF);
    f.dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[9; 16])
        .unwrap();
    f.cpu_read(PhysAddr::new(NVME0_BAR2), &mut bar).unwrap();
    assert_eq!(bar, [9u8; 16]);
    assert_eq!(f.root_complex_bytes(), 32);
}

#[test]
fn redirected_tlp_needs_upstream_forwarding_on_the_root_port() {
    let f = fabric();
    // rp0 has the UF capability; turning it off makes rp0 refuse to send the
    // redirected TLP back out of its ingress link.
    set_acs(&f, "00:01.0", Acs::SV | Acs::RR | Acs::CR);
    let e = f
        .dma_write(b("06:00.0"), DmaAddr::new(NVME0_BAR2), &[5; 8])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::LoopbackRefused { port: b("00:01.0") }
    );
    // Traffic not looping back is unaffected (RAM).
    f.dma_write(b("06:00.0"), DmaAddr::new(0x3000), &[5; 8])
        .unwrap();
    assert_eq!(f.ram_bytes(), 8);
}

#[test]
fn a_refusing_host_bridge_faults_host_bridge_p2p() {
    // Same machine, but the host bridge is not on the allow-list.
    let toml = REFERENCE_TOML.replace("device = 0x2020", "device = 0x1234");
    let m = Machine::from_toml_str("refusing", &toml).unwrap();
    let f = Fabric::from_machine(&m);
    let e = f
        .dma_write(b("06:00.0"), DmaAddr::new(NVME0_BAR2), &[1; 32])
        .unwrap_err();
    match &e.reason {
        FaultReason::HostBridgeP2pRefused {
            provider,
            host_bridge,
            access,
            reasons,
        } => {
            assert_eq!(*provider, b("03:00.0"));
            assert_eq!(host_bridge, "pci0000:00");
            assert_eq!(*access, Access::Write);
            assert!(!reasons.is_empty());
        }
        r => panic!("unexpected {r:?}"),
    }
    assert_eq!(f.faults().len(), 1);
    assert_eq!(f.root_complex_bytes(), 0);
    // Switch-local P2P does not need the host bridge.
    f.dma_write(b("04:00.0"), DmaAddr::new(NVME0_BAR2), &[1; 32])
        .unwrap();
    assert_eq!(f.counters().tlps, 1);
}

#[test]
fn p2p_between_root_ports_goes_through_the_host_bridge() {
    let f = fabric();
    // nvme2 (rp1) to nvme0 (below rp0): no common upstream bridge.
    f.dma_write(b("07:00.0"), DmaAddr::new(NVME0_BAR2 + 0x2000), &[4; 100])
        .unwrap();
    assert_eq!(f.link_bytes(d("00:02.0"), hb0(&f)).up, 100);
    assert_eq!(f.link_bytes(d("00:01.0"), hb0(&f)).down, 100);
    assert_eq!(f.root_complex_bytes(), 200);
    assert_eq!(f.ram_bytes(), 0);
    let mut r = [0u8; 8];
    let e = f
        .dma_read(b("07:00.0"), DmaAddr::new(NVME0_BAR2), &mut r)
        .unwrap_err();
    assert!(matches!(
        e.reason,
        FaultReason::HostBridgeP2pRefused {
            access: Access::Read,
            ..
        }
    ));
}

#[test]
fn own_bar_and_sibling_function_are_delivered_inside_the_device() {
    let f = fabric();
    // gpu0 to its own BAR1.
    f.dma_write(b("06:00.0"), DmaAddr::new(0x50_0000_0000), &[7; 300])
        .unwrap();
    // gpu0 to gpu0-audio's BAR0 (same multi-function device, no function ACS).
    f.dma_write(b("06:00.0"), DmaAddr::new(0xc000_c000), &[8; 300])
        .unwrap();
    assert!(f.links().is_empty(), "{:?}", f.links());
    let mut got = [0u8; 300];
    f.cpu_read(PhysAddr::new(0x50_0000_0000), &mut got).unwrap();
    assert_eq!(got, [7u8; 300]);
    f.cpu_read(PhysAddr::new(0xc000_c000), &mut got).unwrap();
    assert_eq!(got, [8u8; 300]);
    let hops = f
        .route_of(b("06:00.0"), DmaAddr::new(0xc000_c000), true)
        .unwrap();
    assert_eq!(
        hops.first(),
        Some(&Hop::Internal {
            from: b("06:00.0"),
            to: b("06:00.1")
        })
    );
    assert_eq!(f.counters().tlps, 4);
}

#[test]
fn stolen_ram_is_ram_and_holes_fault_with_the_physical_address() {
    let f = fabric();
    // The APU's carve-out is RAM to every DMA master.
    f.dma_write(b("00:08.0"), DmaAddr::new(0x8000_1000), &[6; 64])
        .unwrap();
    assert_eq!(f.ram_bytes(), 64);
    assert_eq!(f.link_bytes(d("00:08.0"), hb0(&f)).up, 64);
    // Hole between RAM banks (above the carve-out, below the MMIO window).
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0xa000_0000), &[1; 8])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::NoMemory {
            phys: PhysAddr::new(0xa000_0000),
            len: 8
        }
    );
    // A gap inside an MMIO window: claimed by the window, no BAR behind it.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0xe000_0000), &[1; 8])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::NoMemory {
            phys: PhysAddr::new(0xe000_0000),
            len: 8
        }
    );
    // Past the end of RAM.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0x90_0000_0000), &[1; 8])
        .unwrap_err();
    assert!(matches!(e.reason, FaultReason::NoMemory { .. }));
    assert_eq!(f.faults().len(), 3);
    assert_eq!(f.counters().faults, 3);
    assert_eq!(f.ram_bytes(), 64);
    // Unknown requester, wrapping transfer.
    let e = f
        .dma_write(b("0000:99:00.0"), DmaAddr::new(0x1000), &[1])
        .unwrap_err();
    assert_eq!(e.reason, FaultReason::UnknownRequester);
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(u64::MAX - 3), &[1; 8])
        .unwrap_err();
    assert_eq!(e.reason, FaultReason::AddressOverflow { len: 8 });
    assert_eq!(f.take_faults().len(), 5);
    assert!(f.faults().is_empty());
}

#[test]
fn a_fault_mid_transfer_leaves_earlier_tlps_landed() {
    let f = fabric();
    // RAM ends at 2 GiB; the carve-out follows, then a hole at 2.5 GiB.
    let start = 0xa000_0000 - 0x200;
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(start), &[0xab; 0x400])
        .unwrap_err();
    assert_eq!(e.addr, DmaAddr::new(0xa000_0000));
    assert_eq!(f.counters().bytes_written, 0x200);
    let mut got = [0u8; 0x200];
    f.cpu_read(PhysAddr::new(start), &mut got).unwrap();
    assert_eq!(got, [0xabu8; 0x200]);
}

#[test]
fn cpu_access_errors_are_typed() {
    let f = fabric();
    assert_eq!(
        f.cpu_write(PhysAddr::new(0xa000_0000), &[1]),
        Err(dma_sim::fabric::CpuAccessError::NotBacked {
            phys: PhysAddr::new(0xa000_0000)
        })
    );
    // Straddling RAM into the hole fails and writes nothing.
    assert!(f
        .cpu_write(PhysAddr::new(0xa000_0000 - 4), &[1; 8])
        .is_err());
    let mut z = [9u8; 4];
    f.cpu_read(PhysAddr::new(0xa000_0000 - 4), &mut z).unwrap();
    assert_eq!(z, [0u8; 4]);
    assert_eq!(
        f.cpu_read(PhysAddr::new(u64::MAX), &mut [0u8; 2]),
        Err(dma_sim::fabric::CpuAccessError::Overflow {
            phys: PhysAddr::new(u64::MAX),
            len: 2
        })
    );
}

#[test]
fn completion_redirect_sends_read_data_through_the_root_complex() {
    // gpu0's port 02:03.0 has RR|CR. nvme1's writes to gpu0's BAR3 go
    // straight across (RR acts on requests entering 02:03.0 from below).
    const GPU_BAR3: u64 = 0x40_0600_0000;
    let f = fabric();
    f.dma_write(b("04:00.0"), DmaAddr::new(GPU_BAR3), &[1; 128])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 0);
    // Its read completions would come back across 02:03.0: CR redirects
    // them to the root complex, which does not forward P2P reads here.
    let e = f
        .dma_read(b("04:00.0"), DmaAddr::new(GPU_BAR3), &mut [0u8; 128])
        .unwrap_err();
    assert!(matches!(
        e.reason,
        FaultReason::HostBridgeP2pRefused {
            access: Access::Read,
            ..
        }
    ));

    // A root complex that forwards reads: the data takes the long way.
    let toml = REFERENCE_TOML.replace("p2p_read = false", "p2p_read = true");
    let f = Fabric::from_machine(&Machine::from_toml_str("reads", &toml).unwrap());
    f.cpu_write(PhysAddr::new(GPU_BAR3), &[0x77; 128]).unwrap();
    f.reset_counters();
    let mut got = [0u8; 128];
    f.dma_read(b("04:00.0"), DmaAddr::new(GPU_BAR3), &mut got)
        .unwrap();
    assert_eq!(got, [0x77; 128]);
    let h = hb0(&f);
    let expect = [
        (d("06:00.0"), d("02:03.0"), 128, 0),
        (d("02:03.0"), d("01:00.0"), 128, 0),
        (d("01:00.0"), d("00:01.0"), 128, 128),
        (d("00:01.0"), h, 128, 128),
        (d("02:01.0"), d("01:00.0"), 0, 128),
        (d("04:00.0"), d("02:01.0"), 0, 128),
    ];
    for (lo, up, u, dn) in expect {
        let lb = f.link_bytes(lo, up);
        assert_eq!((lb.up, lb.down), (u, dn), "{lo} <-> {up}");
    }
    assert_eq!(f.links().len(), expect.len());
    assert_eq!(f.root_complex_bytes(), 256);
    assert_eq!(f.ram_bytes(), 0);
    let hops = f
        .route_of(b("04:00.0"), DmaAddr::new(GPU_BAR3), false)
        .unwrap();
    let text = dma_sim::fabric::format_route(&hops);
    assert!(text.contains("read completion returns:"), "{text}");
    assert!(text.contains("ACS CR on 0000:02:03.0"), "{text}");
    // Writes are unaffected by CR.
    f.reset_counters();
    f.dma_write(b("04:00.0"), DmaAddr::new(GPU_BAR3), &[1; 128])
        .unwrap();
    assert_eq!(f.root_complex_bytes(), 0);
}

#[test]
fn fabric_is_shareable_and_route_of_len_checks_tlp_bounds() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Fabric>();
    let f = fabric();
    let e = f
        .route_of_len(b("04:00.0"), DmaAddr::new(0x1f00), 0x200, true)
        .unwrap_err();
    assert_eq!(e.reason, FaultReason::BadTlpLength { len: 0x200 });
    assert!(f
        .route_of_len(b("04:00.0"), DmaAddr::new(0x1f00), 0x100, true)
        .is_ok());
    assert_eq!(
        e.to_string(),
        "0000:04:00.0 DMA write at 0x1f00: a TLP of 0x200 bytes is empty or crosses a 4 KiB boundary"
    );
    // Concurrent requesters: both transfers land.
    let f = std::sync::Arc::new(f);
    let hs: Vec<_> = [("04:00.0", 0x100_0000u64), ("07:00.0", 0x200_0000)]
        .into_iter()
        .map(|(dev, a)| {
            let f = f.clone();
            std::thread::spawn(move || f.dma_write(b(dev), DmaAddr::new(a), &[0xee; 8192]))
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    assert_eq!(f.ram_bytes(), 2 * 8192);
    assert_eq!(f.counters().tlps, 2 * 32);
}
