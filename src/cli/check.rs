//! `unidma check FILE`: validate a machine file, then assemble it in every
//! IOMMU mode, so a file that passes `check` assembles.

use super::Failure;
use dma_sim::assembly::{Assembly, AssemblyError, AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// The modes `check` assembles in; the first is the machine's default (the
/// `--iommu` default of `map` and `scenarios`), which must assemble.
const MODES: [IommuMode; 3] = [IommuMode::Strict, IommuMode::Lazy, IommuMode::Off];

/// Why a machine cannot assemble in `mode` when that is a property of the
/// machine rather than a mistake in the file, as the scenarios treat it:
/// `--iommu off` on a machine whose RAM appears on the bus inside an MMIO
/// window (zPCI) is refused, and the scenarios skip what would need it.
fn impossible_mode(mode: IommuMode, e: &AssemblyError) -> bool {
    mode == IommuMode::Off && matches!(e, AssemblyError::AmbiguousBusDecode { .. })
}

pub(crate) fn run(file: &Path, json: bool, out: &mut dyn Write) -> Result<i32, Failure> {
    let m = match Machine::from_path(file) {
        Ok(m) => m,
        Err(e) => {
            if json {
                let v = json!({"ok": false, "file": e.file, "line": e.line, "column": e.column,
                               "field": e.field, "message": e.message});
                writeln!(out, "{v}")?;
            }
            return Err(Failure::bad_input(e.to_string()));
        }
    };
    m.check_invariants().map_err(Failure::bad_input)?;
    // The arch must have a backend (the machine file's list and the arch
    // crate's are checked equal by arch/tests/names.rs).
    super::arch::backend(&m)?;
    let mut assembles = Vec::new();
    let mut notes = Vec::new();
    for (k, mode) in MODES.into_iter().enumerate() {
        let options = AssemblyOptions {
            iommu: mode,
            ..AssemblyOptions::default()
        };
        match Assembly::build(m.clone(), options) {
            Ok(_) => assembles.push(mode.name()),
            Err(e) if k > 0 && impossible_mode(mode, &e) => notes.push(format!(
                "--iommu {} is impossible on this machine: {e}",
                mode.name()
            )),
            Err(e) => {
                let message = format!(
                    "machine {} does not assemble with --iommu {}: {e}",
                    m.name,
                    mode.name()
                );
                if json {
                    let v = json!({"ok": false, "file": file.display().to_string(),
                                   "iommu": mode.name(), "message": message});
                    writeln!(out, "{v}")?;
                }
                return Err(Failure::bad_input(format!("{}: {message}", file.display())));
            }
        }
    }
    let (iommu_groups, isolation_groups) = super::render::split_groups(&m);
    let (groups, isolation) = (iommu_groups.len(), isolation_groups.len());
    let providers = crate::providers::provider_set(&m, crate::providers::Basis::Registered)
        .devices
        .len();
    if json {
        let v = json!({"ok": true, "file": file.display().to_string(), "name": m.name,
                       "arch": m.arch.name(), "devices": m.topology.len(),
                       "host_bridges": m.topology.host_bridges().len(),
                       "groups": groups, "isolation_groups": isolation,
                       "p2pmem_providers": providers,
                       "assembles": assembles, "notes": notes});
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: ok: machine {} ({}), {} host bridge(s), {} devices, {} IOMMU groups{}, {} p2pmem provider(s); assembles with --iommu {}",
            crate::escape::display(&file.display().to_string()),
            crate::escape::display(&m.name),
            m.arch,
            m.topology.host_bridges().len(),
            m.topology.len(),
            groups,
            if isolation > 0 {
                format!(", {isolation} isolation groups (no IOMMU)")
            } else {
                String::new()
            },
            providers,
            assembles.join(", ")
        )?;
        for n in &notes {
            writeln!(
                out,
                "{}: note: {}",
                crate::escape::display(&file.display().to_string()),
                crate::escape::display(n)
            )?;
        }
    }
    Ok(0)
}
