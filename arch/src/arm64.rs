//! arm64 backend.
//!
//! * Translation through dma-ranges (DT `dma-ranges` / ACPI `_DMA`); no
//!   memory-encryption bit (CCA realms bounce through shared memory).
//! * Coherency per device (`dma-coherent` / `_CCA`), default non-coherent.
//! * Maintenance like arch/arm64/mm/dma-mapping.c + cache.S: for the device
//!   `dcache_clean_poc` (`DC CVAC` per line), for the CPU `dcache_inval_poc`
//!   (`DC IVAC` per line, `DC CIVAC` on a partial first/last line so CPU data
//!   sharing it is not lost), bidirectional `DC CIVAC`; then `DSB SY`
//!   (the 7.x batched completion barrier).
//! * Lowering: `x0` holds the address: `MOVZ x0, #lo16` + `MOVK x0, #chunk,
//!   LSL #16/32/48` for non-zero chunks, `ADD x0, x0, #line` between
//!   contiguous lines. Clobbers `x0`. A64 is little-endian in memory.

use crate::lowering::{plan, Step};
use crate::table::{ARCH_TABLE, ROW_ARM64};
use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram, SyncOp};
use dma_api::DmaError;

/// The arm64 DMA backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arm64;

impl Arm64 {
    /// The backend (stateless).
    pub const fn new() -> Self {
        Self
    }
}

/// Register number of the address register (`x0`).
const XT: u32 = 0;

/// `MOVZ Xd, #imm16, LSL #(16*hw)`.
fn movz(rd: u32, imm16: u32, hw: u32) -> u32 {
    0xd280_0000 | (hw << 21) | ((imm16 & 0xffff) << 5) | rd
}

/// `MOVK Xd, #imm16, LSL #(16*hw)`.
fn movk(rd: u32, imm16: u32, hw: u32) -> u32 {
    0xf280_0000 | (hw << 21) | ((imm16 & 0xffff) << 5) | rd
}

/// `ADD Xd, Xn, #imm12`.
fn add_imm(rd: u32, rn: u32, imm12: u32) -> u32 {
    0x9100_0000 | ((imm12 & 0xfff) << 10) | (rn << 5) | rd
}

/// `DC <op>, Xt` = `SYS #op1, C7, Cm, #op2, Xt`.
fn dc(op: SyncOp, rt: u32) -> u32 {
    let (op1, crm, op2) = match op {
        SyncOp::Clean => (3, 10, 1),           // DC CVAC
        SyncOp::Invalidate => (0, 6, 1),       // DC IVAC
        SyncOp::CleanInvalidate => (3, 14, 1), // DC CIVAC
    };
    0xd508_0000 | (op1 << 16) | (7 << 12) | (crm << 8) | (op2 << 5) | rt
}

/// `DSB SY`.
const DSB_SY: u32 = 0xd503_3f9f;

impl ArchDma for Arm64 {
    fn info(&self) -> &'static ArchInfo {
        &ARCH_TABLE[ROW_ARM64]
    }

    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        let steps = plan(self.info(), program, 0xfff)?;
        let mut words = Vec::with_capacity(steps.len() * 2);
        for s in steps {
            match s {
                Step::Barrier => words.push(DSB_SY),
                Step::Load(v) => {
                    words.push(movz(XT, (v & 0xffff) as u32, 0));
                    for hw in 1..4u32 {
                        let chunk = ((v >> (16 * hw)) & 0xffff) as u32;
                        if chunk != 0 {
                            words.push(movk(XT, chunk, hw));
                        }
                    }
                }
                Step::Add(v) => words.push(add_imm(XT, XT, v as u32)),
                Step::Line(op) => words.push(dc(op, XT)),
            }
        }
        Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodings checked against llvm-mc 14 (`-triple=aarch64 -show-encoding`).
    #[test]
    fn golden_encodings() {
        assert_eq!(dc(SyncOp::Clean, 0), 0xd50b_7a20);
        assert_eq!(dc(SyncOp::Invalidate, 0), 0xd508_7620);
        assert_eq!(dc(SyncOp::CleanInvalidate, 0), 0xd50b_7e20);
        assert_eq!(movz(0, 0x1234, 1), 0xd2a2_4680);
        assert_eq!(movk(0, 0xffff, 3), 0xf2ff_ffe0);
        assert_eq!(add_imm(0, 0, 64), 0x9101_0000);
    }
}
