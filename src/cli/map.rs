//! `unidma map DEVICE --phys ADDR --len N --dir DIR`: assemble the machine
//! and explain one `dma_map_phys` step by step (segment kind, provider
//! policy, P2P oracle verdict with reasons, arch step, backend, DMA
//! address) with [`DmaDevice::explain_map`](dma_api::device::DmaDevice::explain_map).
//! The range is mapped and unmapped again; nothing stays mapped.
//!
//! Exit codes: 0 mapped; 1 the mapping failed (a `Fallback`-kind refusal
//! prints the typed error and the reason chain; resource shortages too);
//! 2 bad input (unknown device or not an endpoint, bad number, memory the
//! machine does not have, zero length).

use super::{Failure, IommuArg};
use dma_api::device::{ArchStep, Decision};
use dma_api::p2p::Oracle;
use dma_api::port::{BounceCause, PolicyDecision, SegTarget};
use dma_api::topology::DeviceId;
use dma_api::{Direction, DmaError, ErrorKind, PhysAddr, SegKind};
use dma_iommu::DomainType;
use dma_sim::assembly::{Assembly, AssemblyOptions};
use dma_sim::machine::Machine;
use serde_json::{json, Value};
use std::io::Write;

/// A number argument (`--phys`, `--len`) in the one number grammar of
/// machine files and the command line ([`dma_sim::machine::num`]).
pub(crate) fn parse_u64(s: &str) -> Result<u64, String> {
    dma_sim::machine::num::parse_num(s).map_err(|e| e.to_string())
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::Invalid => "invalid",
        ErrorKind::NoResources => "no_resources",
        ErrorKind::Fallback => "fallback",
    }
}

fn owner(m: &Machine, k: SegKind) -> Option<String> {
    match k {
        SegKind::Ram => None,
        SegKind::PeerBar(p) | SegKind::StolenRam(p) | SegKind::DevicePrivate(p) => m
            .topology
            .device(DeviceId::from_provider(p))
            .map(|d| d.bdf.to_string()),
    }
}

fn kind_json(m: &Machine, k: SegKind) -> Value {
    let ty = match k {
        SegKind::Ram => "ram",
        SegKind::PeerBar(_) => "peer_bar",
        SegKind::StolenRam(_) => "stolen_ram",
        SegKind::DevicePrivate(_) => "device_private",
    };
    json!({ "type": ty, "owner": owner(m, k) })
}

/// The JSON form of a decision (documented in the README).
pub fn decision_json(m: &Machine, d: &Decision, iommu: &str) -> Value {
    let policy = d.policy.as_ref().map(|p| match p {
        PolicyDecision::Allow => json!({ "decision": "allow" }),
        PolicyDecision::Refuse(r) => json!({ "decision": "refuse", "reason": r }),
        PolicyDecision::Redirect(to) => json!({ "decision": "redirect", "to": to.to_string() }),
        PolicyDecision::RedirectRanges(r) => json!({
            "decision": "redirect",
            "to": r.first().map(|(p, _)| p.to_string()),
            "ranges": r
                .iter()
                .map(|(p, l)| json!({ "start": p.to_string(), "len": format!("{l:#x}") }))
                .collect::<Vec<_>>(),
        }),
    });
    let route = d.route.as_ref().map(|r| {
        json!({
            "provider": r.provider.to_string(),
            "client": d.client.to_string(),
            "map_type": r.map_type.to_string(),
            "distance": r.distance,
            "read": r.read,
            "write": r.write,
            "reasons": r.reasons,
        })
    });
    let arch = d.arch.as_ref().map(|a| match a {
        ArchStep::Allowed { arch } => json!({ "arch": arch, "allowed": true, "why": null }),
        ArchStep::Vetoed { arch, why } => json!({ "arch": arch, "allowed": false, "why": why }),
    });
    let target = d.target.as_ref().map(|(phys, t)| {
        let (ty, bus) = match t {
            SegTarget::Ram => ("ram", None),
            SegTarget::PeerHostBridge => ("peer_host_bridge", None),
            SegTarget::PeerBus(b) => ("peer_bus", Some(b.to_string())),
        };
        json!({ "type": ty, "phys": phys.to_string(), "bus": bus })
    });
    let error = d
        .error
        .as_ref()
        .map(|e| json!({ "kind": kind_name(e.kind()), "message": e.to_string() }));
    json!({
        "client": d.client.to_string(),
        "iommu": iommu,
        "phys": d.phys.to_string(),
        "len": d.len,
        "dir": d.dir.to_string(),
        "kind": kind_json(m, d.kind),
        "policy": policy,
        "route": route,
        "arch": arch,
        "target": target,
        "backend": if d.backend.is_empty() { Value::Null } else { json!(d.backend) },
        "dma": d.dma.map(|x| x.to_string()),
        "bounce": d.bounce.map(|b| json!({ "slot": b.slot.to_string(), "cause": cause_name(b.cause) })),
        "mapped": d.error.is_none() && d.dma.is_some(),
        "error": error,
    })
}

