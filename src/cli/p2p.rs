//! `unidma p2p PROVIDER CLIENT...`: one verdict with its reason chain.
//! The access is allowed only if the oracle allows it and the machine's
//! arch does not veto the route.
//!
//! The provider must be in the machine's provider set (the registered
//! p2pmem providers; candidates for `--sysfs`, see [`crate::providers`]),
//! and every client an endpoint; anything else is bad input (exit 2).

use super::load::{self, Loaded};
use super::render::{route_json, size, yn};
use super::{AccessArg, Failure};
use crate::providers::{Basis, ProviderSet};
use dma_api::p2p::{distance_many, Access, MapType, Oracle};
use dma_api::topology::DeviceId;
use dma_sim::machine::Machine;
use serde_json::json;
use std::io::Write;

/// `p` if it is in `set`, else bad input naming it: it registers no
/// p2pmem (its memory BARs, if any, are not registered), or, on the
/// candidate basis, it is not an endpoint with a memory BAR.
pub(crate) fn provider(m: &Machine, set: &ProviderSet, spec: &str) -> Result<DeviceId, Failure> {
    let p = load::device(m, spec)?;
    if set.contains(p) {
        return Ok(p);
    }
    let Some(d) = m.topology.device(p) else {
        return Err(Failure::bad_input(format!(
            "no device {spec:?} in machine {}",
            m.name
        )));
    };
    let bars: Vec<String> = d
        .bars
        .iter()
        .filter(|b| b.is_mem())
        .map(|b| format!("BAR{} ({})", b.index, size(b.size)))
        .collect();
    let msg = match set.basis {
        Basis::Registered => {
            let why = match bars.as_slice() {
                [] => "it has no memory BAR".to_string(),
                [one] => format!("its memory {one} is not registered"),
                [rest @ .., last] => {
                    format!(
                        "its memory {} and {last} are not registered",
                        rest.join(", ")
                    )
                }
            };
            let known = if set.is_empty() {
                "the machine registers no p2pmem provider".to_string()
            } else {
                let names: Vec<String> = set
                    .devices
                    .iter()
                    .filter_map(|id| m.topology.device(*id).map(|d| d.label()))
                    .collect();
                format!("registered providers: {}", names.join(", "))
            };
            format!(
                "provider {} registers no p2pmem, so it is not a P2P provider: {why}; {known}",
                d.label()
            )
        }
        Basis::Candidates => {
            let why = match crate::providers::not_endpoint(d) {
                Some(what) => format!("it is {what}"),
                None => "it has no memory BAR".to_string(),
            };
            format!(
                "provider {} is not a candidate provider: {why} (sysfs shows no p2pmem registrations; candidates are the endpoints with a memory BAR)",
                d.label()
            )
        }
    };
    Err(Failure::bad_input(msg))
}

pub(crate) fn run(
    l: &Loaded,
    provider_spec: &str,
    clients: &[String],
    access: AccessArg,
    oracle: Oracle,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let m = &l.machine;
    let p = provider(m, &l.providers(), provider_spec)?;
    let cs = clients
        .iter()
        .map(|c| load::endpoint(m, c, "client"))
        .collect::<Result<Vec<_>, _>>()?;
    let want: &[Access] = match access {
        AccessArg::Read => &[Access::Read],
        AccessArg::Write => &[Access::Write],
        AccessArg::Rw => &[Access::Read, Access::Write],
    };
    let routes = cs
        .iter()
        .map(|&c| oracle.route(&m.topology, p, c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    let arch = super::arch::backend(m)?;
    let vetoes: Vec<Option<String>> = routes
        .iter()
        .map(|r| super::arch::veto(arch, m, r))
        .collect();
    let allowed = vetoes.iter().all(Option::is_none)
        && routes
            .iter()
            .all(|r| want.iter().all(|a| r.verdict.allows(*a)));
    // `pci_p2pdma_distance_many` for Linux; the same sum over the
    // hardware's pair verdicts (no total when a client is not supported).
    let total = match oracle {
        Oracle::Linux => distance_many(&m.topology, p, &cs).ok(),
        Oracle::Hardware => routes.iter().try_fold(0u32, |acc, r| {
            (r.verdict.map_type != MapType::NotSupported)
                .then(|| acc.saturating_add(r.verdict.distance))
        }),
    };
    let access_name = match access {
        AccessArg::Read => "read",
        AccessArg::Write => "write",
        AccessArg::Rw => "rw",
    };
    if json {
        let v = json!({
            "access": access_name,
            "allowed": allowed,
            "distance": total,
            "oracle": oracle.name(),
            "routes": routes.iter().zip(&vetoes)
                .map(|(r, v)| route_json(r, v.as_deref()))
                .collect::<Vec<_>>(),
        });
        super::write_json(out, &v)?;
    } else {
        writeln!(out, "oracle: {oracle}")?;
        for (r, veto) in routes.iter().zip(&vetoes) {
            writeln!(
                out,
                "{} -> {}: {} distance {} read {} write {}",
                r.provider,
                r.client,
                r.verdict.map_type,
                r.verdict.distance,
                yn(r.verdict.read),
                yn(r.verdict.write)
            )?;
            for reason in &r.reasons {
                writeln!(out, "  - {reason}")?;
            }
            if let Some(v) = veto {
                writeln!(out, "  - {v}")?;
            }
        }
        match total {
            Some(d) => writeln!(out, "distance_many: {d}")?,
            None => writeln!(out, "distance_many: not supported")?,
        }
        writeln!(
            out,
            "verdict ({access_name}): {}",
            if allowed { "allowed" } else { "refused" }
        )?;
    }
    Ok(if allowed { 0 } else { 1 })
}
