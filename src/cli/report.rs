//! `unidma report`: the machine, its IOMMU groups, p2pmem providers and
//! the P2P matrix.

use super::load::Loaded;
use super::render::{self, hex, size, yn};
use super::Failure;
use crate::pci_ids::PciIds;
use crate::providers::{Basis, ProviderSet};
use dma_api::arch_port::ArchDma;
use dma_api::p2p::Oracle;
use dma_api::topology::CpuVendor;
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Write;

fn vendor_name(v: CpuVendor) -> &'static str {
    match v {
        CpuVendor::Intel => "intel",
        CpuVendor::Amd => "amd",
        CpuVendor::Other => "other",
    }
}

/// What streaming the matrix learnt, for the fields after `p2p`.
#[derive(Default)]
struct MatrixState {
    rows: usize,
    errors: Vec<render::PairError>,
}

type PairIter<'a> =
    Box<dyn Iterator<Item = Result<(dma_api::p2p::Route, Option<String>), render::PairError>> + 'a>;

/// `p2p[]`: the judged pairs, serialised one at a time as the oracle
/// judges them; erring pairs go to [`MatrixState`] for `p2p_errors`.
struct MatrixJson<'a> {
    pairs: RefCell<Option<PairIter<'a>>>,
    state: &'a RefCell<MatrixState>,
}

impl Serialize for MatrixJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs = self.pairs.borrow_mut().take().into_iter().flatten();
        let state = self.state;
        s.collect_seq(pairs.filter_map(|p| match p {
            Ok((r, veto)) => {
                state.borrow_mut().rows += 1;
                Some(render::RouteJson::new(&r, veto))
            }
            Err(e) => {
                state.borrow_mut().errors.push(e);
                None
            }
        }))
    }
}

/// `p2p_empty`: why the matrix is empty (after `p2p` was written).
struct EmptyJson<'a> {
    providers: &'a ProviderSet,
    state: &'a RefCell<MatrixState>,
}

impl Serialize for EmptyJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.state.borrow();
        render::empty_matrix_why(self.providers, st.rows, st.errors.len()).serialize(s)
    }
}

/// `p2p_errors[]` (after `p2p` was written).
struct ErrorsJson<'a>(&'a RefCell<MatrixState>);

impl Serialize for ErrorsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .borrow()
                .errors
                .iter()
                .map(|e| json!({"provider": e.provider, "client": e.client, "error": e.error})),
        )
    }
}

/// The whole report as JSON (fields documented in README.md), in the
/// alphabetical key order of a JSON object; the P2P matrix streams.
#[derive(Serialize)]
struct ReportJson<'a> {
    acs_overrides: &'a [String],
    arch: Value,
    candidates: Vec<Value>,
    devices: Vec<Value>,
    groups: Vec<Vec<String>>,
    host_bridges: Vec<Value>,
    isolation_groups: Vec<Vec<String>>,
    machine: Value,
    memory_map: Vec<Value>,
    notes: &'a [String],
    oracle: &'static str,
    p2p: MatrixJson<'a>,
    p2p_empty: EmptyJson<'a>,
    p2p_errors: ErrorsJson<'a>,
    p2pmem: Vec<Value>,
    providers: &'static str,
    warnings: Vec<Value>,
}

