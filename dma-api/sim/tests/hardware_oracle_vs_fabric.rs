//! The hardware oracle (`dma_pci::p2p::hardware`) against the fabric: on
//! every example machine and over the ACS settings its ports implement, for
//! every (client, provider memory BAR, access), the oracle's per-access
//! answer is what the fabric does with real bytes:
//! * `BusAddr`: a transfer at the BAR's bus address lands (the BAR holds the
//!   written bytes; a read returns the BAR's bytes) and moves 0 bytes
//!   across the root complex;
//! * `ThruHostBridge`, allowed: it lands and crosses the root complex;
//! * refused: the fabric faults, naming the port the oracle's reason names
//!   (EC block, UF loopback) or the refusing host bridge.
//!
//! Requests between host bridges cannot carry a bus address (the client's
//! switches do not decode another host bridge's window), so those pairs go
//! through the root complex's IOMMU instead: every host bridge gets a test
//! IOMMU that translates addresses at `IOVA_BASE` and up by subtracting it
//! and passes every other address as a bus address (as an identity domain
//! would), so bus-address routing is unchanged. Same-host-bridge pairs the
//! oracle sends through the root complex are checked both ways.
//!
//! ACS settings: each device's implemented RR/CR/UF/EC control bits (other
//! bits kept as in the file). Machines with at most `EXHAUSTIVE_BITS` such
//! bits are checked in every combination; larger ones in every setting of
//! each device with the others at three baselines (as in the file, all off,
//! all on), plus `SAMPLES` seeded random combinations.

use dma_api::p2p::{hardware_route, Access, MapType, Reason};
use dma_api::topology::{Acs, DeviceId, Topology};
use dma_api::types::{DmaAddr, PhysAddr};
use dma_sim::fabric::{Fabric, FaultReason, RcFault, RootComplexIommu};
use dma_sim::machine::Machine;
use std::path::PathBuf;
use std::sync::Arc;

const EXHAUSTIVE_BITS: u32 = 12;
const SAMPLES: usize = 200;
const IOVA_BASE: u64 = 1 << 62;
const LEN: usize = 64;

/// Translates `[IOVA_BASE, ..)` to `addr - IOVA_BASE`, passes the rest.
struct OffsetIommu;

impl RootComplexIommu for OffsetIommu {
    fn translate(
        &self,
        _requester: dma_api::bdf::Bdf,
        addr: DmaAddr,
        _len: u64,
        _write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        Ok(addr.raw().checked_sub(IOVA_BASE).map(PhysAddr::new))
    }
}

fn machines() -> Vec<(String, Machine)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/machines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut v: toml::Value = toml::from_str(&text).unwrap();
            for hb in v
                .get_mut("host_bridge")
                .and_then(|h| h.as_array_mut())
                .unwrap()
            {
                hb.as_table_mut()
                    .unwrap()
                    .insert("iommu".into(), toml::Value::Boolean(true));
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let m = Machine::from_toml_str(&name, &toml::to_string(&v).unwrap()).unwrap();
            (name, m)
        })
        .collect()
}

/// The devices with ACS and the RR/CR/UF/EC bits each implements.
fn acs_knobs(t: &Topology) -> Vec<(DeviceId, Acs, Vec<Acs>)> {
    t.devices()
        .filter_map(|(id, d)| {
            let a = d.acs?;
            let bits: Vec<Acs> = [Acs::RR, Acs::CR, Acs::UF, Acs::EC]
                .into_iter()
                .filter(|b| a.cap.contains(*b))
                .collect();
            (!bits.is_empty()).then_some((id, a.ctrl, bits))
        })
        .collect()
}

/// Control value of a knob for `mask` (bit k = its k-th implemented bit).
fn ctrl_for(base: Acs, bits: &[Acs], mask: u32) -> Acs {
    let mut c = base;
    for (k, b) in bits.iter().enumerate() {
        c.set(*b, mask & (1 << k) != 0);
    }
    c
}

/// A configuration: one mask per knob.
fn configs(knobs: &[(DeviceId, Acs, Vec<Acs>)]) -> Vec<Vec<u32>> {
    let total: u32 = knobs.iter().map(|k| k.2.len() as u32).sum();
    let file: Vec<u32> = knobs
        .iter()
        .map(|(_, ctrl, bits)| {
            bits.iter()
                .enumerate()
                .filter(|(_, b)| ctrl.contains(**b))
                .map(|(k, _)| 1 << k)
                .sum()
        })
        .collect();
    if total <= EXHAUSTIVE_BITS {
        let mut out = Vec::new();
        for all in 0u64..(1u64 << total) {
            let mut rest = all;
            let mut c = Vec::new();
            for k in knobs {
                let n = k.2.len() as u32;
                c.push((rest & ((1 << n) - 1)) as u32);
                rest >>= n;
            }
            out.push(c);
        }
        return out;
    }
    let off = vec![0u32; knobs.len()];
    let on: Vec<u32> = knobs.iter().map(|k| (1u32 << k.2.len()) - 1).collect();
    let mut out = Vec::new();
    for base in [&file, &off, &on] {
        for (i, k) in knobs.iter().enumerate() {
            for m in 0..(1u32 << k.2.len()) {
                let mut c = base.clone();
                c[i] = m;
                out.push(c);
            }
        }
    }
    // xorshift64*, fixed seed: the same sample every run.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..SAMPLES {
        out.push(
            knobs
                .iter()
                .map(|k| {
                    s ^= s >> 12;
                    s ^= s << 25;
                    s ^= s >> 27;
                    (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32 & ((1 << k.2.len()) - 1)
                })
                .collect(),
        );
    }
    out
}

