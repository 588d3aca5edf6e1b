//! x86_64 backend.
//!
//! * Translation: identity dma-ranges by default; the SME/SEV C-bit (47) is
//!   set for private memory and left clear for `CC_SHARED` buffers
//!   (include/linux/dma-direct.h `phys_to_dma` = `__sme_set(...)`), all from
//!   the table row.
//! * Coherency: x86 DMA snoops; a device declared non-coherent (a
//!   non-snooping integrated GPU) gets explicit maintenance.
//! * Lowering, like arch/x86/mm/pat/set_memory.c `clflush_cache_range`:
//!   `MFENCE`, then per line `CLFLUSHOPT [rax]` (clean+invalidate) or
//!   `CLWB [rax]` (clean), then `MFENCE`. x86 has no per-line invalidate
//!   without write-back, so invalidation is CLFLUSHOPT. `rax` is loaded with
//!   `mov rax, imm64` and advanced with `add rax, imm32`; the code clobbers
//!   `rax` and the flags and touches no stack. Encoded with iced-x86.

use crate::lowering::{plan, Step};
use crate::table::{ARCH_TABLE, ROW_X86_64};
use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram, SyncOp};
use dma_api::DmaError;
use iced_x86::code_asm::{byte_ptr, rax, CodeAssembler};
use iced_x86::IcedError;

/// The x86_64 DMA backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct X86_64;

impl X86_64 {
    /// The backend (stateless).
    pub const fn new() -> Self {
        Self
    }
}

fn iced(e: IcedError) -> DmaError {
    DmaError::ArchLowering {
        arch: "x86_64",
        why: e.to_string(),
    }
}

impl ArchDma for X86_64 {
    fn info(&self) -> &'static ArchInfo {
        &ARCH_TABLE[ROW_X86_64]
    }

    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        let steps = plan(self.info(), program, i32::MAX as u64)?;
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let mut a = CodeAssembler::new(64).map_err(iced)?;
        for s in steps {
            match s {
                Step::Barrier => a.mfence(),
                Step::Load(v) => a.mov(rax, v),
                Step::Add(v) => {
                    let imm = i32::try_from(v).map_err(|_| DmaError::ArchLowering {
                        arch: "x86_64",
                        why: format!("add immediate {v:#x} does not fit imm32"),
                    })?;
                    a.add(rax, imm)
                }
                Step::Line(SyncOp::Clean) => a.clwb(byte_ptr(rax)),
                Step::Line(SyncOp::Invalidate | SyncOp::CleanInvalidate) => {
                    a.clflushopt(byte_ptr(rax))
                }
            }
            .map_err(iced)?;
        }
        a.assemble(0).map_err(iced)
    }
}
