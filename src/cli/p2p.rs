//! `unidma p2p PROVIDER CLIENT...`: one verdict with its reason chain.
//! The access is allowed only if the oracle allows it and the machine's
//! arch does not veto the route.

use super::render::{route_json, yn};
use super::{load, AccessArg, Failure};
use dma_api::p2p::{calc_map_type_and_dist, distance_many, Access};
use dma_sim::machine::Machine;
use serde_json::json;
use std::io::Write;

pub(crate) fn run(
    m: &Machine,
    provider: &str,
    clients: &[String],
    access: AccessArg,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let p = load::device(m, provider)?;
    let cs = clients
        .iter()
        .map(|c| load::device(m, c))
        .collect::<Result<Vec<_>, _>>()?;
    let want: &[Access] = match access {
        AccessArg::Read => &[Access::Read],
        AccessArg::Write => &[Access::Write],
        AccessArg::Rw => &[Access::Read, Access::Write],
    };
    let routes = cs
        .iter()
        .map(|&c| calc_map_type_and_dist(&m.topology, p, c))
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
    let total = distance_many(&m.topology, p, &cs).ok();
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
            "routes": routes.iter().zip(&vetoes)
                .map(|(r, v)| route_json(r, v.as_deref()))
                .collect::<Vec<_>>(),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
    } else {
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
