//! `unidma check FILE`: validate a machine file.

use super::Failure;
use dma_sim::machine::Machine;
use serde_json::json;
use std::io::Write;
use std::path::Path;

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
    let groups = m.iommu_groups().groups().len();
    let providers = crate::providers::provider_set(&m, crate::providers::Basis::Registered)
        .devices
        .len();
    if json {
        let v = json!({"ok": true, "file": file.display().to_string(), "name": m.name,
                       "arch": m.arch.name(), "devices": m.topology.len(),
                       "host_bridges": m.topology.host_bridges().len(),
                       "groups": groups, "p2pmem_providers": providers});
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: ok: machine {} ({}), {} host bridge(s), {} devices, {} IOMMU groups, {} p2pmem provider(s)",
            file.display(),
            m.name,
            m.arch,
            m.topology.host_bridges().len(),
            m.topology.len(),
            groups,
            providers
        )?;
    }
    Ok(0)
}
