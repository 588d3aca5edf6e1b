//! `unidma check FILE...`: validate machine files (`-`: standard input),
//! then assemble each in every IOMMU mode, so a file that passes `check`
//! assembles.

use super::Failure;
use dma_sim::assembly::{Assembly, AssemblyError, AssemblyOptions, IommuMode};
use dma_sim::machine::{Machine, MachineError};
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;

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

/// The name standard input (`-`) is reported under.
pub(crate) const STDIN_NAME: &str = "<stdin>";

/// Checks every file in order, each reported under its name (`-` reads
/// standard input, once); a file that fails does not stop the next. Each
/// failure is an `unidma: ` line on `err` as it happens; the exit code is
/// the worst of the files' (0 ok, 2 bad input). An output error stops.
pub(crate) fn run(
    files: &[PathBuf],
    input: &mut dyn Read,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Failure> {
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(Failure::bad_input(
            "standard input (`-`) can be checked only once",
        ));
    }
    let mut worst = 0;
    for file in files {
        let (name, loaded) = if file.as_os_str() == "-" {
            (STDIN_NAME.to_string(), read_stdin(input))
        } else {
            (file.display().to_string(), Machine::from_path(file))
        };
        match one(&name, loaded, json, out) {
            Ok(code) => worst = worst.max(code),
            // Broken pipe (ends quietly) and output errors stop.
            Err(f) if f.code != 2 => return Err(f),
            Err(f) => {
                writeln!(err, "unidma: {}", crate::escape::display(&f.message))?;
                worst = worst.max(f.code);
            }
        }
    }
    Ok(worst)
}

/// Standard input as a machine file named [`STDIN_NAME`].
fn read_stdin(input: &mut dyn Read) -> Result<Machine, MachineError> {
    let mut src = String::new();
    match input.read_to_string(&mut src) {
        Ok(_) => Machine::from_toml_str(STDIN_NAME, &src),
        Err(e) => Err(MachineError {
            file: STDIN_NAME.to_string(),
            line: 0,
            column: 0,
            field: "file".into(),
            message: e.to_string(),
        }),
    }
}

/// Checks one loaded file, `file` naming it in the output.
fn one(
    file: &str,
    loaded: Result<Machine, MachineError>,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let m = match loaded {
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
    let named = |f: Failure| Failure::bad_input(format!("{file}: {}", f.message));
    m.check_invariants()
        .map_err(|e| named(Failure::bad_input(e)))?;
    // The arch must have a backend (the machine file's list and the arch
    // crate's are checked equal by arch/tests/names.rs).
    super::arch::backend(&m).map_err(named)?;
    let mut assembles = Vec::new();
    let mut notes = Vec::new();
    // One machine, three assemblies: the groups are computed once.
    let groups = m.iommu_groups();
    for (k, mode) in MODES.into_iter().enumerate() {
        let options = AssemblyOptions {
            iommu: mode,
            ..AssemblyOptions::default()
        };
        match Assembly::build_grouped(m.clone(), &groups, options) {
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
                    let v = json!({"ok": false, "file": file,
                                   "iommu": mode.name(), "message": message});
                    writeln!(out, "{v}")?;
                }
                return Err(Failure::bad_input(format!("{file}: {message}")));
            }
        }
    }
    let (iommu_groups, isolation_groups) = super::render::split_groups_of(&m, &groups);
    let (groups, isolation) = (iommu_groups.len(), isolation_groups.len());
    let providers = crate::providers::provider_set(&m, crate::providers::Basis::Registered)
        .devices
        .len();
    if json {
        let v = json!({"ok": true, "file": file, "name": m.name,
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
            crate::escape::display(file),
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
                crate::escape::display(file),
                crate::escape::display(n)
            )?;
        }
    }
    Ok(0)
}
