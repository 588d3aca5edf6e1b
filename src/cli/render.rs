//! Shared rendering: the tree, JSON shapes of devices and routes, and the
//! P2P matrix over the one provider set ([`crate::providers`]).

use crate::pci_ids::PciIds;
use crate::providers::{Basis, ProviderSet};
use dma_api::arch_port::ArchDma;
use dma_api::memmap::RangeKind;
use dma_api::p2p::{MapType, Oracle, Reason, Route};
use dma_api::topology::{Device, DeviceId, NumaNode, Topology};
use dma_sim::machine::Machine;
use serde_json::{json, Value};
use std::fmt::Write as _;

pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Human size: 64M, 16K, 64G.
pub(crate) fn size(v: u64) -> String {
    for (s, u) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if v >= 1 << u && v.is_multiple_of(1 << u) {
            return format!("{}{s}", v >> u);
        }
    }
    format!("{v}")
}

/// `vvvv:dddd <vendor> <device>`, the IDs and their names as `lspci -nn`
/// pairs them.
pub(crate) fn pci_ident(names: &PciIds, d: &Device) -> String {
    format!(
        "{:04x}:{:04x} {}",
        d.vendor,
        d.device,
        crate::escape::display(&names.describe(d.vendor, d.device))
    )
}

/// `N`, or `none` for `NUMA_NO_NODE`.
pub(crate) fn numa(n: Option<NumaNode>) -> String {
    n.map_or_else(|| "none".to_string(), |n| n.to_string())
}

/// A tree line; the NUMA node is shown where it differs from the host
/// bridge's (`hb_node`, on the bridge's line).
fn dev_line(d: &Device, names: &PciIds, hb_node: Option<NumaNode>) -> String {
    let mut s = format!(
        "{:02x}:{:02x}.{:x} {}",
        d.bdf.bus(),
        d.bdf.dev(),
        d.bdf.func(),
        pci_ident(names, d)
    );
    if let Some(n) = &d.name {
        let _ = write!(s, " ({n})");
    }
    let _ = write!(s, " [{}, class {:06x}]", d.port, d.class);
    if d.numa_node != hb_node {
        let _ = write!(s, " numa={}", numa(d.numa_node));
    }
    if let Some(a) = d.acs {
        let _ = write!(s, " ACS cap {} ctrl {}", a.cap, a.ctrl);
    }
    for b in &d.bars {
        let _ = write!(
            s,
            " BAR{}={}+{}{}",
            b.index,
            hex(b.addr.raw()),
            size(b.size),
            if b.prefetchable { "(pf)" } else { "" }
        );
    }
    s
}

fn tree_rec(
    t: &Topology,
    names: &PciIds,
    id: DeviceId,
    prefix: &str,
    last: bool,
    out: &mut String,
) {
    let Some(d) = t.device(id) else { return };
    let _ = writeln!(
        out,
        "{prefix}{}{}",
        if last { "\\-" } else { "+-" },
        dev_line(
            d,
            names,
            t.host_bridge(d.host_bridge).and_then(|h| h.numa_node)
        )
    );
    let child_prefix = format!("{prefix}{}", if last { "  " } else { "| " });
    let n = d.children.len();
    for (i, c) in d.children.iter().enumerate() {
        tree_rec(t, names, *c, &child_prefix, i + 1 == n, out);
    }
}

/// `lspci -tv`-like tree: one block per host bridge.
pub(crate) fn tree(m: &Machine, names: &PciIds) -> String {
    let t = &m.topology;
    let mut out = String::new();
    for (hb, h) in t.host_bridge_ids() {
        let ident = t
            .host_bridge_ident(hb)
            .map_or("unidentified".to_string(), |(v, d)| {
                format!("{v:04x}:{d:04x}")
            });
        let _ = writeln!(
            out,
            "-[{:04x}:{:02x}]- {} ({ident}) iommu={} p2p read={} write={} numa={}",
            h.domain,
            h.root_bus,
            h.name,
            if h.iommu { "on" } else { "off" },
            if h.p2p_read { "yes" } else { "no" },
            if h.p2p_write { "yes" } else { "no" },
            numa(h.numa_node),
        );
        let roots: Vec<DeviceId> = t.root_devices(hb).map(|(id, _)| id).collect();
        let n = roots.len();
        for (j, r) in roots.into_iter().enumerate() {
            tree_rec(t, names, r, " ", j + 1 == n, &mut out);
        }
    }
    out
}

