//! The NIC's side of a registered region: RDMA accesses at an offset of the
//! region become DMA reads and writes at the addresses the mapping gave,
//! segment by segment, on the [`Wire`] — so a test sees where the NIC's
//! bytes really went.

use super::error::RdmaError;
use crate::wire::Wire;
use dma_api::{Bdf, DmaAddr, Segment};

/// The `(address, bytes)` pieces of `[offset, offset + len)` over `segs`.
fn pieces(segs: &[Segment], offset: u64, len: u64) -> Result<Vec<(DmaAddr, u64)>, RdmaError> {
    let region: u64 = segs.iter().map(|s| s.len).sum();
    if offset.checked_add(len).is_none_or(|e| e > region) {
        return Err(RdmaError::OutOfRange {
            offset,
            len,
            region,
        });
    }
    let (mut out, mut at, mut left, mut off) = (Vec::new(), 0u64, len, offset);
    for s in segs {
        if left == 0 {
            break;
        }
        if off < at + s.len {
            let inner = off - at;
            let take = (s.len - inner).min(left);
            out.push((DmaAddr::new(s.dma.raw() + inner), take));
            left -= take;
            off += take;
        }
        at += s.len;
    }
    Ok(out)
}

/// `who` writes `data` at `offset` of the region over `segs`.
pub(crate) fn write(
    wire: &dyn Wire,
    who: Bdf,
    segs: &[Segment],
    offset: u64,
    data: &[u8],
) -> Result<(), RdmaError> {
    let mut at = 0usize;
    for (dma, n) in pieces(segs, offset, data.len() as u64)? {
        let n = n as usize;
        wire.dma_write(who, dma, &data[at..at + n])
            .map_err(RdmaError::Bus)?;
        at += n;
    }
    Ok(())
}

/// `who` reads `len` bytes at `offset` of the region over `segs`.
pub(crate) fn read(
    wire: &dyn Wire,
    who: Bdf,
    segs: &[Segment],
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, RdmaError> {
    let mut out = Vec::with_capacity(len as usize);
    for (dma, n) in pieces(segs, offset, len)? {
        let mut b = vec![0u8; n as usize];
        wire.dma_read(who, dma, &mut b).map_err(RdmaError::Bus)?;
        out.extend_from_slice(&b);
    }
    Ok(out)
}
