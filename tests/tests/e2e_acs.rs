//! ACS and bus addresses, end to end: a BUS_ADDRESS segment is never produced
//! on a path with ACS redirect (checked on the mapped result for every peer
//! pair of the reference server, under several ACS settings, against an
//! independent walk of the topology), every one that is produced really is
//! carried across the switch by the fabric, and one forced by hand onto a
//! redirected path is sent up by the fabric and faults or misroutes.

use dma_api::port::{MapRequest, SegTarget};
use dma_api::topology::{Acs, DeviceId, Topology};
use dma_api::{BusAddr, Direction, DmaAttrs, DmaError, ErrorKind, PhysAddr, SegKind};
use dma_sim::assembly::{Assembly, AssemblyOptions, IommuMode};
use dma_sim::fabric::{FaultReason, Hop};
use scatterlist::{DmaFlags, SgTable};
use unidma_tests::*;

/// Independent of the oracle: is there a device with ACS redirect on the
/// path client -> common upstream -> provider (including both ends and the
/// common device), or no common upstream device at all?
fn path_has_redirect(t: &Topology, client: DeviceId, provider: DeviceId) -> bool {
    let chain = |mut id: DeviceId| {
        let mut v = vec![id];
        while let Some(up) = t.upstream(id) {
            v.push(up);
            id = up;
        }
        v
    };
    let (c, p) = (chain(client), chain(provider));
    let Some(common) = c.iter().copied().find(|x| p.contains(x)) else {
        return true; // only through the host bridge
    };
    let below = |v: &[DeviceId]| {
        v.iter()
            .copied()
            .take_while(|x| *x != common)
            .collect::<Vec<_>>()
    };
    below(&c)
        .into_iter()
        .chain(below(&p))
        .chain([common])
        .any(|x| t.device(x).is_some_and(|d| d.acs_redirects()))
}

/// Every (client endpoint, provider endpoint, memory BAR) pair: a BAR its
/// owner did not register as p2pmem is refused by name; for a registered
/// one, map a page for the client's writes, check the target against the
/// path, and move bytes for every bus-address mapping.
fn check_all_pairs(a: &Assembly) -> (usize, usize) {
    let topo = a.ctx.topology.read().clone();
    let (mut bus, mut other, mut refused) = (0, 0, 0);
    for client in a.endpoints() {
        let cid = topo.lookup(client.bdf).unwrap();
        for (pid, pd) in topo.devices() {
            if pid == cid || pd.port.is_bridge() {
                continue;
            }
            for bar in pd.bars.iter().filter(|b| b.is_mem()) {
                let at = bar.addr;
                if a.ctx.p2pmem.read().resource_for(pid, at, 0x1000).is_none() {
                    // Registers and unexported BARs are nobody's peer memory.
                    let e = client
                        .device
                        .map_phys(at, 0x1000, Direction::FromDevice, DmaAttrs::empty())
                        .unwrap_err();
                    assert_eq!(
                        e,
                        DmaError::NotPeerMemory {
                            provider: pd.bdf,
                            bar: Some(bar.index),
                            phys: at,
                            len: 0x1000
                        }
                    );
                    assert_eq!(e.kind(), ErrorKind::Invalid);
                    let kind = SegKind::PeerBar(pid.provider_id());
                    let mut t = SgTable::from_ranges(&[(at, 0x1000)], kind, 1 << 31).unwrap();
                    assert!(client
                        .device
                        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
                        .is_err());
                    refused += 1;
                    continue;
                }
                let tr = client.device.explain_map(at, 0x1000, Direction::FromDevice);
                let redirect = path_has_redirect(&topo, cid, pid);
                let label = format!("{} -> {} BAR{}", client.bdf, pd.bdf, bar.index);
                // The mapped table: its one DMA segment is BUS_ADDRESS only on
                // a path without redirect.
                let kind = SegKind::PeerBar(pid.provider_id());
                let mut t = SgTable::from_ranges(&[(at, 0x1000)], kind, 1 << 31).unwrap();
                // Writes are forwarded by this root complex: every pair maps.
                client
                    .device
                    .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                {
                    let flags: Vec<DmaFlags> = t.dma_iter().map(|e| e.dma_flags()).collect();
                    let is_bus = flags.iter().any(|f| f.contains(DmaFlags::BUS_ADDRESS));
                    if redirect {
                        assert!(!is_bus, "{label}: BUS_ADDRESS segment on a redirected path");
                    }
                    assert_eq!(
                        is_bus,
                        matches!(tr.target, Some((_, SegTarget::PeerBus(_)))),
                        "{label}"
                    );
                    client
                        .device
                        .unmap_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
                        .unwrap();
                }
                match tr.target {
                    Some((_, SegTarget::PeerBus(b))) => {
                        assert!(!redirect, "{label}: BUS_ADDRESS on a redirected path\n{tr}");
                        bus += 1;
                        // The fabric carries it without the root complex.
                        let dma = client
                            .device
                            .map_phys(at, 0x1000, Direction::FromDevice, DmaAttrs::empty())
                            .unwrap();
                        assert_eq!(dma.raw(), b.raw(), "{label}");
                        let hops = a.fabric.route_of(client.bdf, dma, true).unwrap();
                        assert!(
                            !hops.iter().any(|h| matches!(
                                h,
                                Hop::AcsRedirect { .. } | Hop::Translate { .. }
                            )),
                            "{label}: {hops:?}"
                        );
                        a.fabric.reset_counters();
                        let data = pattern(0x1000, bus as u8);
                        dev_write(a, client.bdf, dma, &data).unwrap();
                        assert_eq!(cpu_read(a, at, 0x1000), data, "{label}");
                        assert_eq!(a.fabric.root_complex_bytes(), 0, "{label}");
                        client
                            .device
                            .unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
                            .unwrap();
                    }
                    _ => other += 1,
                }
            }
        }
    }
    assert!(refused > 0, "the machine has unregistered BARs");
    (bus, other)
}

