//! s390x backend.
//!
//! * Translation through dma-ranges (identity for zPCI); no encryption bit
//!   (protected-virtualization guests bounce through shared memory).
//! * DMA is always coherent: s390 has no `arch_sync_dma_*`, every program is
//!   empty and lowers to no code.
//! * No P2P: every peer mapping is vetoed with a `Fallback` error naming
//!   s390x (zPCI functions have no peer routing between them).

use crate::table::{ARCH_TABLE, ROW_S390X};
use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram};
use dma_api::DmaError;

/// The s390x DMA backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct S390x;

impl S390x {
    /// The backend (stateless).
    pub const fn new() -> Self {
        Self
    }
}

impl ArchDma for S390x {
    fn info(&self) -> &'static ArchInfo {
        &ARCH_TABLE[ROW_S390X]
    }

    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        let steps = crate::lowering::plan(self.info(), program, 0)?;
        if steps.is_empty() {
            Ok(Vec::new())
        } else {
            Err(DmaError::ArchLowering {
                arch: self.name(),
                why: "s390x DMA is always coherent and has no cache-maintenance code".into(),
            })
        }
    }
}