/// Writes the report as pretty JSON to `out`, the matrix pair by pair.
fn write_report_json(
    l: &Loaded,
    names: &PciIds,
    a: &dyn ArchDma,
    oracle: Oracle,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let m = &l.machine;
    let t = &m.topology;
    let cpu = t.cpu();
    let (iommu_groups, isolation_groups) = render::split_groups(m);
    let bdfs = |gs: Vec<render::Group>| -> Vec<Vec<String>> {
        gs.into_iter()
            .map(|(_, g)| {
                g.iter()
                    .filter_map(|id| t.device(*id).map(|d| d.bdf.to_string()))
                    .collect()
            })
            .collect()
    };
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
    let state = RefCell::new(MatrixState::default());
    let report = ReportJson {
        acs_overrides: &l.acs_overrides,
        machine: json!({
            "name": m.name,
            "source": m.source,
            "arch": m.arch.name(),
            "cpu": {"vendor": vendor_name(cpu.vendor), "family": cpu.family},
            "generation": t.generation(),
        }),
        arch: super::arch::arch_json(a),
        host_bridges: t.host_bridge_ids().map(|(id, h)| json!({
            "name": h.name,
            "domain": format!("{:04x}", h.domain),
            "bus": format!("{:02x}", h.root_bus),
            "ident": t.host_bridge_ident(id).map(|(v, d)| format!("{v:04x}:{d:04x}")),
            "iommu": h.iommu,
            "p2p_read": h.p2p_read,
            "p2p_write": h.p2p_write,
            "numa_node": h.numa_node.map(dma_api::topology::NumaNode::get),
            "mmio": h.mmio.windows().iter().map(|w| json!({
                "cpu": hex(w.cpu_start.raw()), "bus": hex(w.bus_start.raw()), "size": w.size
            })).collect::<Vec<_>>(),
        })).collect(),
        devices: t.devices().map(|(_, d)| render::device_json(t, d, names)).collect(),
        memory_map: m.memmap.ranges().iter().map(|r| {
            let (kind, owner) = render::range_kind(m, &r.kind);
            json!({"start": hex(r.start.raw()), "size": r.size, "kind": kind, "owner": owner})
        }).collect(),
        groups: bdfs(iommu_groups),
        isolation_groups: bdfs(isolation_groups),
        p2pmem: crate::providers::provider_set(m, Basis::Registered).devices.into_iter().filter_map(|id| {
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
        }).collect(),
        providers: providers.basis.name(),
        candidates,
        p2p: MatrixJson {
            pairs: RefCell::new(Some(Box::new(render::pairs(m, &providers, a, oracle)))),
            state: &state,
        },
        p2p_empty: EmptyJson {
            providers: &providers,
            state: &state,
        },
        p2p_errors: ErrorsJson(&state),
        notes: &l.notes,
        oracle: oracle.name(),
        warnings: l.warnings.iter()
            .map(|w| json!({"path": w.path, "what": w.what}))
            .collect(),
    };
    super::stream_json(out, &report)
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
/// an empty matrix says why instead of printing a bare header. Rows are
/// written as the oracle judges them (the matrix grows with N²); pairs the
/// oracle cannot judge are listed after the rows.
pub(crate) fn matrix_text(
    o: &mut dyn Write,
    l: &Loaded,
    providers: &ProviderSet,
    a: &dyn ArchDma,
    oracle: Oracle,
) -> std::io::Result<()> {
    let m = &l.machine;
    match providers.basis {
        Basis::Registered => writeln!(
            o,
            "\nP2P matrix (registered p2pmem provider -> client; oracle {oracle}):"
        )?,
        Basis::Candidates => writeln!(
            o,
            "\nP2P matrix (candidate provider -> client; candidates are not registered p2pmem; oracle {oracle}):"
        )?,
    }
    let mut rows = 0usize;
    let mut errors = Vec::new();
    for p in render::pairs(m, providers, a, oracle) {
        let (r, veto) = match p {
            Ok(row) => row,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if rows == 0 {
            writeln!(
                o,
                "  {:<14} {:<14} {:<17} {:>4} {:<5} {:<5} {:<4} reason",
                "provider", "client", "map_type", "dist", "read", "write", "arch"
            )?;
        }
        rows += 1;
        let arch_ok = veto.is_none();
        let reason = render::matrix_reason(&r, veto.as_deref());
        writeln!(
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
        )?;
    }
    if let Some(why) = render::empty_matrix_why(providers, rows, errors.len()) {
        writeln!(o, "  (empty: {why})")?;
    }
    for e in &errors {
        writeln!(
            o,
            "  error: {} -> {}: {} (pair not judged)",
            e.provider, e.client, e.error
        )?;
    }
    Ok(())
}

/// The report as text, written to `out` (the matrix row by row).
fn write_report_text(
    l: &Loaded,
    names: &PciIds,
    a: &dyn ArchDma,
    oracle: Oracle,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    if !l.acs_overrides.is_empty() {
        let _ = writeln!(o, "ACS overrides: pci={}", l.acs_overrides.join(","));
    }
    arch_text(&mut o, a);
    let _ = writeln!(o, "\nPCI tree:");
    o.push_str(&render::tree(m, names));
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
    // IOMMU groups only where an IOMMU exists; the rest are labelled as
    // isolation groups (README, *Commands*).
    let (iommu, isolation) = render::split_groups(m);
    let sections = [
        ("IOMMU groups:", "group", iommu),
        (
            "Isolation groups (no IOMMU on their host bridge: ACS isolation only, nothing enforces it):",
            "isolation group",
            isolation,
        ),
    ];
    for (head, label, groups) in sections {
        if groups.is_empty() && label != "group" {
            continue;
        }
        let _ = writeln!(o, "\n{head}");
        if groups.is_empty() {
            let _ = writeln!(o, "  (none: no host bridge has an IOMMU)");
        }
        for (i, g) in groups {
            let names: Vec<String> = g
                .iter()
                .filter_map(|id| t.device(*id).map(|d| d.label()))
                .collect();
            let _ = writeln!(o, "  {label} {i}: {}", names.join(", "));
        }
    }
    let providers = l.providers();
    p2pmem_text(&mut o, l);
    if providers.basis == Basis::Candidates {
        candidates_text(&mut o, l, &providers);
    }
    out.write_all(o.as_bytes())?;
    o.clear();
    matrix_text(out, l, &providers, a, oracle)?;
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
    out.write_all(o.as_bytes())
}

pub(crate) fn run(
    l: &Loaded,
    names: &PciIds,
    oracle: Oracle,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let a = super::arch::backend(&l.machine)?;
    if json {
        write_report_json(l, names, a, oracle, out)?;
    } else {
        write_report_text(l, names, a, oracle, out)?;
    }
    Ok(0)
}
