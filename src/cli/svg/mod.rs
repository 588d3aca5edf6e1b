//! `unidma topo --svg`: the PCI tree as a standalone SVG picture, drawn
//! without any external program. Boxes are laid out by a deterministic
//! tidy-tree layout ([`layout`]); each shows the BDF and label, the IDs
//! with their PCI names, the port kind and class. P2P routes are coloured
//! as in `topo --dot`: green solid for a bus-address route through a
//! switch, orange dashed through the host bridge (labelled with the allowed
//! accesses and distance); unsupported pairs and pairs the arch vetoes are
//! not drawn, pairs the oracle could not judge are listed under the legend.
//! Providers (the one provider set, [`crate::providers`]) are drawn bold.
//! Every text is escaped for XML ([`xml::escape`]).

mod layout;
mod xml;

use super::render;
use crate::pci_ids::PciIds;
use crate::providers::{Basis, ProviderSet};
use dma_api::arch_port::ArchDma;
use dma_api::p2p::MapType;
use dma_api::topology::{Device, HostBridge, Topology};
use dma_sim::machine::Machine;
use layout::Node;
use std::fmt::Write as _;
use xml::escape;

/// Box width and height, gaps between boxes (pixels).
const BOX_W: f64 = 300.0;
const BOX_H: f64 = 76.0;
const GAP_X: f64 = 24.0;
const GAP_Y: f64 = 56.0;
const MARGIN: f64 = 20.0;
/// Text line height and the characters that fit a box line (monospace,
/// 11 px: about 6.6 px a character).
const LINE: f64 = 14.0;
const CHARS: usize = 44;

/// `s` cut to `max` characters with an ellipsis (the full text is in the
/// box's `<title>`).
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `s` in lines of at most `max` characters, broken at spaces where
/// possible; at most `lines` lines, the last cut with an ellipsis.
fn wrap(s: &str, max: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        let len = cur.chars().count();
        if len > 0 && len + 1 + word.chars().count() > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    out.push(cur);
    if out.len() > lines {
        let rest = out.split_off(lines - 1).join(" ");
        out.push(rest);
    }
    out.into_iter().map(|l| fit(&l, max)).collect()
}

fn bridge_lines(t: &Topology, hb: dma_api::topology::HostBridgeId, h: &HostBridge) -> Vec<String> {
    let ident = t
        .host_bridge_ident(hb)
        .map_or("unidentified".to_string(), |(v, d)| {
            format!("{v:04x}:{d:04x}")
        });
    vec![
        format!("{} [{:04x}:{:02x}]", h.name, h.domain, h.root_bus),
        format!("host bridge, allow-list ident {ident}"),
        format!(
            "iommu {} p2p read {} write {}",
            if h.iommu { "on" } else { "off" },
            render::yn(h.p2p_read),
            render::yn(h.p2p_write)
        ),
        format!("numa node {}", render::numa(h.numa_node)),
    ]
}

fn device_lines(d: &Device, names: &PciIds) -> (Vec<String>, String) {
    let head = match &d.name {
        Some(n) => format!("{} {n}", d.bdf),
        None => d.bdf.to_string(),
    };
    let ident = render::pci_ident(names, d);
    let mut lines = vec![head];
    lines.extend(wrap(&ident, CHARS, 2));
    lines.push(format!("{}, class {:06x}", d.port, d.class));
    let title = format!("{}: {ident}", d.label());
    (lines, title)
}

/// Top-left corner of a box centred at slot `x`, level `depth`, under a
/// header `top` pixels high.
fn corner(x: f64, depth: usize, top: f64) -> (f64, f64) {
    (
        MARGIN + x * (BOX_W + GAP_X),
        top + depth as f64 * (BOX_H + GAP_Y),
    )
}

/// The legend's lines: (swatch, text).
fn legend(providers: &ProviderSet) -> Vec<(&'static str, String)> {
    let who = match providers.basis {
        Basis::Registered => "P2P provider (registered p2pmem)",
        Basis::Candidates => {
            "candidate provider (endpoint with a memory BAR), not registered p2pmem"
        }
    };
    vec![
        (
            "tree",
            "PCI link (bridge or port to the function below)".into(),
        ),
        ("provider", who.into()),
        (
            "bus",
            "P2P by bus address, through a switch (label: accesses, distance)".into(),
        ),
        (
            "host",
            "P2P through the host bridge (label: accesses, distance)".into(),
        ),
        (
            "none",
            "not drawn: unsupported pairs and pairs the arch vetoes".into(),
        ),
    ]
}