/// One device as JSON; `vendor_name` and `device_name` come from the PCI
/// ID database (`null` when it does not know the ID).
pub(crate) fn device_json(t: &Topology, d: &Device, names: &PciIds) -> Value {
    let parent = d
        .parent
        .and_then(|p| t.device(p))
        .map(|p| p.bdf.to_string());
    let hb = t.host_bridge(d.host_bridge).map(|h| h.name.clone());
    json!({
        "bdf": d.bdf.to_string(),
        "name": d.name,
        "vendor": format!("{:04x}", d.vendor),
        "device": format!("{:04x}", d.device),
        "vendor_name": names.vendor(d.vendor),
        "device_name": names.device(d.vendor, d.device),
        "class": format!("{:06x}", d.class),
        "kind": d.port.name(),
        "parent": parent,
        "host_bridge": hb,
        "multifunction": d.multifunction,
        "numa_node": d.numa_node.map(NumaNode::get),
        "dma_mask_bits": d.dma_mask.bits(),
        "coherent": d.coherent,
        "untrusted": d.untrusted,
        "acs": d.acs.map(|a| json!({"cap": a.cap.to_string(), "ctrl": a.ctrl.to_string()})),
        "bars": d.bars.iter().map(|b| json!({
            "index": b.index,
            "start": hex(b.addr.raw()),
            "size": b.size,
            "mem64": b.is_64,
            "prefetchable": b.prefetchable,
            "io": !b.is_mem(),
        })).collect::<Vec<_>>(),
    })
}

/// One route as JSON; `veto` is the arch's refusal, if any
/// (`arch_allows` false, `arch_veto` the reason).
pub(crate) fn route_json(r: &Route, veto: Option<&str>) -> Value {
    serde_json::to_value(RouteJson::new(r, veto.map(str::to_string))).unwrap_or(Value::Null)
}

/// One route in JSON, fields in the order (alphabetical) the report has
/// always printed them; serialised straight to the output, so a matrix of
/// a million pairs never exists as a tree of JSON values.
#[derive(serde::Serialize)]
pub(crate) struct RouteJson {
    arch_allows: bool,
    arch_veto: Option<String>,
    client: String,
    distance: u32,
    map_type: &'static str,
    provider: String,
    read: bool,
    reasons: Vec<String>,
    write: bool,
}

impl RouteJson {
    pub(crate) fn new(r: &Route, veto: Option<String>) -> Self {
        Self {
            arch_allows: veto.is_none(),
            arch_veto: veto,
            client: r.client.to_string(),
            distance: r.verdict.distance,
            map_type: r.verdict.map_type.name(),
            provider: r.provider.to_string(),
            read: r.verdict.read,
            reasons: r.reasons.iter().map(|x| x.to_string()).collect(),
            write: r.verdict.write,
        }
    }
}

pub(crate) fn range_kind(m: &Machine, k: &RangeKind) -> (String, Option<String>) {
    let owner = |p: dma_api::types::ProviderId| {
        m.topology
            .device(DeviceId::from_provider(p))
            .map(|d| d.bdf.to_string())
    };
    match k {
        RangeKind::Ram => ("ram".into(), None),
        RangeKind::Bar { provider, bar } => (format!("bar{bar}"), owner(*provider)),
        RangeKind::StolenRam { owner: o } => ("stolen_ram".into(), owner(*o)),
        RangeKind::DevicePrivate { owner: o } => ("device_private".into(), owner(*o)),
    }
}

/// A group: its number (as the assembly numbers it) and its functions.
pub(crate) type Group = (usize, Vec<DeviceId>);