fn cause_name(c: BounceCause) -> &'static str {
    match c {
        BounceCause::Forced => "forced",
        BounceCause::Unreachable => "unreachable",
        BounceCause::Untrusted => "untrusted",
    }
}

/// What `--force-bounce` did for this mapping, or `None` if it was not
/// asked. Linux `swiotlb=force` (`is_swiotlb_force_bounce`) is checked in
/// dma-direct only (kernel/dma/direct.h `dma_direct_map_phys`); dma-iommu
/// bounces untrusted devices only (drivers/iommu/dma-iommu.c
/// `dev_use_swiotlb`), and a peer bus address takes no backend bounce. So
/// with the IOMMU translating the device the option has no effect, and the
/// chain says so instead of ignoring it silently.
fn force_bounce_effect(d: &Decision, backend: &str) -> String {
    match (&d.target, d.bounce) {
        (_, Some(b)) if b.cause == BounceCause::Forced => "applied".to_string(),
        (Some((_, SegTarget::PeerBus(_))), _) => {
            "not applicable: a peer bus address is not mapped by a backend (Linux swiotlb=force acts in dma-direct only)".to_string()
        }
        _ if backend != "direct" => format!(
            "not applicable: the {backend} backend translates this device (Linux swiotlb=force acts in dma-direct only, kernel/dma/direct.h)"
        ),
        _ => "not applied: the mapping failed before it was bounced".to_string(),
    }
}

