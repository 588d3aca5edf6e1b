//! The P2P oracle against the fabric on the reference server, for every
//! (client, provider memory BAR) pair, without an IOMMU (the DMA address is
//! the BAR's bus address, as a BUS_ADDR mapping would program it):
//! * oracle `BusAddr` ⇒ the fabric delivers both ways without touching the
//!   root complex;
//! * whenever the fabric's TLP reaches the root complex, it succeeds exactly
//!   when the oracle's per-access verdict allows the access;
//! * the pairs where the oracle says "through the host bridge" but the
//!   fabric goes direct are exactly the ones Linux's symmetric ACS check
//!   over-approximates (writes to a provider whose port alone redirects,
//!   and traffic between functions below a redirecting common port).

use dma_api::p2p::{calc_map_type_and_dist, hardware_route, Access, MapType, Oracle};
use dma_api::types::DmaAddr;
use dma_sim::fabric::{Fabric, Hop, Node};
use dma_sim::machine::Machine;

#[test]
fn fabric_agrees_with_the_oracle_where_it_must() {
    let m = Machine::reference().unwrap();
    let f = Fabric::from_machine(&m);
    let t = &m.topology;
    let mut direct_but_oracle_says_host_bridge = Vec::new();
    let mut checked = 0;
    for (cid, c) in t.devices() {
        if c.port.is_bridge() {
            continue;
        }
        for (pid, p) in t.devices() {
            for bar in p.bars.iter().filter(|b| b.is_mem()) {
                let bus = t.bar_bus_addr(pid, bar.index).unwrap();
                let addr = DmaAddr::new(bus.raw());
                let route = calc_map_type_and_dist(t, pid, cid).unwrap();
                let v = route.verdict;
                for write in [true, false] {
                    checked += 1;
                    let hops = f.route_of(c.bdf, addr, write);
                    let via_rc = hops.as_ref().map_or(true, |h| {
                        h.iter().any(|x| {
                            matches!(x, Hop::Link { link, .. }
                                if matches!(link.upper, Node::HostBridge(_)))
                        })
                    });
                    match v.map_type {
                        MapType::BusAddr => {
                            assert!(hops.is_ok() && !via_rc, "{} -> {}", c.bdf, p.bdf);
                        }
                        _ if via_rc => {
                            let allowed = if write { v.write } else { v.read };
                            assert_eq!(
                                hops.is_ok(),
                                allowed,
                                "{} -> {} BAR{} write={write}: {hops:?}",
                                c.bdf,
                                p.bdf,
                                bar.index
                            );
                        }
                        _ => {
                            assert!(hops.is_ok());
                            direct_but_oracle_says_host_bridge.push((
                                c.bdf.to_string(),
                                p.bdf.to_string(),
                                write,
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100, "{checked}");
    // Writes from clients whose ingress port has no redirect to providers
    // under 02:03.0 (RR|CR on the provider side only: the read completions
    // are redirected, so reads agree), plus both directions between gpu0's
    // two functions (the common port 02:03.0's RR counts in Linux, but the
    // device delivers between its functions itself).
    let gpu = ["0000:06:00.0", "0000:06:00.1"];
    let mut want = Vec::new();
    for c in ["0000:03:00.0", "0000:04:00.0", "0000:05:00.0"] {
        for p in gpu {
            want.push((c.to_string(), p.to_string(), true));
        }
    }
    for (c, p) in [(gpu[0], gpu[1]), (gpu[1], gpu[0])] {
        want.push((c.to_string(), p.to_string(), true));
        want.push((c.to_string(), p.to_string(), false));
    }
    want.sort();
    let mut got = direct_but_oracle_says_host_bridge;
    got.sort();
    got.dedup();
    assert_eq!(got, want);
    // The hardware oracle names exactly these cases as the ones where it
    // goes direct and Linux through the host bridge, and agrees with Linux
    // everywhere else.
    let mut differ = Vec::new();
    for (cid, c) in t.devices() {
        if c.port.is_bridge() {
            continue;
        }
        for (pid, p) in t
            .devices()
            .filter(|(_, p)| p.bars.iter().any(|b| b.is_mem()))
        {
            let linux = calc_map_type_and_dist(t, pid, cid).unwrap();
            assert_eq!(Oracle::Linux.route(t, pid, cid).unwrap(), linux);
            let hw = hardware_route(t, pid, cid).unwrap();
            assert_eq!(
                hw.distance, linux.verdict.distance,
                "{} -> {}",
                c.bdf, p.bdf
            );
            for access in [Access::Read, Access::Write] {
                let h = hw.access(access);
                if (h.map_type, h.allowed) != (linux.verdict.map_type, linux.verdict.allows(access))
                {
                    assert_eq!(
                        (linux.verdict.map_type, h.map_type),
                        (MapType::ThruHostBridge, MapType::BusAddr),
                        "{} -> {} {access}",
                        c.bdf,
                        p.bdf
                    );
                    differ.push((
                        c.bdf.to_string(),
                        p.bdf.to_string(),
                        access == Access::Write,
                    ));
                }
            }
        }
    }
    differ.sort();
    assert_eq!(differ, want);
}
