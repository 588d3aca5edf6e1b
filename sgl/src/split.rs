//! Splitting a table into byte ranges (Linux `lib/sg_split.c`, `sg_split`).
//!
//! After skipping `skip` bytes, the input is cut into pieces of the given
//! sizes; each piece becomes a new table whose entries cover the same memory,
//! with only the first and last entry trimmed. When the input is DMA-mapped
//! the DMA view is split the same way and each piece's `nents` is its DMA
//! entry count (Linux `out_mapped_nents`).
//!
//! Deliberate difference: when `skip` ends exactly at an entry boundary Linux
//! starts the piece with a zero-length entry; we start at the next entry.

use crate::entry::SgEntry;
use crate::error::SgError;
use crate::table::SgTable;
use alloc::vec::Vec;

/// One output piece: (address, length, kind/flags source entry).
struct Piece {
    addr: u64,
    len: u32,
    src: SgEntry,
}

/// Cuts `[skip, skip + Σ sizes)` of the byte stream `entries` (lengths from
/// `len_of`, start addresses from `addr_of`) into per-size piece lists.
fn cut<'a, I, L, A>(
    entries: I,
    skip: u64,
    sizes: &[u64],
    len_of: L,
    addr_of: A,
) -> Result<Vec<Vec<Piece>>, SgError>
where
    I: Iterator<Item = &'a SgEntry>,
    L: Fn(&SgEntry) -> u32,
    A: Fn(&SgEntry) -> u64,
{
    let mut out: Vec<Vec<Piece>> = Vec::with_capacity(sizes.len());
    let mut entries = entries.peekable();
    let mut off = 0u64; // bytes of the current entry already consumed
    let mut to_skip = skip;
    let mut seen = 0u64;
    for &size in sizes {
        let mut need = size;
        let mut pieces = Vec::new();
        while need > 0 {
            let Some(e) = entries.peek() else {
                return Err(SgError::TooShort {
                    wanted: sizes.iter().fold(skip, |a, &s| a.saturating_add(s)),
                    available: seen,
                });
            };
            let len = u64::from(len_of(e));
            let rem = len - off;
            if to_skip >= rem {
                to_skip -= rem;
                seen += rem;
                entries.next();
                off = 0;
                continue;
            }
            off += to_skip;
            seen += to_skip;
            to_skip = 0;
            let take = need.min(len - off);
            pieces.push(Piece {
                addr: addr_of(e).wrapping_add(off),
                // take <= len <= u32::MAX.
                len: take as u32,
                src: **e,
            });
            off += take;
            seen += take;
            need -= take;
            if off == len {
                entries.next();
                off = 0;
            }
        }
        out.push(pieces);
    }
    Ok(out)
}

impl SgTable {
    /// Linux `sg_split`: skips `skip` bytes, then returns one table per entry
    /// of `sizes`, covering the next `sizes[i]` bytes each. Splits the DMA view
    /// too when the table is mapped. Errors: no sizes, a zero size, or sizes
    /// exceeding the input ([`SgError::TooShort`]).
    pub fn split(&self, skip: u64, sizes: &[u64]) -> Result<Vec<SgTable>, SgError> {
        if sizes.is_empty() {
            return Err(SgError::NoSplits);
        }
        if sizes.contains(&0) {
            return Err(SgError::ZeroLength);
        }
        let cpu = if self.orig_nents > 0 || !self.dma_mapped {
            Some(cut(
                self.iter(),
                skip,
                sizes,
                |e| e.len(),
                |e| e.phys().raw(),
            )?)
        } else {
            None
        };
        let dma = if self.dma_mapped {
            Some(cut(
                self.dma_iter(),
                skip,
                sizes,
                |e| e.dma_len(),
                |e| e.dma_address().raw(),
            )?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(sizes.len());
        for i in 0..sizes.len() {
            let cp = cpu.as_ref().and_then(|c| c.get(i));
            let dp = dma.as_ref().and_then(|d| d.get(i));
            let n_cpu = cp.map_or(0, |p| p.len());
            let n_dma = dp.map_or(0, |p| p.len());
            let mut t = SgTable::with_layout(n_cpu.max(n_dma));
            {
                let mut slots: Vec<&mut SgEntry> =
                    t.slots.iter_mut().filter(|s| !s.is_chain()).collect();
                for (s, p) in slots.iter_mut().zip(cp.into_iter().flatten()) {
                    s.set_cpu(p.addr, p.len, p.src.kind());
                }
                for (s, p) in slots.iter_mut().zip(dp.into_iter().flatten()) {
                    s.set_dma_raw(p.addr, p.len, p.src.dma_flags().bits());
                }
            }
            t.orig_nents = n_cpu;
            t.nents = if self.dma_mapped { n_dma } else { n_cpu };
            t.dma_mapped = self.dma_mapped;
            out.push(t);
        }
        Ok(out)
    }
}

/// Linux `sg_split` as a free function: [`SgTable::split`].
pub fn sg_split(table: &SgTable, skip: u64, sizes: &[u64]) -> Result<Vec<SgTable>, SgError> {
    table.split(skip, sizes)
}