/// The machine's groups (`pci_device_group`), numbered as the assembly
/// numbers them, split by whether an IOMMU enforces them: `(iommu,
/// isolation)`. A group is an IOMMU group only if its host bridge has an
/// IOMMU (Linux creates `iommu_group`s only for devices an IOMMU driver
/// probed); without one the same ACS computation only says which functions
/// could be told apart, and nothing enforces it.
pub(crate) fn split_groups(m: &Machine) -> (Vec<Group>, Vec<Group>) {
    let t = &m.topology;
    let mut iommu = Vec::new();
    let mut isolation = Vec::new();
    for (i, g) in m.iommu_groups().groups().iter().enumerate() {
        let behind_iommu = g
            .first()
            .and_then(|id| t.device(*id))
            .is_some_and(|d| t.host_bridge(d.host_bridge).is_some_and(|h| h.iommu));
        if behind_iommu {
            iommu.push((i, g.clone()));
        } else {
            isolation.push((i, g.clone()));
        }
    }
    (iommu, isolation)
}

/// A pair of the P2P matrix the oracle could not judge.
pub(crate) struct PairError {
    /// The provider: its BDF, or its id when it is not in the topology.
    pub provider: String,
    /// The client, likewise.
    pub client: String,
    /// What the oracle said.
    pub error: String,
}

/// The P2P matrix: the judged pairs and the pairs that erred.
pub(crate) struct Matrix {
    /// Every judged pair with the arch's veto.
    pub rows: Vec<(Route, Option<String>)>,
    /// Pairs whose verdict failed (reported, never dropped).
    pub errors: Vec<PairError>,
}

/// Every ordered (provider, client) pair, provider != client, with the
/// arch's veto (see [`super::arch::veto`]), or the error of a pair the
/// oracle cannot judge; providers are `providers` (the one provider set,
/// [`crate::providers`]), clients every endpoint, judged by `oracle`.
/// Lazy: one pair at a time, so the commands stream a matrix whose size
/// grows with N².
pub(crate) fn pairs<'a>(
    m: &'a Machine,
    providers: &'a ProviderSet,
    a: &'a dyn ArchDma,
    oracle: Oracle,
) -> impl Iterator<Item = Result<(Route, Option<String>), PairError>> + 'a {
    let clients = crate::providers::clients(m);
    let name = move |id: DeviceId| {
        m.topology
            .device(id)
            .map_or_else(|| id.to_string(), |d| d.bdf.to_string())
    };
    providers.devices.iter().flat_map(move |&p| {
        clients
            .clone()
            .into_iter()
            .filter(move |&c| c != p)
            .map(move |c| match oracle.route(&m.topology, p, c) {
                Ok(r) => {
                    let v = super::arch::veto(a, m, &r);
                    Ok((r, v))
                }
                Err(e) => Err(PairError {
                    provider: name(p),
                    client: name(c),
                    error: e.to_string(),
                }),
            })
    })
}

