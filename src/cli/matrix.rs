//! `unidma matrix`: the P2P matrix as a compact grid, like
//! `nvidia-smi topo -m`: rows are the providers (registered p2pmem, or the
//! candidates for `--sysfs`, [`crate::providers`]), columns the clients
//! (every endpoint), each cell a short code (legend below the grid), split
//! `R:…/W:…` when reads and writes differ. A route through the host bridge
//! is told apart by where it goes, as `nvidia-smi topo -m` does: inside one
//! host bridge (`PHB`), between two host bridges of one NUMA node (`NODE`),
//! between host bridges on two nodes, across the inter-socket link (`SYS`),
//! or between host bridges when a node is unknown (`XHB`); the nodes
//! compared are the functions' own (`dev_to_node`, what sysfs `numa_node`
//! shows), listed with each device under the grid.
//! `--provider`, `--client` and
//! `--refused` narrow it; `--json` gives the cells as a list with both
//! verdicts and the decisive reason; `--oracle` picks the P2P oracle.
//!
//! Exit codes: 0 printed; 2 bad input (a `--provider` that is not a
//! provider, a `--client` that is not an endpoint, an unknown device: the
//! message names the value).

use super::load::{self, Loaded};
use super::Failure;
use crate::providers::ProviderSet;
use dma_api::arch_port::ArchDma;
use dma_api::p2p::{AccessRoute, Judgement, MapType, Oracle, Reason};
use dma_api::topology::{DeviceId, NumaNode, PortType, Topology};
use dma_sim::machine::Machine;
use serde_json::{json, Value};
use std::fmt;
use std::io::Write;

/// The narrowing options.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    /// `--provider NAME|BDF`: one row.
    pub provider: Option<String>,
    /// `--client NAME|BDF`: one column.
    pub client: Option<String>,
    /// `--refused`: only refused cells.
    pub refused: bool,
}

/// A filter value that names no row or column.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum FilterError {
    /// `--provider` is unknown or not a provider.
    Provider {
        /// The value given.
        value: String,
        /// Why it is not a row.
        why: String,
    },
    /// `--client` is unknown or not an endpoint.
    Client {
        /// The value given.
        value: String,
        /// Why it is not a column.
        why: String,
    },
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider { value, why } => write!(f, "--provider {value:?}: {why}"),
            Self::Client { value, why } => write!(f, "--client {value:?}: {why}"),
        }
    }
}

impl From<FilterError> for Failure {
    fn from(e: FilterError) -> Self {
        Failure::bad_input(e.to_string())
    }
}

/// The code of one access in a cell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Code {
    /// Bus address through at most one switch (or inside one device).
    Pix,
    /// Bus address through several switches.
    Pxb,
    /// Through the host bridge, inside one host bridge.
    Phb,
    /// Through two host bridges of one NUMA node.
    Node,
    /// Through two host bridges on different NUMA nodes.
    Sys,
    /// Through two host bridges, a NUMA node unknown.
    Xhb,
    /// Refused by the oracle.
    No,
    /// Vetoed by the arch.
    Arch,
}

impl Code {
    const fn name(self) -> &'static str {
        match self {
            Code::Pix => "PIX",
            Code::Pxb => "PXB",
            Code::Phb => "PHB",
            Code::Node => "NODE",
            Code::Sys => "SYS",
            Code::Xhb => "XHB",
            Code::No => "NO",
            Code::Arch => "ARCH",
        }
    }
}

/// The legend printed under the grid.
const LEGEND: [(&str, &str); 11] = [
    ("X", "the provider itself"),
    (
        "PIX",
        "bus address through at most one PCIe switch (or inside one device)",
    ),
    ("PXB", "bus address through several PCIe switches"),
    ("PHB", "through one host bridge (root complex)"),
    ("NODE", "through two host bridges of one NUMA node"),
    (
        "SYS",
        "through host bridges on two NUMA nodes (the inter-socket link)",
    ),
    ("XHB", "through two host bridges, a NUMA node unknown"),
    ("NO", "refused by the oracle"),
    ("ARCH", "the arch vetoes the route"),
    ("ERR", "the oracle could not judge the pair"),
    ("R:a/W:b", "reads get a, writes get b"),
];

/// Where a route through the host bridge goes: the provider's and the
/// client's host bridges and NUMA nodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Span {
    /// One host bridge.
    OneBridge,
    /// Two host bridges, both functions on one node.
    SameNode,
    /// Two host bridges, the functions on two nodes.
    TwoNodes,
    /// Two host bridges, a function without a node.
    NodeUnknown,
}

