//! The machine's arch backend: picked by name (the root crate is the only
//! place that does), shown in the report, and asked to veto P2P routes the
//! oracle allows but the arch cannot carry (`ArchDma::check_p2p`).

use super::Failure;
use dma_api::arch_port::{ArchDma, P2pSupport, PeerRoute};
use dma_api::p2p::{MapType, Route};
use dma_sim::machine::Machine;
use serde_json::{json, Value};

/// The backend for the machine's `arch`.
pub(crate) fn backend(m: &Machine) -> Result<&'static dyn ArchDma, Failure> {
    dma_arch::by_name(m.arch.name()).map_err(|e| Failure::bad_input(e.to_string()))
}

/// `full`, `same_host_bridge` or `none`, and the arch's reason.
pub(crate) fn support(a: &dyn ArchDma) -> (&'static str, Option<&'static str>) {
    match a.p2p_support() {
        P2pSupport::Full => ("full", None),
        P2pSupport::SameHostBridge { why } => ("same_host_bridge", Some(why)),
        P2pSupport::None { why } => ("none", Some(why)),
    }
}

/// The `arch` object of `report --json`.
pub(crate) fn arch_json(a: &dyn ArchDma) -> Value {
    let info = a.info();
    let (p2p, why) = support(a);
    json!({
        "name": a.name(),
        "cache_line_size": a.cache_line_size(),
        "default_coherent": info.default_coherent,
        "always_coherent": info.always_coherent,
        "p2p": {"support": p2p, "why": why},
        "mem_encrypt_bit": info.mem_encrypt_bit,
    })
}

/// The arch's word on one route: `None` if it may be carried, else the
/// veto as `arch: none (why)` / `arch: same host bridge only (why)`.
///
/// Routes the oracle already refuses are judged as host-bridge routes (the
/// route they would need), so an arch without P2P vetoes every pair.
pub(crate) fn veto(a: &dyn ArchDma, m: &Machine, r: &Route) -> Option<String> {
    let t = &m.topology;
    let hb = |b| {
        t.lookup(b)
            .and_then(|id| t.device(id))
            .map(|d| d.host_bridge)
    };
    let same_hb = matches!((hb(r.provider), hb(r.client)), (Some(x), Some(y)) if x == y);
    let route = match r.verdict.map_type {
        MapType::BusAddr => PeerRoute::BusAddr,
        MapType::ThruHostBridge | MapType::NotSupported => PeerRoute::HostBridge,
    };
    a.check_p2p(route, same_hb)
        .err()
        .map(|_| match a.p2p_support() {
            P2pSupport::SameHostBridge { why } => format!("arch: same host bridge only ({why})"),
            P2pSupport::None { why } => format!("arch: none ({why})"),
            P2pSupport::Full => "arch: refused".to_string(),
        })
}