fn is_bad_input(e: &DmaError) -> bool {
    matches!(
        e,
        DmaError::UnknownMemory { .. }
            | DmaError::ZeroLength { .. }
            | DmaError::PhysOverflow { .. }
            | DmaError::UnknownDevice { .. }
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    machine: Machine,
    device: &str,
    phys: u64,
    len: u64,
    dir: Direction,
    iommu: IommuArg,
    force_bounce: bool,
    oracle: Oracle,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let mode = iommu.mode();
    let opts = AssemblyOptions {
        iommu: mode,
        force_bounce,
        ..AssemblyOptions::default()
    };
    let name = machine.name.clone();
    // Bridges, ports and bridge-class functions do not map DMA: the one
    // endpoint check `p2p` uses for its clients.
    super::load::endpoint(&machine, device, "device")?;
    let asm = Assembly::build(machine, opts)
        .map_err(|e| Failure::bad_input(format!("cannot assemble machine {name}: {e}")))?;
    let ep = asm.find(device).ok_or_else(|| {
        Failure::bad_input(format!(
            "no endpoint {device:?} in machine {name} (bridges do not map DMA)"
        ))
    })?;
    if len == 0 {
        return Err(Failure::bad_input("--len must be at least 1"));
    }
    let phys = PhysAddr::new(phys);
    if phys.last_of(len).is_none() {
        return Err(Failure::bad_input(format!(
            "{phys} + {len:#x} wraps past the top of the address space"
        )));
    }
    let d = ep.device.explain_map(phys, len, dir);
    if let Some(e) = &d.error {
        if is_bad_input(e) {
            return Err(Failure::bad_input(format!("{}: {e}", ep.bdf)));
        }
    }
    let iommu_name = mode.name();
    let domain = asm
        .iommu
        .as_ref()
        .and_then(|io| io.domains.get(&ep.group))
        .map(|g| (ep.group.0, g.id.0, g.ty.name()));
    let step = match (&d.target, &domain) {
        (Some((_, SegTarget::PeerBus(_))), _) => "bus address: the IOMMU is not used".to_string(),
        (Some(_), Some((g, id, ty))) if *ty != DomainType::Identity.name() => {
            format!("IOMMU domain {id} ({ty}) of group {g} translates")
        }
        (Some(_), _) => "no translation (direct)".to_string(),
        (None, _) => "not reached".to_string(),
    };
    let forced = force_bounce.then(|| force_bounce_effect(&d, &ep.backend_name));
    // The hardware oracle's word on peer memory, beside the dispatcher's
    // (Linux) route: the accesses this direction needs.
    let hardware = match (oracle, &d.route) {
        (Oracle::Hardware, Some(r)) => {
            let t = &asm.machine.topology;
            let (Some(p), Some(c)) = (t.lookup(r.provider), t.lookup(ep.bdf)) else {
                return Err(Failure::bad_input(format!(
                    "{} or {} is not in machine {name}",
                    r.provider, ep.bdf
                )));
            };
            let j = Oracle::Hardware
                .judge(t, p, c)
                .map_err(|e| Failure::bad_input(e.to_string()))?;
            let mut v = Vec::new();
            if dir.device_reads() {
                v.push(j.read);
            }
            if dir.device_writes() {
                v.push(j.write);
            }
            Some(v)
        }
        _ => None,
    };
    if json {
        let mut v = decision_json(&asm.machine, &d, iommu_name);
        v["force_bounce"] = json!(forced);
        v["oracle"] = json!(oracle.name());
        v["hardware_route"] = match &hardware {
            None => Value::Null,
            Some(hs) => Value::Array(
                hs.iter()
                    .map(|h| {
                        json!({
                            "access": h.access.name(),
                            "map_type": h.map_type.name(),
                            "allowed": h.allowed,
                            "reasons": h.reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            ),
        };
        v["iommu_step"] = json!(step);
        v["iommu_domain"] = match &domain {
            Some((g, id, ty)) => json!({ "group": g, "domain": id, "type": ty }),
            None => Value::Null,
        };
        super::write_json(out, &v)?;
    } else {
        // The trace prints providers and host bridges by id; name them.
        let text = crate::names::named(&d.to_string(), &asm.machine);
        writeln!(out, "{text}")?;
        writeln!(
            out,
            "  iommu:   {iommu_name} (backend {}): {step}",
            ep.backend_name
        )?;
        match &hardware {
            None if oracle == Oracle::Linux => {
                writeln!(out, "  oracle:  linux (the dispatcher's)")?
            }
            None => writeln!(
                out,
                "  oracle:  hardware (no peer memory: no P2P route to judge)"
            )?,
            Some(hs) => {
                writeln!(
                    out,
                    "  oracle:  hardware (analysis; the mapping above follows the Linux oracle)"
                )?;
                for h in hs {
                    writeln!(
                        out,
                        "    {}: {} {}",
                        h.access,
                        h.map_type,
                        if h.allowed { "allowed" } else { "refused" }
                    )?;
                    for r in &h.reasons {
                        writeln!(out, "      - {r}")?;
                    }
                }
            }
        }
        if let Some(f) = forced.as_deref().filter(|f| *f != "applied") {
            writeln!(out, "  swiotlb: --force-bounce {f}")?;
        }
        if let Some(e) = &d.error {
            writeln!(out, "  error kind: {}", kind_name(e.kind()))?;
        }
    }
    Ok(if d.error.is_none() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::parse_u64;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x1000"), Ok(0x1000));
        assert_eq!(parse_u64("4K"), Ok(4096));
        assert_eq!(parse_u64("0x40_0000_0000"), Ok(0x40_0000_0000));
        assert_eq!(parse_u64("2M"), Ok(2 << 20));
        assert!(parse_u64("0xzz").is_err());
        assert!(parse_u64("").is_err());
        assert!(parse_u64("17179869184G").is_err());
        assert!(parse_u64("0x1_0000_0000_0000_0000").is_err());
    }
}
