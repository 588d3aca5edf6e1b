//! riscv64 backend.
//!
//! * Translation through dma-ranges; no memory-encryption bit.
//! * Coherent unless DT `dma-noncoherent` (Linux selects
//!   `ARCH_DMA_DEFAULT_COHERENT`).
//! * Maintenance like arch/riscv/mm/dma-noncoherent.c with Zicbom:
//!   `CBO.CLEAN` for the device in every direction, `CBO.INVAL` for the CPU
//!   unless TO_DEVICE (every touched block, partial or not, as Linux does),
//!   `CBO.FLUSH` for clean+invalidate; then `FENCE IORW, IORW` so the blocks
//!   are written back before a following MMIO doorbell.
//! * Lowering: `a0` (x10) holds the address. A 64-bit immediate is built
//!   from 11-bit chunks, top first: `ADDI a0, zero, c` then per chunk
//!   `SLLI a0, a0, 11` + `ORI a0, a0, c` (ORI skipped for a zero chunk);
//!   leading zero chunks are skipped. Contiguous lines use `ADDI a0, a0,
//!   line`. Clobbers `a0`.
//!
//! Encodings (32-bit, little-endian): CBO is MISC-MEM (opcode 0001111),
//! funct3 010, rd 0, rs1 = address, `imm[11:0]` = 0x000 inval / 0x001 clean /
//! 0x002 flush.

use crate::lowering::{plan, Step};
use crate::table::{ARCH_TABLE, ROW_RISCV64};
use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram, SyncOp};
use dma_api::DmaError;

/// The riscv64 DMA backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Riscv64;

impl Riscv64 {
    /// The backend (stateless).
    pub const fn new() -> Self {
        Self
    }
}

/// `a0`.
const A0: u32 = 10;
const OP_IMM: u32 = 0x13;
const MISC_MEM: u32 = 0x0f;

fn i_type(opcode: u32, funct3: u32, rd: u32, rs1: u32, imm12: u32) -> u32 {
    ((imm12 & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}

fn addi(rd: u32, rs1: u32, imm: u32) -> u32 {
    i_type(OP_IMM, 0, rd, rs1, imm)
}

fn ori(rd: u32, rs1: u32, imm: u32) -> u32 {
    i_type(OP_IMM, 6, rd, rs1, imm)
}

/// `SLLI rd, rs1, shamt` (RV64: funct6 000000, 6-bit shamt).
fn slli(rd: u32, rs1: u32, shamt: u32) -> u32 {
    i_type(OP_IMM, 1, rd, rs1, shamt & 0x3f)
}

fn cbo(op: SyncOp, rs1: u32) -> u32 {
    let imm = match op {
        SyncOp::Invalidate => 0,
        SyncOp::Clean => 1,
        SyncOp::CleanInvalidate => 2,
    };
    i_type(MISC_MEM, 2, 0, rs1, imm)
}

/// `FENCE IORW, IORW` (fm 0000, pred 1111, succ 1111).
const FENCE_IORW: u32 = 0x0ff0_000f;

/// Bits per immediate chunk; ORI/ADDI take 12-bit signed immediates, so
/// 11-bit chunks are always non-negative.
const CHUNK: u32 = 11;

fn load_imm(words: &mut Vec<u32>, v: u64) {
    // 64 = 9 + 5 * 11: chunk 5 holds bits 63..55.
    let chunks: [u32; 6] = core::array::from_fn(|i| {
        let shift = CHUNK * (5 - i as u32);
        ((v >> shift) & ((1 << CHUNK) - 1)) as u32
    });
    let first = chunks.iter().position(|&c| c != 0).unwrap_or(5);
    words.push(addi(A0, 0, chunks[first]));
    for &c in &chunks[first + 1..] {
        words.push(slli(A0, A0, CHUNK));
        if c != 0 {
            words.push(ori(A0, A0, c));
        }
    }
}

impl ArchDma for Riscv64 {
    fn info(&self) -> &'static ArchInfo {
        &ARCH_TABLE[ROW_RISCV64]
    }

    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        let steps = plan(self.info(), program, 0x7ff)?;
        let mut words = Vec::with_capacity(steps.len() * 4);
        for s in steps {
            match s {
                Step::Barrier => words.push(FENCE_IORW),
                Step::Load(v) => load_imm(&mut words, v),
                Step::Add(v) => words.push(addi(A0, A0, v as u32)),
                Step::Line(op) => words.push(cbo(op, A0)),
            }
        }
        Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OP-IMM and FENCE checked against llvm-mc 14 (`-triple=riscv64`); CBO
    /// from the Zicbom spec (llvm 14 predates it).
    #[test]
    fn golden_encodings() {
        assert_eq!(addi(A0, A0, 64), 0x0405_0513);
        assert_eq!(slli(A0, A0, 11), 0x00b5_1513);
        assert_eq!(ori(A0, A0, 2047), 0x7ff5_6513);
        assert_eq!(FENCE_IORW, 0x0ff0_000f);
        assert_eq!(cbo(SyncOp::Clean, A0), 0x0015_200f);
        assert_eq!(cbo(SyncOp::Invalidate, A0), 0x0005_200f);
        assert_eq!(cbo(SyncOp::CleanInvalidate, A0), 0x0025_200f);
    }
}