fn all_switch_ports_redirect(t: &str) -> String {
    t.replace(
        "acs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|UF\"",
        "acs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|RR|CR|UF\"",
    )
}

fn no_switch_port_redirects(t: &str) -> String {
    t.replace(
        "acs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|RR|CR|UF\"",
        "acs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|UF\"",
    )
}

#[test]
fn bus_addresses_only_on_paths_without_redirect_reference_acs() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = reference_with(mode);
        let (bus, other) = check_all_pairs(&a);
        // nvme0, nvme1, rdma0 see each other's registered p2pmem across the
        // switch (nvme0's BAR 2, rdma0's BAR 0): clients nvme0 1, nvme1 2,
        // rdma0 1 = 4; the gpu functions are behind RR.
        assert_eq!(bus, 4, "{mode:?}");
        assert!(other > 0);
    }
}

#[test]
fn bus_addresses_only_on_paths_without_redirect_all_ports_redirect() {
    let a = variant(all_switch_ports_redirect, AssemblyOptions::default());
    let (bus, _) = check_all_pairs(&a);
    assert_eq!(
        bus, 0,
        "every switch port redirects: no bus address anywhere"
    );
}

#[test]
fn bus_addresses_only_on_paths_without_redirect_no_redirect() {
    let a = variant(no_switch_port_redirects, AssemblyOptions::default());
    let (bus, _) = check_all_pairs(&a);
    // Now gpu0 (its registered VRAM, BAR 1) joins the switch peers nvme0
    // (BAR 2) and rdma0 (BAR 0); gpu0 <-> gpu0-audio stay within one device.
    // Clients nvme0 2, nvme1 3, rdma0 2, gpu0 2, gpu0-audio 3 = 12: every
    // (client, registered range) pair below the switch.
    assert_eq!(bus, 12);
}

