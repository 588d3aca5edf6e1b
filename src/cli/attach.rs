//! `unidma attach EXPORTER IMPORTER [--access read|write|rw]`: assemble the
//! machine, export the first `--len` bytes of EXPORTER's first registered
//! p2pmem range as a shared buffer, attach IMPORTER and print the
//! negotiation: the dispatcher's verdict per range, the exporter's action
//! (none, redirect, migrate, refuse) with the reason chain, and the DMA
//! segments of one map (then unmapped and detached: nothing stays).
//!
//! The exporter model follows the device: a device owning stolen RAM is an
//! APU (its aperture redirected to the carve-out), a display device a dGPU
//! (migrates to RAM when the importer cannot reach VRAM), anything else a
//! VFIO-style BAR-slice exporter (shares in place or refuses).
//!
//! Exit codes: 0 attached; 1 refused (no common placement, the exporter's
//! refusal); 2 bad input (unknown device, an importer that is not an
//! endpoint, an exporter that registers no p2pmem range of `--len` bytes,
//! a machine that does not assemble).

use super::{AccessArg, Failure, IommuArg};
use dma_api::memmap::RangeKind;
use dma_api::share::{
    Exporter, ImporterCaps, NoOps, Reason, ShareAccess, ShareError, ShareMapping, SharedBuffer,
};
use dma_api::{Direction, PhysAddr};
use dma_consumers::apu::{Apu, Gart};
use dma_consumers::dgpu::{DGpu, VramLayout};
use dma_consumers::vfio::VfioBarExporter;
use dma_sim::assembly::{Assembly, AssemblyOptions};
use dma_sim::machine::Machine;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;

/// The importer's access for `--access`.
fn access(a: AccessArg) -> ShareAccess {
    match a {
        AccessArg::Read => ShareAccess::Read,
        AccessArg::Write => ShareAccess::Write,
        AccessArg::Rw => ShareAccess::ReadWrite,
    }
}

fn reasons_json(r: &[Reason]) -> Vec<Value> {
    r.iter()
        .map(|r| json!({ "source": r.source.name(), "text": r.text }))
        .collect()
}

/// The exporter driver for `bdf` and its buffer over `[at, at + len)`.
fn export(
    asm: &Assembly,
    bdf: dma_api::Bdf,
    range: (PhysAddr, u64),
    len: u64,
) -> Result<(&'static str, SharedBuffer, Arc<dyn Exporter>), ShareError> {
    let m = &asm.machine;
    let id = m.topology.lookup(bdf);
    let class = id
        .and_then(|i| m.topology.device(i))
        .map_or(0, |d| d.class >> 16);
    let carve = m.memmap.ranges().iter().find_map(|r| match r.kind {
        RangeKind::StolenRam { owner } if Some(owner) == id.map(|i| i.provider_id()) => {
            Some((r.start, r.size))
        }
        _ => None,
    });
    if let Some((carve, _)) = carve.filter(|c| c.1 >= range.1) {
        let gart = Gart::identity(range.0, carve, range.1 / 4096);
        let apu = Apu::probe(asm.ctx.clone(), bdf, gart)?;
        let buf = apu.export(0, len)?;
        return Ok(("apu", buf, apu));
    }
    if class == 0x03 {
        let layout = VramLayout {
            bar: range.0,
            vram: range.1,
            window: range.1,
        };
        let g = DGpu::new(asm.ctx.clone(), bdf, layout, true);
        let buf = g.export(0, len)?;
        return Ok(("dgpu", buf, g));
    }
    let v = VfioBarExporter::new(asm.ctx.clone(), bdf, range.0);
    let buf = v.export(&[(0, len)])?;
    Ok(("vfio", buf, v))
}

fn segments_json(m: &ShareMapping) -> Vec<Value> {
    m.segments()
        .iter()
        .map(|s| {
            let route = match s.route {
                dma_api::SegmentRoute::Ram => "ram",
                dma_api::SegmentRoute::PeerHostBridge => "peer_host_bridge",
                dma_api::SegmentRoute::PeerBus => "peer_bus",
            };
            json!({ "dma": s.dma.to_string(), "len": s.len, "route": route })
        })
        .collect()
}

