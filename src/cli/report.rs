//! `unidma report`: the machine, its IOMMU groups, p2pmem providers and
//! the P2P matrix.

use super::load::Loaded;
use super::render::{self, hex, size, yn};
use super::Failure;
use crate::providers::{Basis, ProviderSet};
use dma_api::arch_port::ArchDma;
use dma_api::topology::CpuVendor;
use serde_json::{json, Value};
use std::io::Write;

fn vendor_name(v: CpuVendor) -> &'static str {
    match v {
        CpuVendor::Intel => "intel",
        CpuVendor::Amd => "amd",
        CpuVendor::Other => "other",
    }
}

/// The whole report as JSON (fields documented in README.md).
pub(crate) fn report_json(l: &Loaded, a: &dyn ArchDma) -> Value {
    let m = &l.machine;
    let t = &m.topology;
    let cpu = t.cpu();
    let groups = m.iommu_groups();
    let providers = l.providers();
    let candidates: Vec<Value> = match providers.basis {
        Basis::Registered => Vec::new(),
        Basis::Candidates => providers
            .devices
            .iter()
            .filter_map(|id| t.device(*id))
            .map(|d| {
                json!({
                    "bdf": d.bdf.to_string(),
                    "name": d.name,
                    "bars": d.bars.iter().filter(|b| b.is_mem()).map(|b| b.index).collect::<Vec<_>>(),
                })
            })
            .collect(),
    };
    let matrix = render::matrix(m, &providers, a);
    json!({
        "machine": {
            "name": m.name,
            "source": m.source,
            "arch": m.arch.name(),
            "cpu": {"vendor": vendor_name(cpu.vendor), "family": cpu.family},
            "generation": t.generation(),
        },
        "arch": super::arch::arch_json(a),
        "host_bridges": t.host_bridge_ids().map(|(id, h)| json!({
            "name": h.name,
            "domain": format!("{:04x}", h.domain),
            "bus": format!("{:02x}", h.root_bus),
            "ident": t.host_bridge_ident(id).map(|(v, d)| format!("{v:04x}:{d:04x}")),
            "iommu": h.iommu,
            "p2p_read": h.p2p_read,
            "p2p_write": h.p2p_write,
            "mmio": h.mmio.windows().iter().map(|w| json!({
                "cpu": hex(w.cpu_start.raw()), "bus": hex(w.bus_start.raw()), "size": w.size
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "devices": t.devices().map(|(_, d)| render::device_json(t, d)).collect::<Vec<_>>(),
        "memory_map": m.memmap.ranges().iter().map(|r| {
            let (kind, owner) = render::range_kind(m, &r.kind);
            json!({"start": hex(r.start.raw()), "size": r.size, "kind": kind, "owner": owner})
        }).collect::<Vec<_>>(),
        "groups": groups.groups().iter().map(|g| g.iter()
            .filter_map(|id| t.device(*id).map(|d| d.bdf.to_string()))
            .collect::<Vec<_>>()).collect::<Vec<_>>(),
        "p2pmem": crate::providers::provider_set(m, Basis::Registered).devices.into_iter().filter_map(|id| {
            let d = t.device(id)?;
            let s = m.p2pmem.stats(id)?;
            Some(json!({
                "bdf": d.bdf.to_string(),
                "name": d.name,
                "size": s.size,
                "available": s.available,
                "published": s.published,
                "ranges": m.p2pmem.resources(id).iter().map(|r| json!({
                    "bar": r.bar, "start": hex(r.phys.raw()), "bus": hex(r.bus.raw()), "size": r.size
                })).collect::<Vec<_>>(),
            }))
        }).collect::<Vec<_>>(),
        "providers": providers.basis.name(),
        "candidates": candidates,
        "p2p": matrix.rows.iter()
            .map(|(r, v)| render::route_json(r, v.as_deref()))
            .collect::<Vec<_>>(),
        "p2p_errors": matrix.errors_json(),
        "p2p_empty": render::empty_matrix_why(&providers, matrix.rows.len(), matrix.errors.len()),
        "notes": l.notes,
        "warnings": l.warnings.iter()
            .map(|w| json!({"path": w.path, "what": w.what}))
            .collect::<Vec<_>>(),
    })
}

fn arch_text(o: &mut String, a: &dyn ArchDma) {
    use std::fmt::Write as _;
    let info = a.info();
    let (p2p, why) = super::arch::support(a);
    let _ = writeln!(o, "\nArch {}:", a.name());
    let _ = writeln!(
        o,
        "  cache line {} bytes, default coherent {}, always coherent {}, memory-encryption bit {}",
        a.cache_line_size(),
        yn(info.default_coherent),
        yn(info.always_coherent),
        info.mem_encrypt_bit
            .map_or("none".to_string(), |b| b.to_string())
    );
    let _ = match why {
        Some(w) => writeln!(o, "  P2P: {p2p} ({w})"),
        None => writeln!(o, "  P2P: {p2p}"),
    };
}

/// The `p2pmem providers:` section: the registrations.
fn p2pmem_text(o: &mut String, l: &Loaded) {
    use std::fmt::Write as _;
    let m = &l.machine;
    let t = &m.topology;
    let _ = writeln!(o, "\np2pmem providers:");
    let mut any = false;
    for id in crate::providers::provider_set(m, Basis::Registered).devices {
        let (Some(d), Some(s)) = (t.device(id), m.p2pmem.stats(id)) else {
            continue;
        };
        any = true;
        let _ = writeln!(
            o,
            "  {}: size {} available {} published {}",
            d.label(),
            size(s.size),
            size(s.available),
            yn(s.published)
        );
        for r in m.p2pmem.resources(id) {
            let _ = writeln!(
                o,
                "    BAR{} cpu {} bus {} +{}",
                r.bar,
                hex(r.phys.raw()),
                hex(r.bus.raw()),
                size(r.size)
            );
        }
    }
    if !any {
        let _ = match l.basis {
            Basis::Registered => writeln!(o, "  (none registered)"),
            Basis::Candidates => writeln!(
                o,
                "  (none known: sysfs shows no registrations; see the candidates below)"
            ),
        };
    }
}

/// The `Candidate providers` section (sysfs): endpoints with a memory BAR.
fn candidates_text(o: &mut String, l: &Loaded, providers: &ProviderSet) {
    use std::fmt::Write as _;
    let t = &l.machine.topology;
    let _ = writeln!(
        o,
        "\nCandidate providers (endpoints with a memory BAR; not registered p2pmem):"
    );
    if providers.is_empty() {
        let _ = writeln!(o, "  (none: no endpoint has a memory BAR)");
    }
    for d in providers.devices.iter().filter_map(|id| t.device(*id)) {
        let bars: Vec<String> = d
            .bars
            .iter()
            .filter(|b| b.is_mem())
            .map(|b| {
                format!(
                    "BAR{} {} +{}{}",
                    b.index,
                    hex(b.addr.raw()),
                    size(b.size),
                    if b.prefetchable { " (pf)" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(o, "  {}: {}", d.label(), bars.join(", "));
    }
}

/// The P2P matrix over the provider set, headed by what the providers are;
/// an empty matrix says why instead of printing a bare header.
pub(crate) fn matrix_text(o: &mut String, l: &Loaded, providers: &ProviderSet, a: &dyn ArchDma) {
    use std::fmt::Write as _;
    let m = &l.machine;
    let render::Matrix { rows, errors } = render::matrix(m, providers, a);
    let _ = match providers.basis {
        Basis::Registered => writeln!(o, "\nP2P matrix (registered p2pmem provider -> client):"),
        Basis::Candidates => writeln!(
            o,
            "\nP2P matrix (candidate provider -> client; candidates are not registered p2pmem):"
        ),
    };
    if let Some(why) = render::empty_matrix_why(providers, rows.len(), errors.len()) {
        let _ = writeln!(o, "  (empty: {why})");
        return;
    }
    for e in &errors {
        let _ = writeln!(
            o,
            "  error: {} -> {}: {} (pair not judged)",
            e.provider, e.client, e.error
        );
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "  {:<14} {:<14} {:<17} {:>4} {:<5} {:<5} {:<4} reason",
        "provider", "client", "map_type", "dist", "read", "write", "arch"
    );
    for (r, veto) in rows {
        let arch_ok = veto.is_none();
        let reason = match veto {
            Some(v) => v,
            None => r.reasons.last().map(|x| x.to_string()).unwrap_or_default(),
        };
        let _ = writeln!(
            o,
            "  {:<14} {:<14} {:<17} {:>4} {:<5} {:<5} {:<4} {}",
            r.provider.to_string(),
            r.client.to_string(),
            r.verdict.map_type.name(),
            r.verdict.distance,
            yn(r.verdict.read),
            yn(r.verdict.write),
            yn(arch_ok),
            reason
        );
    }
}

/// The report as text.
pub(crate) fn report_text(l: &Loaded, a: &dyn ArchDma) -> String {
    use std::fmt::Write as _;
    let m = &l.machine;
    let t = &m.topology;
    let cpu = t.cpu();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "machine {} ({}, cpu {} family {:#x}) from {}",
        m.name,
        m.arch,
        vendor_name(cpu.vendor),
        cpu.family,
        m.source
    );
    arch_text(&mut o, a);
    let _ = writeln!(o, "\nPCI tree:");
    o.push_str(&render::tree(m));
    let _ = writeln!(o, "\nMemory map:");
    if m.memmap.ram_bytes() == 0 {
        let _ = writeln!(o, "  (no RAM ranges)");
    }
    for r in m.memmap.ranges() {
        let (kind, owner) = render::range_kind(m, &r.kind);
        let _ = writeln!(
            o,
            "  {:>#18x} +{:<6} {}{}",
            r.start.raw(),
            size(r.size),
            kind,
            owner.map(|b| format!(" of {b}")).unwrap_or_default()
        );
    }
    let _ = writeln!(o, "\nIOMMU groups:");
    for (i, g) in m.iommu_groups().groups().iter().enumerate() {
        let names: Vec<String> = g
            .iter()
            .filter_map(|id| t.device(*id).map(|d| d.label()))
            .collect();
        let _ = writeln!(o, "  group {i}: {}", names.join(", "));
    }
    let providers = l.providers();
    p2pmem_text(&mut o, l);
    if providers.basis == Basis::Candidates {
        candidates_text(&mut o, l, &providers);
    }
    matrix_text(&mut o, l, &providers, a);
    if !l.notes.is_empty() {
        let _ = writeln!(o, "\nNotes:");
        for n in &l.notes {
            let _ = writeln!(o, "  {n}");
        }
    }
    if !l.warnings.is_empty() {
        let _ = writeln!(o, "\nWarnings ({}):", l.warnings.len());
        for w in &l.warnings {
            let _ = writeln!(o, "  {}: {}", w.path, w.what);
        }
    }
    o
}

pub(crate) fn run(l: &Loaded, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
    let a = super::arch::backend(&l.machine)?;
    if json {
        super::write_json(out, &report_json(l, a))?;
    } else {
        write!(out, "{}", report_text(l, a))?;
    }
    Ok(0)
}