impl Span {
    fn of(t: &Topology, p: DeviceId, c: DeviceId) -> Self {
        let (Some(pd), Some(cd)) = (t.device(p), t.device(c)) else {
            return Self::OneBridge;
        };
        if pd.host_bridge == cd.host_bridge {
            return Self::OneBridge;
        }
        match (pd.numa_node, cd.numa_node) {
            (Some(a), Some(b)) if a == b => Self::SameNode,
            (Some(_), Some(_)) => Self::TwoNodes,
            _ => Self::NodeUnknown,
        }
    }

    const fn code(self) -> Code {
        match self {
            Self::OneBridge => Code::Phb,
            Self::SameNode => Code::Node,
            Self::TwoNodes => Code::Sys,
            Self::NodeUnknown => Code::Xhb,
        }
    }
}

/// One access of one cell.
struct AccessCell {
    code: Code,
    route: AccessRoute,
    veto: Option<String>,
}

impl AccessCell {
    fn refused(&self) -> bool {
        !self.route.allowed || self.veto.is_some()
    }

    /// The reason that decides this access: the arch's veto, else the
    /// refusal, else what sends it through the host bridge, else what
    /// keeps it on the bus.
    fn decisive(&self) -> String {
        if let Some(v) = &self.veto {
            return v.clone();
        }
        let a = &self.route;
        let refusal = |r: &Reason| match r {
            Reason::AccessNotForwarded { access, .. } => *access == a.access,
            Reason::HostBridgeNotAllowListed { .. }
            | Reason::HostBridgeSameOnly { .. }
            | Reason::HostBridgeUnidentified { .. }
            | Reason::EgressBlocked { .. }
            | Reason::UpstreamForwardingOff { .. } => true,
            _ => false,
        };
        let upward = |r: &Reason| {
            matches!(
                r,
                Reason::AcsRedirect { .. }
                    | Reason::IngressRedirect { .. }
                    | Reason::CompletionRedirect { .. }
                    | Reason::NoCommonUpstream
            )
        };
        let bus = |r: &Reason| {
            matches!(
                r,
                Reason::DirectAcross { .. }
                    | Reason::InsideDevice { .. }
                    | Reason::CommonUpstream { .. }
                    | Reason::SameFunction
            )
        };
        let found = if !a.allowed {
            a.reasons.iter().find(|r| refusal(r))
        } else if a.map_type == MapType::BusAddr {
            a.reasons.iter().find(|r| bus(r))
        } else {
            a.reasons.iter().find(|r| upward(r))
        };
        found
            .or(a.reasons.last())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        json!({
            "code": self.code.name(),
            "map_type": self.route.map_type.name(),
            "allowed": self.route.allowed,
            "arch_veto": self.veto,
            "reason": self.decisive(),
        })
    }
}

/// One judged cell (provider ≠ client).
struct Cell {
    provider: DeviceId,
    client: DeviceId,
    read: AccessCell,
    write: AccessCell,
}

impl Cell {
    fn refused(&self) -> bool {
        self.read.refused() || self.write.refused()
    }

    fn text(&self) -> String {
        if self.read.code == self.write.code {
            self.read.code.name().to_string()
        } else {
            format!("R:{}/W:{}", self.read.code.name(), self.write.code.name())
        }
    }

    /// The access whose reason the cell shows: a refused one first, else
    /// the one taking the farther path (the write when equal).
    fn decisive(&self) -> String {
        let rank = |a: &AccessCell| match a.code {
            Code::Pix => 0,
            Code::Pxb => 1,
            Code::Phb => 2,
            Code::Node | Code::Xhb => 3,
            Code::Sys => 4,
            Code::No | Code::Arch => 5,
        };
        if rank(&self.read) > rank(&self.write) {
            self.read.decisive()
        } else {
            self.write.decisive()
        }
    }
}

/// What a grid position holds.
enum Slot {
    /// The provider as its own client.
    Itself,
    /// A judged pair.
    Judged(Box<Cell>),
    /// The oracle's error.
    Error(String),
}

/// A device's header: its escaped name, else its BDF.
fn label(t: &Topology, id: DeviceId) -> String {
    t.device(id).map_or_else(
        || id.to_string(),
        |d| match &d.name {
            Some(n) => crate::escape::token(n),
            None => d.bdf.to_string(),
        },
    )
}

/// A device's NUMA node (`dev_to_node`), `None` for `NUMA_NO_NODE`.
fn node(t: &Topology, id: DeviceId) -> Option<NumaNode> {
    t.device(id).and_then(|d| d.numa_node)
}

