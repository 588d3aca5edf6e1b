//! The copy of a migration: fresh RAM from the context's pool, the object's
//! bytes copied by the CPU (Linux: TTM's `ttm_bo_move_memcpy` for a BO
//! leaving VRAM). All or nothing: a failed copy frees what it allocated.

use dma_api::share::{ExportRange, ShareError};
use dma_api::{DmaContext, PhysAddr};

/// Bytes copied per CPU access.
const CHUNK: u64 = 64 * 1024;

/// One RAM copy per range, same lengths, in order.
pub(super) fn to_ram(
    ctx: &DmaContext,
    ranges: &[ExportRange],
) -> Result<Vec<(PhysAddr, u64)>, ShareError> {
    let mut out: Vec<(PhysAddr, u64)> = Vec::with_capacity(ranges.len());
    for r in ranges {
        let step = ctx
            .alloc_ram(r.len)
            .map_err(ShareError::from)
            .and_then(|to| {
                copy(ctx, r.phys, to, r.len).map(|()| to).inspect_err(|_| {
                    if let Err(f) = ctx.free_ram(to) {
                        ctx.report_drop_error(f);
                    }
                })
            });
        match step {
            Ok(to) => out.push((to, r.len)),
            Err(e) => {
                for (p, _) in out {
                    if let Err(f) = ctx.free_ram(p) {
                        ctx.report_drop_error(f);
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn copy(ctx: &DmaContext, from: PhysAddr, to: PhysAddr, len: u64) -> Result<(), ShareError> {
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut at = 0u64;
    while at < len {
        let n = CHUNK.min(len - at);
        let b = &mut buf[..n as usize];
        let src = PhysAddr::new(from.raw() + at);
        let dst = PhysAddr::new(to.raw() + at);
        ctx.mem.read(src, b).map_err(|error| ShareError::Memory {
            phys: src,
            len: n,
            error,
        })?;
        ctx.mem.write(dst, b).map_err(|error| ShareError::Memory {
            phys: dst,
            len: n,
            error,
        })?;
        at += n;
    }
    Ok(())
}