fn swatch(o: &mut String, kind: &str, x: f64, y: f64) {
    let _ = match kind {
        "tree" => writeln!(
            o,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="#555555" stroke-width="1.5"/>"##,
            x + 36.0
        ),
        "provider" => writeln!(
            o,
            r##"<rect x="{x}" y="{}" width="36" height="12" fill="#ffffff" stroke="blue" stroke-width="3"/>"##,
            y - 6.0
        ),
        "bus" => writeln!(
            o,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="green" stroke-width="2" marker-end="url(#arrow-green)"/>"##,
            x + 36.0
        ),
        "host" => writeln!(
            o,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="orange" stroke-width="2" stroke-dasharray="6,4" marker-end="url(#arrow-orange)"/>"##,
            x + 36.0
        ),
        _ => Ok(()),
    };
}

/// The whole picture.
pub(crate) fn svg(m: &Machine, names: &PciIds, providers: &ProviderSet, a: &dyn ArchDma) -> String {
    let t = &m.topology;
    let l = layout::layout(t);
    let pos = l.position();
    let matrix = render::matrix(m, providers, a);
    let routes: Vec<_> = matrix
        .rows
        .iter()
        .filter(|(_, veto)| veto.is_none())
        .filter(|(r, _)| r.verdict.map_type != MapType::NotSupported)
        .map(|(r, _)| r)
        .collect();

    let legend = legend(providers);
    let header_lines = 1 + legend.len() + matrix.errors.len();
    let top = MARGIN + header_lines as f64 * (LINE + 4.0) + 16.0;
    let width = 2.0 * MARGIN + l.slots as f64 * (BOX_W + GAP_X) - GAP_X;
    let tree_bottom = top + (l.depth + 1) as f64 * (BOX_H + GAP_Y) - GAP_Y;
    // Routes dip below the lower of their two boxes, more for later ones.
    let dip = |i: usize, dx: f64| 24.0 + (i % 8) as f64 * 10.0 + dx.abs() * 0.08;
    let mut bottom = tree_bottom;
    let mut arcs = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let (Some(p), Some(c)) = (
            t.lookup(r.provider)
                .and_then(|id| pos.get(&Node::Device(id))),
            t.lookup(r.client).and_then(|id| pos.get(&Node::Device(id))),
        ) else {
            continue;
        };
        let (px, py) = corner(p.0, p.1, top);
        let (cx, cy) = corner(c.0, c.1, top);
        let (x0, y0) = (px + BOX_W / 2.0 + 8.0, py + BOX_H);
        let (x1, y1) = (cx + BOX_W / 2.0 - 8.0, cy + BOX_H);
        let low = y0.max(y1) + dip(i, x1 - x0);
        bottom = bottom.max(low);
        arcs.push((*r, x0, y0, x1, y1, low));
    }
    let height = bottom + 2.0 * MARGIN;

    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        o,
        "<title>{}</title>",
        escape(&format!("PCI topology of {}", m.name))
    );
    let _ = writeln!(o, "<defs>");
    for colour in ["green", "orange"] {
        let _ = writeln!(
            o,
            r#"<marker id="arrow-{colour}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{colour}"/></marker>"#
        );
    }
    let _ = writeln!(o, "</defs>");
    let _ = writeln!(
        o,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );

    // Header: title, legend, pairs that could not be judged.
    let mut y = MARGIN + LINE;
    let _ = writeln!(
        o,
        r#"<text x="{MARGIN}" y="{y}" font-size="14" font-weight="bold">{}</text>"#,
        escape(&format!(
            "{} ({}): PCI topology and P2P routes",
            m.name, m.arch
        ))
    );
    let _ = writeln!(o, r#"<g class="legend">"#);
    for (kind, text) in &legend {
        y += LINE + 4.0;
        swatch(&mut o, kind, MARGIN, y - 4.0);
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{y}">{}</text>"#,
            MARGIN + 48.0,
            escape(text)
        );
    }
    for e in &matrix.errors {
        y += LINE + 4.0;
        let _ = writeln!(
            o,
            r#"<text x="{MARGIN}" y="{y}" fill="red">{}</text>"#,
            escape(&format!(
                "error: {} -> {}: {} (pair not judged)",
                e.provider, e.client, e.error
            ))
        );
    }
    let _ = writeln!(o, "</g>");

    // Tree links: parent bottom centre to child top centre.
    let _ = writeln!(
        o,
        r##"<g class="links" stroke="#555555" stroke-width="1.5" fill="none">"##
    );
    for (p, c) in &l.links {
        let (Some(pp), Some(cp)) = (pos.get(p), pos.get(c)) else {
            continue;
        };
        let (px, py) = corner(pp.0, pp.1, top);
        let (cx, cy) = corner(cp.0, cp.1, top);
        let (x0, y0, x1, y1) = (px + BOX_W / 2.0, py + BOX_H, cx + BOX_W / 2.0, cy);
        let mid = (y0 + y1) / 2.0;
        let _ = writeln!(o, r#"<path d="M{x0},{y0} V{mid} H{x1} V{y1}"/>"#);
    }
    let _ = writeln!(o, "</g>");

    // Boxes.
    let _ = writeln!(o, r#"<g class="boxes">"#);
    for (n, x, depth) in &l.placed {
        let (bx, by) = corner(*x, *depth, top);
        let (lines, title, style) = match n {
            Node::Bridge(hb) => match t.host_bridge(*hb) {
                Some(h) => (
                    bridge_lines(t, *hb, h),
                    format!("host bridge {}", h.name),
                    r##"fill="#eeeeee" stroke="#333333" stroke-width="1.5""##,
                ),
                None => continue,
            },
            Node::Device(id) => match t.device(*id) {
                Some(d) => {
                    let (lines, title) = device_lines(d, names);
                    let style = if providers.contains(*id) {
                        r##"fill="#ffffff" stroke="blue" stroke-width="3""##
                    } else {
                        r##"fill="#ffffff" stroke="#333333" stroke-width="1""##
                    };
                    (lines, title, style)
                }
                None => continue,
            },
        };
        let _ = writeln!(o, "<g>");
        let _ = writeln!(o, "<title>{}</title>", escape(&title));
        let _ = writeln!(
            o,
            r#"<rect x="{bx}" y="{by}" width="{BOX_W}" height="{BOX_H}" rx="4" {style}/>"#
        );
        for (i, line) in lines.iter().enumerate() {
            let weight = if i == 0 { r#" font-weight="bold""# } else { "" };
            let _ = writeln!(
                o,
                r#"<text x="{}" y="{}"{weight}>{}</text>"#,
                bx + 6.0,
                by + 4.0 + LINE * (i + 1) as f64,
                escape(&fit(line, CHARS))
            );
        }
        let _ = writeln!(o, "</g>");
    }
    let _ = writeln!(o, "</g>");

    // P2P routes.
    let _ = writeln!(o, r#"<g class="routes" fill="none">"#);
    for (r, x0, y0, x1, y1, low) in &arcs {
        let (colour, dash) = match r.verdict.map_type {
            MapType::BusAddr => ("green", ""),
            _ => ("orange", r#" stroke-dasharray="6,4""#),
        };
        let acc = match (r.verdict.read, r.verdict.write) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, true) => "w",
            (false, false) => "-",
        };
        let label = format!("p2p {acc} d={}", r.verdict.distance);
        let _ = writeln!(o, "<g>");
        let _ = writeln!(
            o,
            "<title>{}</title>",
            escape(&format!(
                "{} -> {}: {} distance {} read {} write {}",
                r.provider,
                r.client,
                r.verdict.map_type,
                r.verdict.distance,
                render::yn(r.verdict.read),
                render::yn(r.verdict.write)
            ))
        );
        let _ = writeln!(
            o,
            r#"<path d="M{x0},{y0} C{x0},{low} {x1},{low} {x1},{y1}" stroke="{colour}" stroke-width="2"{dash} marker-end="url(#arrow-{colour})"/>"#
        );
        // Under the curve's midpoint, (P0 + 3 P1 + 3 P2 + P3) / 8.
        let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1 + 6.0 * low) / 8.0);
        let _ = writeln!(
            o,
            r##"<text x="{mx}" y="{}" fill="{colour}" text-anchor="middle" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
            my + 14.0,
            escape(&label)
        );
        let _ = writeln!(o, "</g>");
    }
    let _ = writeln!(o, "</g>");
    let _ = writeln!(o, "</svg>");
    o
}
