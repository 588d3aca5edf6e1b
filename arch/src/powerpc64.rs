//! powerpc64 backend (little-endian, the powerpc64le Linux ABI).
//!
//! * Translation through dma-ranges; no memory-encryption bit (secure VMs
//!   bounce through shared memory).
//! * Book3S DMA is coherent; a device declared non-coherent gets
//!   arch/powerpc/mm/dma-noncoherent.c `__dma_sync` at both sync points:
//!   TO_DEVICE `dcbst` (clean), BIDIRECTIONAL `dcbf` (flush), FROM_DEVICE an
//!   invalidate, or `dcbf` of the whole range if either end is unaligned;
//!   then `sync` (`mb()`). Power ISA Book III-S has no `dcbi`, so
//!   invalidation is lowered as `dcbf` (the table marks `line_invalidate`
//!   false; deliberate, see NOTES).
//! * P2P only below one PHB (host bridge).
//! * Lowering: `r3` holds the address, built with `lis r3,hi; ori
//!   r3,r3,mid-hi; sldi r3,r3,32; oris r3,r3,mid-lo; ori r3,r3,lo` and
//!   advanced with `addi r3,r3,128`. `dcbst 0,r3` / `dcbf 0,r3` use RA=0 so
//!   the effective address is r3. Clobbers `r3`.

use crate::lowering::{plan, unsupported, Step};
use crate::table::{ARCH_TABLE, ROW_POWERPC64};
use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram, SyncOp};
use dma_api::DmaError;

/// The powerpc64 DMA backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Powerpc64;

impl Powerpc64 {
    /// The backend (stateless).
    pub const fn new() -> Self {
        Self
    }
}

/// `r3`.
const R3: u32 = 3;

fn d_form(opcode: u32, rt: u32, ra: u32, imm16: u32) -> u32 {
    (opcode << 26) | (rt << 21) | (ra << 16) | (imm16 & 0xffff)
}

/// `addis rt, ra, imm` (`lis rt, imm` with ra = 0).
fn addis(rt: u32, ra: u32, imm: u32) -> u32 {
    d_form(15, rt, ra, imm)
}

/// `addi rt, ra, imm`.
fn addi(rt: u32, ra: u32, imm: u32) -> u32 {
    d_form(14, rt, ra, imm)
}

/// `ori ra, rs, uimm` (RS in the first register field).
fn ori(ra: u32, rs: u32, uimm: u32) -> u32 {
    d_form(24, rs, ra, uimm)
}

/// `oris ra, rs, uimm`.
fn oris(ra: u32, rs: u32, uimm: u32) -> u32 {
    d_form(25, rs, ra, uimm)
}

/// `rldicr ra, rs, sh, me` (MD-form, XO 1); `sldi ra, rs, n` = `rldicr ra,
/// rs, n, 63 - n`.
fn rldicr(ra: u32, rs: u32, sh: u32, me: u32) -> u32 {
    let me_field = ((me & 0x1f) << 1) | ((me >> 5) & 1);
    (30 << 26)
        | (rs << 21)
        | (ra << 16)
        | ((sh & 0x1f) << 11)
        | (me_field << 5)
        | (1 << 2)
        | (((sh >> 5) & 1) << 1)
}

/// X-form `dcbst/dcbf 0, rb`.
fn dcb(xo: u32, rb: u32) -> u32 {
    (31 << 26) | (rb << 11) | (xo << 1)
}

const XO_DCBST: u32 = 54;
const XO_DCBF: u32 = 86;
/// `sync` (heavyweight, L = 0).
const SYNC: u32 = 0x7c00_04ac;

impl ArchDma for Powerpc64 {
    fn info(&self) -> &'static ArchInfo {
        &ARCH_TABLE[ROW_POWERPC64]
    }

    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        let steps = plan(self.info(), program, 0x7fff)?;
        let mut words = Vec::with_capacity(steps.len() * 3);
        for s in steps {
            match s {
                Step::Barrier => words.push(SYNC),
                Step::Load(v) => {
                    let h = |shift: u32| ((v >> shift) & 0xffff) as u32;
                    words.push(addis(R3, 0, h(48)));
                    words.push(ori(R3, R3, h(32)));
                    words.push(rldicr(R3, R3, 32, 31));
                    words.push(oris(R3, R3, h(16)));
                    words.push(ori(R3, R3, h(0)));
                }
                Step::Add(v) => words.push(addi(R3, R3, v as u32)),
                Step::Line(SyncOp::Clean) => words.push(dcb(XO_DCBST, R3)),
                Step::Line(SyncOp::CleanInvalidate) => words.push(dcb(XO_DCBF, R3)),
                Step::Line(op @ SyncOp::Invalidate) => return Err(unsupported(self.info(), op)),
            }
        }
        Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against llvm-mc 14 (`-triple=powerpc64le -show-encoding`).
    #[test]
    fn golden_encodings() {
        assert_eq!(rldicr(R3, R3, 32, 31), 0x7863_07c6); // sldi 3,3,32
        assert_eq!(dcb(XO_DCBST, R3), 0x7c00_186c);
        assert_eq!(dcb(XO_DCBF, R3), 0x7c00_18ac);
        assert_eq!(addis(R3, 0, 0x1234), 0x3c60_1234);
        assert_eq!(ori(R3, R3, 0x5678), 0x6063_5678);
        assert_eq!(oris(R3, R3, 0x9abc), 0x6463_9abc);
        assert_eq!(addi(R3, R3, 128), 0x3863_0080);
        assert_eq!(SYNC, 0x7c00_04ac);
    }
}
