//! `unidma topo [--dot | --svg]`: the tree, Graphviz, or an SVG picture
//! ([`super::svg`]), with P2P routes highlighted
//! (green: bus-address route through a switch; orange dashed: through the
//! host bridge, labelled with the allowed accesses; unsupported pairs and
//! pairs the arch vetoes are not drawn). Routes start at the providers of
//! the one provider set ([`crate::providers`]: registered p2pmem, or
//! candidates for `--sysfs`), which are drawn in bold.

use super::load::Loaded;
use super::render::{self, device_json};
use super::Failure;
use crate::escape::{dot_escaped, dot_quoted};
use crate::pci_ids::PciIds;
use crate::providers::{Basis, ProviderSet};
use dma_api::arch_port::ArchDma;
use dma_api::p2p::MapType;
use dma_sim::machine::Machine;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write;

fn node(b: dma_api::Bdf) -> String {
    format!("\"{b}\"")
}

/// A host bridge's node: its name (no internal index in the output).
fn hb_node(name: &str) -> String {
    dot_quoted(&format!("host bridge {name}"))
}

pub(crate) fn dot(m: &Machine, names: &PciIds, providers: &ProviderSet, a: &dyn ArchDma) -> String {
    let t = &m.topology;
    let mut o = String::new();
    let _ = writeln!(o, "digraph {} {{", dot_quoted(&m.name));
    let _ = writeln!(o, "  rankdir=TB; node [shape=box, fontname=\"monospace\"];");
    if providers.basis == Basis::Candidates {
        let _ = writeln!(
            o,
            "  label=\"bold: candidate providers (endpoints with a memory BAR), not registered p2pmem\";"
        );
    }
    for (_, h) in t.host_bridge_ids() {
        let _ = writeln!(
            o,
            "  {} [label=\"{}\\nhost bridge\", shape=house];",
            hb_node(&h.name),
            dot_escaped(&h.name)
        );
    }
    for (id, d) in t.devices() {
        let style = if providers.contains(id) {
            ", style=bold, color=blue"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {} [label=\"{}\\n{}\\n{}\\n{}\"{style}];",
            node(d.bdf),
            d.bdf,
            dot_escaped(d.name.as_deref().unwrap_or("")),
            dot_escaped(&render::pci_ident(names, d)),
            d.port
        );
        match d.parent.and_then(|p| t.device(p)) {
            Some(p) => {
                let _ = writeln!(o, "  {} -> {};", node(p.bdf), node(d.bdf));
            }
            None => {
                let hb = t.host_bridge(d.host_bridge).map_or("", |h| h.name.as_str());
                let _ = writeln!(o, "  {} -> {};", hb_node(hb), node(d.bdf));
            }
        }
    }
    let matrix = render::matrix(m, providers, a);
    for e in &matrix.errors {
        let _ = writeln!(
            o,
            "  // error: {} -> {}: {} (pair not judged)",
            e.provider, e.client, e.error
        );
    }
    for (r, veto) in matrix.rows {
        if veto.is_some() {
            continue; // the arch cannot carry it: not a route
        }
        let (color, style) = match r.verdict.map_type {
            MapType::BusAddr => ("green", "solid"),
            MapType::ThruHostBridge => ("orange", "dashed"),
            MapType::NotSupported => continue,
        };
        let acc = match (r.verdict.read, r.verdict.write) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, true) => "w",
            (false, false) => "-",
        };
        let _ = writeln!(
            o,
            "  {} -> {} [color={color}, style={style}, constraint=false, label=\"p2p {} d={}\"];",
            node(r.provider),
            node(r.client),
            acc,
            r.verdict.distance
        );
    }
    o.push_str("}\n");
    o
}

/// What `topo` prints.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Form {
    /// The `lspci -tv`-like tree (JSON: the devices).
    Tree,
    /// Graphviz (JSON: `{"dot": ...}`).
    Dot,
    /// SVG (JSON: `{"svg": ...}`).
    Svg,
}

pub(crate) fn run(
    l: &Loaded,
    names: &PciIds,
    form: Form,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let m = &l.machine;
    if form != Form::Tree {
        let a = super::arch::backend(m)?;
        let providers = l.providers();
        let (key, text) = match form {
            Form::Svg => ("svg", super::svg::svg(m, names, &providers, a)),
            _ => ("dot", dot(m, names, &providers, a)),
        };
        if json {
            writeln!(out, "{}", json!({ key: text }))?;
        } else {
            write!(out, "{text}")?;
        }
    } else if json {
        let t = &m.topology;
        let v = json!({
            "devices": t.devices().map(|(_, d)| device_json(t, d, names)).collect::<Vec<_>>(),
        });
        super::write_json(out, &v)?;
    } else {
        write!(out, "{}", render::tree(m, names))?;
    }
    Ok(0)
}
