//! `unidma scenarios`: runs every end-to-end scenario on the machine and
//! prints a table of measured numbers with per-scenario details, or the
//! records as a JSON array.
//!
//! Exit codes: 0 every scenario passed or was skipped (a skip: the machine
//! lacks the devices); 1 one failed (a check, or an assembly one of them
//! needs in another IOMMU mode); 2 bad input (the machine does not load or
//! does not assemble in the asked mode).

use super::{Failure, IommuArg};
use crate::scenarios::{self, ScenarioResult, Status};
use dma_sim::machine::Machine;
use std::io::Write;

pub(crate) fn run(
    m: &Machine,
    iommu: IommuArg,
    json: bool,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let results = scenarios::run(m, iommu.mode())
        .map_err(|e| Failure::bad_input(format!("machine {} does not assemble: {e}", m.name)))?;
    if json {
        super::write_json(out, &results)?;
    } else {
        text(m, &results, out)?;
    }
    let failed = results.iter().any(|r| r.status == Status::Fail);
    Ok(i32::from(failed))
}

fn text(m: &Machine, results: &[ScenarioResult], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "scenarios on machine {} ({})", m.name, m.arch.name())?;
    writeln!(
        out,
        "{:<16} {:<6} {:>8} {:>12} {:>10} {:>6}",
        "scenario", "result", "bytes", "root-complex", "RAM", "faults"
    )?;
    for r in results {
        writeln!(
            out,
            "{:<16} {:<6} {:>8} {:>12} {:>10} {:>6}",
            r.name,
            r.status.as_str(),
            r.bytes,
            r.root_complex_bytes,
            r.ram_bytes,
            r.faults.len()
        )?;
    }
    for r in results {
        writeln!(out)?;
        writeln!(out, "{} [{}]: {}", r.name, r.status.as_str(), r.description)?;
        writeln!(out, "  => {}", r.reason)?;
        for d in &r.details {
            writeln!(out, "  {d}")?;
        }
        if !r.route.is_empty() {
            writeln!(out, "  route:")?;
            for h in &r.route {
                writeln!(out, "    {h}")?;
            }
        }
        for f in &r.faults {
            writeln!(out, "  fault: {f}")?;
        }
    }
    let count = |s| results.iter().filter(|r| r.status == s).count();
    writeln!(out)?;
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    )
}
