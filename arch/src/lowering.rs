//! The arch-neutral half of lowering: a [`CacheProgram`] becomes a list of
//! [`Step`]s over one address register, which each backend encodes.
//!
//! Address materialisation: the register is loaded with a full 64-bit
//! immediate for the first line, then advanced by the line size with one add
//! per contiguous line; a discontinuity (the next range of a batch) reloads
//! it. A step larger than the ISA's add immediate also reloads.

use dma_api::arch_port::{ArchInfo, CacheEvent, CacheProgram, SyncOp};
use dma_api::DmaError;

/// One thing the lowered code does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// Load the address register with this value.
    Load(u64),
    /// Add this (positive) value to the address register.
    Add(u64),
    /// One cache-line operation on the address in the register.
    Line(SyncOp),
    /// A full barrier.
    Barrier,
}

/// Plans `program` for an arch whose add-immediate reaches `max_add`.
/// Refuses a program built for another arch's table row.
pub fn plan(
    info: &'static ArchInfo,
    program: &CacheProgram,
    max_add: u64,
) -> Result<Vec<Step>, DmaError> {
    if !core::ptr::eq(program.info(), info) && program.info() != info {
        return Err(DmaError::ArchLowering {
            arch: info.name,
            why: format!("program was built for {}", program.info().name),
        });
    }
    let step = info.cache_line_size;
    let mut out = Vec::with_capacity(program.ops().len() * 2 + 2);
    let mut reg: Option<u64> = None;
    for ev in program.events() {
        match ev {
            CacheEvent::Barrier => out.push(Step::Barrier),
            CacheEvent::Line(op) => {
                let want = op.line.raw();
                match reg {
                    Some(cur) if cur == want => {}
                    Some(cur) if step <= max_add && cur.checked_add(step) == Some(want) => {
                        out.push(Step::Add(step))
                    }
                    _ => out.push(Step::Load(want)),
                }
                reg = Some(want);
                out.push(Step::Line(op.op));
            }
        }
    }
    Ok(out)
}

/// The error for a line op the ISA cannot express.
pub fn unsupported(info: &ArchInfo, op: SyncOp) -> DmaError {
    DmaError::ArchLowering {
        arch: info.name,
        why: format!("no per-line {op} instruction"),
    }
}