/// Runs `unidma attach`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    machine: Machine,
    exporter: &str,
    importer: &str,
    acc: AccessArg,
    len: u64,
    iommu: IommuArg,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let name = machine.name.clone();
    let eid = super::load::device(&machine, exporter)?;
    super::load::endpoint(&machine, importer, "importer")?;
    if len == 0 || !len.is_multiple_of(4096) {
        return Err(Failure::bad_input(
            "--len must be a non-zero multiple of 4096",
        ));
    }
    let range = machine
        .p2pmem
        .resources(eid)
        .iter()
        .find(|r| r.size >= len)
        .map(|r| (r.phys, r.size))
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "exporter {exporter} registers no p2pmem range of {len:#x} bytes"
            ))
        })?;
    let opts = AssemblyOptions {
        iommu: iommu.mode(),
        ..AssemblyOptions::default()
    };
    let asm = Assembly::build(machine, opts)
        .map_err(|e| Failure::bad_input(format!("cannot assemble machine {name}: {e}")))?;
    let ebdf = asm
        .machine
        .topology
        .device(eid)
        .map(|d| d.bdf)
        .ok_or_else(|| Failure::bad_input(format!("no device {exporter:?}")))?;
    let imp = asm
        .find(importer)
        .ok_or_else(|| Failure::bad_input(format!("no endpoint {importer:?} in machine {name}")))?;
    let (model, buf, _drv) = export(&asm, ebdf, range, len)
        .map_err(|e| Failure::bad_input(format!("export from {ebdf}: {e}")))?;
    let caps = ImporterCaps::any(access(acc), true);
    let dir: Direction = caps.access.direction();
    let attached = buf.attach(imp.device.clone(), caps, Arc::new(NoOps));
    let (neg, mapping, error) = match attached {
        Ok(mut att) => {
            let n = att.negotiation().ok();
            let m = att.map(dir);
            let (segs, err) = match m {
                Ok(m) => {
                    let s = segments_json(&m);
                    att.unmap(m.id())
                        .map_err(|e| Failure::bad_input(format!("unmap: {e}")))?;
                    (Some((s, m)), None)
                }
                Err(e) => (None, Some(e)),
            };
            att.detach()
                .map_err(|e| Failure::bad_input(format!("detach: {e}")))?;
            (n, segs, err)
        }
        Err(e) => (None, None, Some(e)),
    };
    let refused_reasons: Vec<Reason> = match &error {
        Some(
            ShareError::Refused { reasons, .. } | ShareError::NoCommonPlacement { reasons, .. },
        ) => reasons.clone(),
        _ => Vec::new(),
    };
    if json {
        let verdicts: Vec<Value> = neg
            .as_ref()
            .map(|n| {
                n.verdicts
                    .iter()
                    .map(|v| {
                        let (p, r) = match &v.placement {
                            Ok(p) => (json!(p.name()), Vec::new()),
                            Err(r) => (Value::Null, reasons_json(r)),
                        };
                        json!({ "phys": v.phys.to_string(), "len": v.len, "placement": p, "reasons": r })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let redirect: Vec<Value> = match neg.as_ref().map(|n| &n.action) {
            Some(dma_api::share::Action::Redirect(to)) => to
                .iter()
                .map(|(p, l)| json!({ "phys": p.to_string(), "len": l }))
                .collect(),
            _ => Vec::new(),
        };
        let v = json!({
            "exporter": ebdf.to_string(),
            "model": model,
            "importer": imp.bdf.to_string(),
            "access": format!("{:?}", access(acc)).to_lowercase(),
            "ranges": buf.ranges().iter().map(|r| json!({ "phys": r.phys.to_string(), "len": r.len })).collect::<Vec<_>>(),
            "attached": neg.is_some(),
            "verdicts": verdicts,
            "placement": neg.as_ref().map(|n| n.placement.name()),
            "action": neg.as_ref().map(|n| n.action.name()),
            "redirect": redirect,
            "reasons": reasons_json(neg.as_ref().map_or(&refused_reasons[..], |n| &n.reasons[..])),
            "segments": mapping.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
            "error": error.as_ref().map(|e| e.to_string()),
        });
        super::write_json(out, &v)?;
    } else {
        writeln!(
            out,
            "attach {} ({model} exporter, {:#x} bytes at {}) -> {} ({})",
            ebdf,
            len,
            range.0,
            imp.bdf,
            format!("{:?}", access(acc)).to_lowercase()
        )?;
        if let Some(n) = &neg {
            for v in &n.verdicts {
                match &v.placement {
                    Ok(p) => writeln!(out, "  range {} +{:#x}: {p}", v.phys, v.len)?,
                    Err(r) => {
                        writeln!(out, "  range {} +{:#x}: unreachable", v.phys, v.len)?;
                        for x in r {
                            writeln!(out, "    {x}")?;
                        }
                    }
                }
            }
            writeln!(
                out,
                "  negotiated: {} (action: {})",
                n.placement,
                n.action.name()
            )?;
            if let dma_api::share::Action::Redirect(to) = &n.action {
                for (p, l) in to {
                    writeln!(out, "    redirect to {p} +{l:#x}")?;
                }
            }
            for r in &n.reasons {
                writeln!(out, "    because {r}")?;
            }
        }
        if let Some((_, m)) = &mapping {
            for s in m.segments() {
                writeln!(out, "  segment {} +{:#x} {:?}", s.dma, s.len, s.route)?;
            }
        }
        match &error {
            Some(ShareError::Refused { exporter, .. }) => {
                writeln!(out, "  refused by {exporter}")?;
                for r in &refused_reasons {
                    writeln!(out, "    because {r}")?;
                }
            }
            Some(ShareError::NoCommonPlacement { accepts, .. }) => {
                writeln!(
                    out,
                    "  no common placement (the importer accepts {accepts:?})"
                )?;
                for r in &refused_reasons {
                    writeln!(out, "    because {r}")?;
                }
            }
            Some(e) => writeln!(out, "  error: {e}")?,
            None => {}
        }
    }
    Ok(if neg.is_some() && error.is_none() {
        0
    } else {
        1
    })
}