/// The whole matrix by the Linux oracle, collected (see [`pairs`]).
pub(crate) fn matrix(m: &Machine, providers: &ProviderSet, a: &dyn ArchDma) -> Matrix {
    let mut out = Matrix {
        rows: Vec::new(),
        errors: Vec::new(),
    };
    for p in pairs(m, providers, a, Oracle::Linux) {
        match p {
            Ok(row) => out.rows.push(row),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Why a matrix is empty, one line: no provider on its basis, or no client
/// besides the providers. `None` if `rows` is not empty or pairs erred (the
/// errors say why).
pub(crate) fn empty_matrix_why(
    providers: &ProviderSet,
    rows: usize,
    errors: usize,
) -> Option<&'static str> {
    if rows > 0 || errors > 0 {
        None
    } else if providers.is_empty() {
        Some(match providers.basis {
            Basis::Registered => "the machine registers no p2pmem provider",
            Basis::Candidates => "no candidate provider: no endpoint has a memory BAR",
        })
    } else {
        Some("no endpoint besides the providers to be a client")
    }
}

/// The reasons of a route that decided its verdict, decisive one first:
/// what set the map type (for a bus route the common upstream device; for a
/// host-bridge route the first ACS redirect on the path, else the
/// different host bridges or the missing common upstream bridge; for an
/// unsupported route the host bridge that is not allowed; the hardware
/// oracle's per-port reasons likewise), then the refused accesses (a host
/// bridge that does not forward them, or, in hardware mode, a port that
/// blocks them: they decide `read`/`write`).
/// The report's text matrix shows these; `p2p` and JSON keep the whole
/// chain, outermost first.
pub(crate) fn decisive_reasons(r: &Route) -> Vec<&Reason> {
    let rs = &r.reasons;
    let find = |f: &dyn Fn(&Reason) -> bool| rs.iter().find(|x| f(x));
    // A refusal below the host bridge (hardware oracle: an ACS violation
    // or a port without upstream forwarding) decides an access as the host
    // bridge's refusal does.
    let refuses = |x: &Reason| {
        matches!(
            x,
            Reason::AccessNotForwarded { .. }
                | Reason::EgressBlocked { .. }
                | Reason::UpstreamForwardingOff { .. }
        )
    };
    let first = match r.verdict.map_type {
        MapType::BusAddr => find(&|x| {
            matches!(
                x,
                Reason::CommonUpstream { .. }
                    | Reason::SameFunction
                    | Reason::DirectAcross { .. }
                    | Reason::InsideDevice { .. }
            )
        }),
        MapType::ThruHostBridge => find(&|x| {
            matches!(
                x,
                Reason::AcsRedirect { .. }
                    | Reason::IngressRedirect { .. }
                    | Reason::CompletionRedirect { .. }
            )
        })
        .or_else(|| find(&|x| matches!(x, Reason::DifferentHostBridges { .. })))
        .or_else(|| find(&|x| matches!(x, Reason::NoCommonUpstream))),
        MapType::NotSupported => find(&|x| {
            matches!(
                x,
                Reason::HostBridgeNotAllowListed { .. }
                    | Reason::HostBridgeSameOnly { .. }
                    | Reason::HostBridgeUnidentified { .. }
            )
        }),
    };
    let mut out: Vec<&Reason> = first.into_iter().collect();
    let refused: Vec<&Reason> = rs
        .iter()
        .filter(|x| refuses(x) && !out.contains(x))
        .collect();
    out.extend(refused);
    if out.is_empty() {
        out.extend(rs.last());
    }
    out
}

/// The reason column of the report's text matrix: the arch's veto if any,
/// then [`decisive_reasons`], joined by `; `.
pub(crate) fn matrix_reason(r: &Route, veto: Option<&str>) -> String {
    let mut parts: Vec<String> = veto.map(str::to_string).into_iter().collect();
    parts.extend(decisive_reasons(r).iter().map(|x| x.to_string()));
    parts.join("; ")
}

pub(crate) fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::Loaded;
    use super::*;
    use dma_api::types::ProviderId;

    /// Bug: P2P-matrix pairs whose verdict errs were dropped silently (and
    /// the matrix then claimed there was no client). They are reported.
    #[test]
    fn matrix_pairs_that_error_are_reported() {
        let m = Machine::reference().unwrap();
        let l = Loaded {
            machine: m,
            warnings: Vec::new(),
            notes: Vec::new(),
            basis: Basis::Registered,
            acs_overrides: Vec::new(),
            acs_warnings: Vec::new(),
        };
        let ghost = DeviceId::from_provider(ProviderId::new(999));
        let set = ProviderSet {
            basis: Basis::Registered,
            devices: vec![ghost],
        };
        let a = super::super::arch::backend(&l.machine).ok().unwrap();
        let mut o = Vec::new();
        super::super::report::matrix_text(&mut o, &l, &set, a, Oracle::Linux).unwrap();
        let o = String::from_utf8(o).unwrap();
        assert!(
            o.contains("dev#999") && o.contains("error"),
            "an erroring pair is not reported:\n{o}"
        );
        assert!(!o.contains("no endpoint besides the providers"), "{o}");
    }
}
