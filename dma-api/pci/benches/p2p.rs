//! P2P oracle speed: a cached route query (target <= 20 ns) and a cold
//! route computation on a generated 10,000-function topology (target <= 20 us).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dma_pci::p2p::{calc_map_type_and_dist, RouteCache};
use dma_pci::topology::{
    Acs, AcsCap, CpuInfo, CpuVendor, DeviceId, DeviceRecord, HostBridgeRecord, PortType, Topology,
};
use dma_pci::Bdf;

/// 34 host bridges (one per domain), each: 4 root ports -> switch upstream
/// port -> 8 downstream ports -> one 8-function endpoint. 296 functions per
/// host bridge, 10,064 in all.
fn big_topology() -> Topology {
    let cpu = CpuInfo {
        vendor: CpuVendor::Intel,
        family: 6,
        x86: true,
    };
    let acs = Some(AcsCap {
        cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
        ctrl: Acs::SV | Acs::UF,
    });
    let mut hbs = Vec::new();
    let mut recs = Vec::new();
    let bdf = |d: u32, b: u8, dev: u8, f: u8| Bdf::new(d, b, dev, f).unwrap();
    for dom in 0..34u32 {
        let mut h = HostBridgeRecord::new(format!("pci{dom:04x}:00"), dom, 0);
        h.ident = Some((0x8086, 0x2020));
        hbs.push(h);
        for rp in 0..4u8 {
            let rp_bdf = bdf(dom, 0, rp + 1, 0);
            let mut r = DeviceRecord::new(rp_bdf, PortType::RootPort, None);
            r.acs = acs;
            recs.push(r);
            let usp_bus = 1 + rp * 10;
            let usp = bdf(dom, usp_bus, 0, 0);
            recs.push(DeviceRecord::new(
                usp,
                PortType::SwitchUpstream,
                Some(rp_bdf),
            ));
            for dp in 0..8u8 {
                let dsp = bdf(dom, usp_bus + 1, dp, 0);
                let mut r = DeviceRecord::new(dsp, PortType::SwitchDownstream, Some(usp));
                r.acs = acs;
                recs.push(r);
                for f in 0..8u8 {
                    let mut e = DeviceRecord::new(
                        bdf(dom, usp_bus + 2 + dp, 0, f),
                        PortType::Endpoint,
                        Some(dsp),
                    );
                    e.multifunction = true;
                    recs.push(e);
                }
            }
        }
    }
    Topology::build(cpu, hbs, recs).expect("generated topology is valid")
}

fn ids(t: &Topology) -> (DeviceId, DeviceId, DeviceId) {
    let l = |s: &str| t.lookup(s.parse().unwrap()).unwrap();
    (
        l("0000:03:00.0"), // under dom 0, RP 1, DSP 1
        l("0000:09:00.7"), // same switch, another DSP
        l("0021:27:00.3"), // other host bridge, deepest port
    )
}

fn bench(c: &mut Criterion) {
    let t = big_topology();
    assert!(t.len() >= 10_000, "{}", t.len());
    let (p, same_switch, far) = ids(&t);
    let mut cache = RouteCache::new();
    cache.verdict(&t, p, same_switch).unwrap();
    c.bench_function("p2p/cached_route", |b| {
        b.iter(|| {
            cache
                .verdict(&t, black_box(p), black_box(same_switch))
                .unwrap()
        })
    });
    c.bench_function("p2p/cold_route_same_switch_10k", |b| {
        b.iter(|| calc_map_type_and_dist(&t, black_box(p), black_box(same_switch)).unwrap())
    });
    c.bench_function("p2p/cold_route_cross_host_bridge_10k", |b| {
        b.iter(|| calc_map_type_and_dist(&t, black_box(p), black_box(far)).unwrap())
    });
    c.bench_function("p2p/cache_miss_after_generation_bump_10k", |b| {
        let mut t2 = t.clone();
        let dsp = t2.lookup("0000:02:01.0".parse().unwrap()).unwrap();
        let mut cache = RouteCache::new();
        b.iter(|| {
            t2.set_acs_ctrl(dsp, Acs::SV | Acs::UF).unwrap();
            cache
                .verdict(&t2, black_box(p), black_box(same_switch))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