#[test]
fn acs_change_at_run_time_reaches_dispatcher_and_fabric() {
    let a = reference_with(IommuMode::Strict);
    let nvme0 = a.device(bdf("03:00.0")).unwrap();
    let gpu = PhysAddr::new(0x50_0000_0000);
    let before = nvme0.explain_map(gpu, 0x1000, Direction::FromDevice);
    assert_eq!(before.target.unwrap().1, SegTarget::PeerHostBridge);
    {
        let mut t = a.ctx.topology.write();
        let dp3 = t.lookup(bdf("02:03.0")).unwrap();
        t.set_acs_ctrl(dp3, Acs::SV | Acs::UF).unwrap();
    }
    let after = nvme0.explain_map(gpu, 0x1000, Direction::FromDevice);
    assert_eq!(
        after.target.unwrap().1,
        SegTarget::PeerBus(BusAddr::new(gpu.raw()))
    );
    let dma = nvme0
        .map_phys(gpu, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let data = pattern(0x1000, 0x31);
    dev_write(&a, bdf("03:00.0"), dma, &data).unwrap();
    assert_eq!(cpu_read(&a, gpu, 0x1000), data);
    assert_eq!(a.fabric.root_complex_bytes(), 0);
}

/// nvme0's own downstream port redirects; map rdma0's BAR as a bus address
/// by hand (bypassing the dispatcher) and let the device use it.
fn forced(mode: IommuMode) -> (Assembly, dma_api::DmaAddr, MapRequest) {
    let a = variant(
        |t| {
            edit_once(
                t,
                "name = \"switch-dp0\"\nkind = \"switch_downstream\"\nparent = \"0000:01:00.0\"\nvendor = 0x10b5\ndevice = 0x8747\nclass = 0x060400\nacs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|UF\"",
                "name = \"switch-dp0\"\nkind = \"switch_downstream\"\nparent = \"0000:01:00.0\"\nvendor = 0x10b5\ndevice = 0x8747\nclass = 0x060400\nacs_cap = \"SV|RR|CR|UF|EC\"\nacs_ctrl = \"SV|RR|CR|UF\"",
            )
        },
        AssemblyOptions {
            iommu: mode,
            ..AssemblyOptions::default()
        },
    );
    let d = a.device(bdf("03:00.0")).unwrap().clone();
    let at = PhysAddr::new(0x40_0400_0000);
    // The dispatcher would never do it:
    let tr = d.explain_map(at, 0x1000, Direction::FromDevice);
    assert_eq!(tr.target.unwrap().1, SegTarget::PeerHostBridge, "{tr}");
    let req = MapRequest {
        phys: at,
        len: 0x1000,
        dir: Direction::FromDevice,
        attrs: DmaAttrs::empty(),
        target: SegTarget::PeerBus(BusAddr::new(at.raw())),
    };
    let dma = d.raw_backend().map(&req).unwrap();
    assert_eq!(dma.raw(), at.raw());
    let hops = a.fabric.route_of(bdf("03:00.0"), dma, true);
    match &hops {
        Ok(h) => assert!(
            h.iter()
                .any(|x| matches!(x, Hop::AcsRedirect { port, .. } if *port == bdf("02:00.0"))),
            "{h:?}"
        ),
        Err(f) => assert!(matches!(f.reason, FaultReason::IommuFault(_)), "{f}"),
    }
    (a, dma, req)
}

#[test]
fn forced_bus_address_on_a_redirected_path_faults_at_the_iommu() {
    let (a, dma, req) = forced(IommuMode::Strict);
    let data = pattern(0x1000, 0x66);
    let f = dev_write(&a, bdf("03:00.0"), dma, &data).unwrap_err();
    // Redirected up to the root complex, where the bus address is an
    // unmapped IOVA.
    assert!(matches!(f.reason, FaultReason::IommuFault(_)), "{f}");
    assert_eq!(f.requester, bdf("03:00.0"));
    assert_eq!(f.addr, dma);
    assert!(a.fabric.faults().contains(&f));
    assert_ne!(
        cpu_read(&a, req.phys, 0x1000),
        data,
        "nothing reached the peer"
    );
    a.device(bdf("03:00.0"))
        .unwrap()
        .raw_backend()
        .unmap(dma, &req)
        .unwrap();
}

#[test]
fn forced_bus_address_without_iommu_misroutes_through_the_root_complex() {
    let (a, dma, req) = forced(IommuMode::Off);
    let data = pattern(0x1000, 0x67);
    // The write is redirected up and comes back down through the root
    // complex: not the P2P path the BUS_ADDRESS mapping claimed.
    dev_write(&a, bdf("03:00.0"), dma, &data).unwrap();
    assert_eq!(a.fabric.root_complex_bytes(), 2 * 0x1000);
    assert_eq!(cpu_read(&a, req.phys, 0x1000), data);
    // And a read on it faults: this root complex does not forward reads.
    let f = dev_read(&a, bdf("03:00.0"), dma, 64).unwrap_err();
    assert!(
        matches!(f.reason, FaultReason::HostBridgeP2pRefused { .. }),
        "{f}"
    );
}