fn bdf(t: &Topology, id: DeviceId) -> String {
    t.device(id)
        .map_or_else(|| id.to_string(), |d| d.bdf.to_string())
}

/// `id` up to its root-bus function.
fn chain(t: &Topology, id: DeviceId) -> Vec<DeviceId> {
    let mut v = vec![id];
    while let Some(p) = v.last().and_then(|&c| t.upstream(c)) {
        v.push(p);
    }
    v
}

/// Switches (upstream ports) between `p` and `c` up to their common device.
fn switches(t: &Topology, p: DeviceId, c: DeviceId) -> usize {
    let (cc, pc) = (chain(t, c), chain(t, p));
    let Some((i, j)) = cc
        .iter()
        .enumerate()
        .find_map(|(i, a)| pc.iter().position(|b| b == a).map(|j| (i, j)))
    else {
        return 0;
    };
    cc[..=i]
        .iter()
        .chain(&pc[..j])
        .filter(|id| {
            t.device(**id)
                .is_some_and(|d| d.port == PortType::SwitchUpstream)
        })
        .count()
}

fn access_cell(
    m: &Machine,
    a: &dyn ArchDma,
    j: &Judgement,
    route: &AccessRoute,
    sw: usize,
    span: Span,
) -> AccessCell {
    let mut r = j.route.clone();
    r.verdict.map_type = route.map_type;
    let veto = super::arch::veto(a, m, &r);
    let code = if veto.is_some() {
        Code::Arch
    } else if !route.allowed {
        Code::No
    } else {
        match route.map_type {
            MapType::BusAddr if sw <= 1 => Code::Pix,
            MapType::BusAddr => Code::Pxb,
            MapType::ThruHostBridge => span.code(),
            MapType::NotSupported => Code::No,
        }
    };
    AccessCell {
        code,
        route: route.clone(),
        veto,
    }
}

fn judge(m: &Machine, a: &dyn ArchDma, oracle: Oracle, p: DeviceId, c: DeviceId) -> Slot {
    if p == c {
        return Slot::Itself;
    }
    let t = &m.topology;
    match oracle.judge(t, p, c) {
        Ok(j) => {
            let sw = switches(t, p, c);
            let span = Span::of(t, p, c);
            Slot::Judged(Box::new(Cell {
                provider: p,
                client: c,
                read: access_cell(m, a, &j, &j.read, sw, span),
                write: access_cell(m, a, &j, &j.write, sw, span),
            }))
        }
        Err(e) => Slot::Error(e.to_string()),
    }
}

/// Rows and columns after the `--provider` / `--client` filters.
fn axes(l: &Loaded, f: &Filter) -> Result<(ProviderSet, Vec<DeviceId>), FilterError> {
    let m = &l.machine;
    let mut providers = l.providers();
    if let Some(v) = &f.provider {
        let id = super::p2p::provider(m, &providers, v).map_err(|e| FilterError::Provider {
            value: v.clone(),
            why: e.message,
        })?;
        providers.devices = vec![id];
    }
    let clients = match &f.client {
        Some(v) => vec![
            load::endpoint(m, v, "client").map_err(|e| FilterError::Client {
                value: v.clone(),
                why: e.message,
            })?,
        ],
        None => crate::providers::clients(m),
    };
    Ok((providers, clients))
}

fn shown(slot: &Slot, refused_only: bool) -> bool {
    match slot {
        Slot::Itself => !refused_only,
        Slot::Judged(c) => !refused_only || c.refused(),
        Slot::Error(_) => true,
    }
}