/// The port a refusal names, for matching against the fabric's fault.
fn refusing_port(reasons: &[Reason]) -> Option<dma_api::bdf::Bdf> {
    reasons.iter().find_map(|r| match r {
        Reason::EgressBlocked { port, .. } | Reason::UpstreamForwardingOff { port, .. } => {
            Some(*port)
        }
        _ => None,
    })
}

/// One transfer of `LEN` bytes at `addr`; Ok(crossed the root complex).
fn transfer(
    f: &Fabric,
    client: dma_api::bdf::Bdf,
    addr: DmaAddr,
    bar_phys: PhysAddr,
    access: Access,
    tag: u8,
) -> Result<bool, FaultReason> {
    f.reset_counters();
    let pattern: Vec<u8> = (0..LEN as u8).map(|i| i ^ tag).collect();
    match access {
        Access::Write => {
            f.dma_write(client, addr, &pattern).map_err(|e| e.reason)?;
            let mut back = vec![0u8; LEN];
            f.cpu_read(bar_phys, &mut back).unwrap();
            assert_eq!(back, pattern, "written bytes did not land in the BAR");
        }
        Access::Read => {
            f.cpu_write(bar_phys, &pattern).unwrap();
            let mut got = vec![0u8; LEN];
            f.dma_read(client, addr, &mut got).map_err(|e| e.reason)?;
            assert_eq!(got, pattern, "read returned other bytes than the BAR's");
        }
    }
    Ok(f.root_complex_bytes() > 0)
}

#[test]
fn hardware_oracle_agrees_with_the_fabric_on_every_machine_and_acs_setting() {
    let mut report = Vec::new();
    for (name, m) in machines() {
        let knobs = acs_knobs(&m.topology);
        let cfgs = configs(&knobs);
        let f = Fabric::from_machine(&m).with_iommu(Arc::new(OffsetIommu));
        let mut checked = 0usize;
        let mut kinds = [0usize; 5];
        for cfg in &cfgs {
            {
                let mut t = f.topology().write();
                for ((id, base, bits), mask) in knobs.iter().zip(cfg) {
                    t.set_acs_ctrl(*id, ctrl_for(*base, bits, *mask)).unwrap();
                }
            }
            let t = f.topology().read().clone();
            for (cid, c) in t.devices() {
                if c.port.is_bridge() {
                    continue;
                }
                for (pid, p) in t.devices() {
                    let hr = hardware_route(&t, pid, cid).unwrap();
                    let same_hb = p.host_bridge == c.host_bridge;
                    for bar in p.bars.iter().filter(|b| b.is_mem()) {
                        for access in [Access::Read, Access::Write] {
                            let want = hr.access(access);
                            let ctx = || {
                                format!(
                                    "{name} cfg {cfg:?}: {} {access} {} BAR{}: oracle {:?} {}\n  {:#?}",
                                    c.bdf, p.bdf, bar.index, want.map_type, want.allowed, want.reasons
                                )
                            };
                            let tag = checked as u8;
                            if same_hb {
                                let bus = t.bar_bus_addr(pid, bar.index).unwrap();
                                let got = transfer(
                                    &f,
                                    c.bdf,
                                    DmaAddr::new(bus.raw()),
                                    bar.addr,
                                    access,
                                    tag,
                                );
                                match (want.map_type, want.allowed, got) {
                                    (MapType::BusAddr, true, Ok(false)) => kinds[0] += 1,
                                    (MapType::ThruHostBridge, true, Ok(true)) => kinds[1] += 1,
                                    (_, false, Err(e)) => {
                                        kinds[2] += 1;
                                        if let Some(port) = refusing_port(&want.reasons) {
                                            let named = match &e {
                                                FaultReason::AcsBlocked { port, .. }
                                                | FaultReason::LoopbackRefused { port } => {
                                                    Some(*port)
                                                }
                                                _ => None,
                                            };
                                            assert_eq!(named, Some(port), "{}\n{e}", ctx());
                                        } else {
                                            assert!(
                                                matches!(
                                                    e,
                                                    FaultReason::HostBridgeP2pRefused { access: a, .. }
                                                        if a == access
                                                ),
                                                "{}\n{e}",
                                                ctx()
                                            );
                                        }
                                    }
                                    (_, _, got) => panic!("{}\nfabric: {got:?}", ctx()),
                                }
                            }
                            if !same_hb || want.map_type == MapType::ThruHostBridge {
                                // Through the root complex by IOVA.
                                let iova = DmaAddr::new(IOVA_BASE + bar.addr.raw());
                                let got = transfer(&f, c.bdf, iova, bar.addr, access, tag);
                                assert_ne!(want.map_type, MapType::BusAddr, "{}", ctx());
                                match got {
                                    Ok(crossed) => {
                                        assert!(
                                            crossed && want.allowed,
                                            "{}\nfabric: delivered",
                                            ctx()
                                        );
                                        kinds[3] += 1;
                                    }
                                    Err(e) => {
                                        assert!(
                                            !want.allowed
                                                && matches!(
                                                    e,
                                                    FaultReason::HostBridgeP2pRefused { .. }
                                                ),
                                            "{}\nfabric: {e}",
                                            ctx()
                                        );
                                        kinds[4] += 1;
                                    }
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 0, "{name}: nothing checked");
        report.push(format!(
            "{name}: {} ACS settings of {} knobs, {checked} transfers (direct {}, via root complex {}, refused {}; by IOVA: delivered {}, refused {})",
            cfgs.len(),
            knobs.len(),
            kinds[0],
            kinds[1],
            kinds[2],
            kinds[3],
            kinds[4]
        ));
    }
    eprintln!("{}", report.join("\n"));
}
