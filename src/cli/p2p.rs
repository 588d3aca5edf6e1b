//! `unidma p2p PROVIDER CLIENT...`: one verdict with its reason chain.
//! The access is allowed only if the oracle allows it and the machine's
//! arch does not veto the route.
//!
//! The provider must be in the machine's provider set (the registered
//! p2pmem providers; candidates for `--sysfs`, see [`crate::providers`]),
//! and every client an endpoint; anything else is bad input (exit 2).

use super::load::{self, Loaded};
use super::render::{self, route_json, yn};
use super::{AccessArg, Failure};
use crate::pci_ids::PciIds;
use crate::providers::{Basis, ProviderSet};
use dma_api::p2p::{distance_many, Access, MapType, Oracle};
use dma_api::topology::DeviceId;
use dma_sim::machine::Machine;
use serde_json::json;
use std::io::Write;

/// `p` if it is in `set`, else bad input with the typed refusal
/// ([`crate::providers::NotProvider`]): a bridge or a function without a
/// memory BAR cannot be a provider; an endpoint whose memory BARs are not
/// registered is not one. On the registered basis the message lists the
/// registered providers; on the candidate basis it says what candidates are.
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
    let why = crate::providers::why_not_provider(d, d.label(), set.basis, false).map_or_else(
        || format!("provider {} is not a P2P provider", d.label()),
        |w| w.to_string(),
    );
    let msg = match set.basis {
        Basis::Registered if set.is_empty() => {
            format!("{why}; the machine registers no p2pmem provider")
        }
        Basis::Registered => {
            let names: Vec<String> = set
                .devices
                .iter()
                .filter_map(|id| m.topology.device(*id).map(|d| d.label()))
                .collect();
            format!("{why}; registered providers: {}", names.join(", "))
        }
        Basis::Candidates => format!(
            "{why} (sysfs shows no p2pmem registrations; candidates are the endpoints with a memory BAR)"
        ),
    };
    Err(Failure::bad_input(msg))
}

/// `role bdf (name): vvvv:dddd <vendor> <device>`.
fn ident_line(m: &Machine, names: &PciIds, role: &str, id: DeviceId) -> String {
    match m.topology.device(id) {
        Some(d) => format!("{role} {}: {}", d.label(), render::pci_ident(names, d)),
        None => format!("{role} {id}"),
    }
}

/// What `p2p` is asked: a provider, its clients, the access and the oracle.
pub(crate) struct Query<'a> {
    /// The provider as given (BDF or name).
    pub provider: &'a str,
    /// The clients as given.
    pub clients: &'a [String],
    /// The access to judge.
    pub access: AccessArg,
    /// The oracle that judges.
    pub oracle: Oracle,
}

pub(crate) fn run(
    l: &Loaded,
    names: &PciIds,
    q: &Query<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let Query {
        provider: provider_spec,
        clients,
        access,
        oracle,
    } = *q;
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
        let pci_names: serde_json::Map<String, serde_json::Value> = std::iter::once(p)
            .chain(cs.iter().copied())
            .filter_map(|id| m.topology.device(id))
            .map(|d| (d.bdf.to_string(), names.describe(d.vendor, d.device).into()))
            .collect();
        let v = json!({
            "access": access_name,
            "pci_names": pci_names,
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
        writeln!(out, "{}", ident_line(m, names, "provider", p))?;
        for &c in &cs {
            writeln!(out, "{}", ident_line(m, names, "client", c))?;
        }
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