pub(crate) fn run(
    l: &Loaded,
    f: &Filter,
    oracle: Oracle,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let m = &l.machine;
    let t = &m.topology;
    let a = super::arch::backend(m)?;
    let (providers, clients) = axes(l, f)?;
    let grid: Vec<Vec<Slot>> = providers
        .devices
        .iter()
        .map(|&p| clients.iter().map(|&c| judge(m, a, oracle, p, c)).collect())
        .collect();
    let judged = grid
        .iter()
        .flatten()
        .filter(|s| !matches!(s, Slot::Itself))
        .count();
    let errors = grid
        .iter()
        .flatten()
        .filter(|s| matches!(s, Slot::Error(_)))
        .count();
    let empty = super::render::empty_matrix_why(&providers, judged - errors, errors);
    // Rows and columns holding a shown cell.
    let rows: Vec<usize> = (0..grid.len())
        .filter(|&r| grid[r].iter().any(|s| shown(s, f.refused)))
        .collect();
    let cols: Vec<usize> = (0..clients.len())
        .filter(|&c| rows.iter().any(|&r| shown(&grid[r][c], f.refused)))
        .collect();
    if json {
        let mut cells = Vec::new();
        let mut errs = Vec::new();
        for (r, row) in grid.iter().enumerate() {
            for (c, slot) in row.iter().enumerate() {
                match slot {
                    Slot::Judged(cell) if !f.refused || cell.refused() => cells.push(json!({
                        "provider": bdf(t, cell.provider),
                        "provider_name": t.device(cell.provider).and_then(|d| d.name.clone()),
                        "client": bdf(t, cell.client),
                        "client_name": t.device(cell.client).and_then(|d| d.name.clone()),
                        "provider_numa": node(t, cell.provider).map(NumaNode::get),
                        "client_numa": node(t, cell.client).map(NumaNode::get),
                        "code": cell.text(),
                        "read": cell.read.json(),
                        "write": cell.write.json(),
                        "reason": cell.decisive(),
                    })),
                    Slot::Error(e) => errs.push(json!({
                        "provider": bdf(t, providers.devices[r]),
                        "client": bdf(t, clients[c]),
                        "error": e,
                    })),
                    _ => {}
                }
            }
        }
        let v = json!({
            "oracle": oracle.name(),
            "providers": providers.basis.name(),
            "filter": {"provider": f.provider, "client": f.client, "refused": f.refused},
            "cells": cells,
            "errors": errs,
            "empty": empty,
        });
        super::write_json(out, &v)?;
        return Ok(0);
    }
    writeln!(
        out,
        "P2P matrix ({} provider rows, client columns; oracle {oracle}{})",
        providers.basis.name(),
        if f.refused {
            "; refused cells only"
        } else {
            ""
        }
    )?;
    if let Some(why) = empty {
        writeln!(out, "  (empty: {why})")?;
        return Ok(0);
    }
    if rows.is_empty() {
        writeln!(out, "  (no refused cell)")?;
        return Ok(0);
    }
    let text = |s: &Slot| match s {
        Slot::Itself => "X".to_string(),
        Slot::Judged(c) => c.text(),
        Slot::Error(_) => "ERR".to_string(),
    };
    let row_labels: Vec<String> = rows
        .iter()
        .map(|&r| label(t, providers.devices[r]))
        .collect();
    let rw = row_labels.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut widths = Vec::new();
    for &c in &cols {
        let w = rows
            .iter()
            .map(|&r| text(&grid[r][c]).len())
            .chain([label(t, clients[c]).len()])
            .max()
            .unwrap_or(0);
        widths.push(w);
    }
    let mut line = format!("  {:rw$}", "");
    for (k, &c) in cols.iter().enumerate() {
        line.push_str(&format!("  {:<w$}", label(t, clients[c]), w = widths[k]));
    }
    writeln!(out, "{}", line.trim_end())?;
    for (i, &r) in rows.iter().enumerate() {
        let mut line = format!("  {:<rw$}", row_labels[i]);
        for (k, &c) in cols.iter().enumerate() {
            let s = &grid[r][c];
            let cell = if shown(s, f.refused) {
                text(s)
            } else {
                ".".to_string()
            };
            line.push_str(&format!("  {cell:<w$}", w = widths[k]));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(out, "\nLegend:")?;
    for (code, what) in LEGEND {
        if code == "X" && f.refused {
            continue;
        }
        writeln!(out, "  {code:<7} {what}")?;
    }
    if f.refused {
        writeln!(out, "  {:<7} not refused", ".")?;
    }
    let mut listed: Vec<DeviceId> = rows.iter().map(|&r| providers.devices[r]).collect();
    listed.extend(cols.iter().map(|&c| clients[c]));
    listed.sort_by_key(|id| bdf(t, *id));
    listed.dedup();
    if listed.iter().all(|&id| node(t, id).is_none()) {
        writeln!(
            out,
            "  (NUMA nodes unknown: no device here has one, so routes between host bridges are XHB)"
        )?;
    }
    writeln!(out, "\nDevices:")?;
    let lw = listed
        .iter()
        .map(|&id| label(t, id).len())
        .max()
        .unwrap_or(0);
    for id in listed {
        writeln!(
            out,
            "  {:<lw$}  {}  numa={}",
            label(t, id),
            bdf(t, id),
            super::render::numa(node(t, id))
        )?;
    }
    for (r, row) in grid.iter().enumerate() {
        for (c, slot) in row.iter().enumerate() {
            if let Slot::Error(e) = slot {
                writeln!(
                    out,
                    "  error: {} -> {}: {e} (pair not judged)",
                    bdf(t, providers.devices[r]),
                    bdf(t, clients[c])
                )?;
            }
        }
    }
    Ok(0)
}
