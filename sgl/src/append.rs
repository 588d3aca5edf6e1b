//! Building a table from pages, possibly over several calls.
//!
//! [`SgAppendTable::append_pages`] is Linux `sg_alloc_append_table_from_pages`
//! (`lib/scatterlist.c`) and [`SgTable::from_pages`] is
//! `sg_alloc_table_from_pages_segment` (one append with `left_pages = 0`).
//! Same rules: `max_segment` rounded down to a page; mergeable neighbours
//! squashed into one entry of at most `max_segment` bytes; a continuing append
//! first grows the previous last entry; chunks reserved through `get_next_sg`
//! so entry and allocation counts are the kernel's.
//!
//! Deliberate differences (all on input Linux mishandles): `size` decides how
//! many pages are used (Linux wraps `size` and emits bytes past it when given
//! surplus pages); a continuation grows the last entry by at most the bytes
//! `size` still has (Linux always adds whole pages); a continuation needs the
//! last entry to end on a page boundary; `size == 0` and appending after the
//! table was ended are typed errors (Linux emits an empty entry, resp.
//! dereferences NULL).

use crate::addr::{Pfn, PAGE_SHIFT, PAGE_SIZE};
use crate::entry::SgEntry;
use crate::error::SgError;
use crate::kind::SegKind;
use crate::pages::{PageSource, PagesWithKind, MAX_PFN};
use crate::table::{SgTable, SG_MAX_SINGLE_ALLOC};
use alloc::vec::Vec;

/// Largest entry length a page-granular builder emits: `u32::MAX` rounded down
/// to a page (Linux's `max_segment` is an `unsigned int`).
pub const MAX_SEGMENT_LIMIT: u64 = (u32::MAX as u64) & !(PAGE_SIZE - 1);

/// Linux step 1: round `max_segment` down to a page, refuse less than a page,
/// and clamp to what a 32-bit length can hold.
pub(crate) fn effective_max_segment(max_segment: u64) -> Result<u64, SgError> {
    let ms = max_segment & !(PAGE_SIZE - 1);
    if ms < PAGE_SIZE {
        return Err(SgError::MaxSegmentTooSmall { max_segment });
    }
    Ok(ms.min(MAX_SEGMENT_LIMIT))
}

/// A table under construction (Linux `struct sg_append_table`).
#[derive(Clone, Debug, Default)]
pub struct SgAppendTable {
    sgt: SgTable,
    /// Slot of the last populated entry (Linux `prv`).
    prv: Option<usize>,
    /// A call with `left_pages == 0` marked END: no room was reserved.
    ended: bool,
    /// Scratch for run starts, kept to avoid reallocating per call.
    runs: Vec<(usize, Pfn)>,
}

impl PartialEq for SgAppendTable {
    fn eq(&self, other: &Self) -> bool {
        // The scratch buffer is not part of the value.
        self.sgt == other.sgt && self.prv == other.prv && self.ended == other.ended
    }
}

impl Eq for SgAppendTable {}

impl SgAppendTable {
    /// An empty append table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries (Linux `sgt.nents`; equals `orig_nents`).
    #[inline]
    pub fn nents(&self) -> usize {
        self.sgt.nents()
    }

    /// Number of CPU entries (Linux `sgt.orig_nents`).
    #[inline]
    pub fn orig_nents(&self) -> usize {
        self.sgt.orig_nents()
    }

    /// Allocated entries without chain links (Linux `total_nents`).
    #[inline]
    pub fn total_nents(&self) -> usize {
        self.sgt.alloc_nents()
    }

    /// The table so far (END is not yet marked if the last call left pages).
    #[inline]
    pub fn table(&self) -> &SgTable {
        &self.sgt
    }

    /// Finishes: marks END on the last entry and returns the table.
    pub fn into_table(mut self) -> SgTable {
        if let Some(e) = self.prv.and_then(|p| self.sgt.slots.get_mut(p)) {
            e.mark_end();
        }
        self.sgt
    }

    /// Linux `sg_alloc_append_table_from_pages` for RAM pages: appends the
    /// bytes `[offset, offset + size)` of `pfns` (offset inside the first page,
    /// and must be 0 when continuing). `left_pages` is how many pages later
    /// calls will add (room is reserved for them; END is marked only when 0).
    /// On error nothing changes.
    pub fn append_pages(
        &mut self,
        pfns: &[Pfn],
        offset: u64,
        size: u64,
        max_segment: u64,
        left_pages: usize,
    ) -> Result<(), SgError> {
        self.append_from(pfns, offset, size, max_segment, left_pages)
    }

    /// [`append_pages`](Self::append_pages) with a kind per page.
    pub fn append_pages_kinds(
        &mut self,
        pages: &[(Pfn, SegKind)],
        offset: u64,
        size: u64,
        max_segment: u64,
        left_pages: usize,
    ) -> Result<(), SgError> {
        self.append_from(pages, offset, size, max_segment, left_pages)
    }

    /// [`append_pages`](Self::append_pages) over any [`PageSource`].
    pub fn append_from<P: PageSource + ?Sized>(
        &mut self,
        pages: &P,
        offset: u64,
        size: u64,
        max_segment: u64,
        left_pages: usize,
    ) -> Result<(), SgError> {
        let ms = effective_max_segment(max_segment)?;
        if self.prv.is_some() && offset != 0 {
            return Err(SgError::AppendWithOffset { offset });
        }
        let n = pages.page_count();
        if n == 0 {
            return Err(SgError::ZeroPages);
        }
        if offset >= PAGE_SIZE {
            return Err(SgError::OffsetNotInPage { offset });
        }
        if size == 0 {
            return Err(SgError::ZeroLength);
        }
        let needed = offset
            .checked_add(size)
            .ok_or(SgError::SizeOverflow { offset, size })?;
        let covered = (n as u64).saturating_mul(PAGE_SIZE);
        if needed > covered {
            return Err(SgError::SizeExceedsPages { needed, covered });
        }
        // Pages that hold bytes of [offset, offset + size): surplus pages are
        // ignored (Linux would emit entries past `size`).
        let used = needed.div_ceil(PAGE_SIZE) as usize;

        if self.prv.is_none() && left_pages == 0 && self.sgt.slots.is_empty() {
            // One-shot build (sg_alloc_table_from_pages_segment): stream the
            // entries while scanning. A fresh table is simply dropped on error.
            self.sgt = build_fresh(pages, used, ms, offset, size)?;
            self.prv = self.sgt.slots.len().checked_sub(1);
            self.ended = true;
            return Ok(());
        }

        // Continuation (Linux: next_pfn rule), computed before any mutation.
        let mut absorbed = 0usize;
        let mut prv_len = 0u64;
        let prv_entry = self.prv.and_then(|p| self.sgt.slots.get(p)).copied();
        if let Some(e) = prv_entry {
            prv_len = u64::from(e.len());
            let end = e.phys().raw().checked_add(prv_len);
            if let Some(end) = end.filter(|end| end % PAGE_SIZE == 0) {
                if pages.pfn(0).raw() == end >> PAGE_SHIFT && pages.kind(0) == e.kind() {
                    while absorbed < used
                        && (absorbed == 0 || pages.mergeable(absorbed))
                        && prv_len + PAGE_SIZE <= ms
                    {
                        prv_len += PAGE_SIZE.min(size - absorbed as u64 * PAGE_SIZE);
                        absorbed += 1;
                    }
                    if absorbed > 0 {
                        let last = pages.pfn(absorbed - 1).raw();
                        if last > MAX_PFN {
                            return Err(SgError::PfnOverflow { pfn: last });
                        }
                    }
                }
            }
        }

        // Runs of mergeable pages, then chunks of at most `ms` bytes each.
        let mut runs = core::mem::take(&mut self.runs);
        runs.clear();
        pages.run_starts(absorbed, used, |i, p| runs.push((i, p)));
        let chunks = match count_chunks(&runs, used, ms) {
            Ok(c) => c,
            Err(e) => {
                self.runs = runs;
                return Err(e);
            }
        };
        if chunks > 0 && self.ended {
            self.runs = runs;
            return Err(SgError::AppendAfterEnd {
                nents: self.sgt.nents,
            });
        }

        // Mutation starts here; nothing below can fail.
        if let (Some(p), true) = (self.prv, absorbed > 0) {
            if let Some(e) = self.sgt.slots.get_mut(p) {
                // prv_len <= ms <= MAX_SEGMENT_LIMIT fits in u32.
                e.set_len(prv_len as u32);
            }
        }
        if chunks > 0 {
            self.fill(
                pages, &runs, used, ms, offset, size, absorbed, chunks, left_pages,
            );
        }
        self.runs = runs;
        if left_pages == 0 {
            if let Some(e) = self.prv.and_then(|p| self.sgt.slots.get_mut(p)) {
                e.mark_end();
            }
            self.ended = true;
        }
        Ok(())
    }

    /// Emits the entries (Linux's filling loop with `get_next_sg`).
    #[allow(clippy::too_many_arguments)]
    fn fill<P: PageSource + ?Sized>(
        &mut self,
        pages: &P,
        runs: &[(usize, Pfn)],
        used: usize,
        ms: u64,
        offset: u64,
        size: u64,
        absorbed: usize,
        chunks: usize,
        left_pages: usize,
    ) {
        let pages_per_seg = (ms / PAGE_SIZE) as usize;
        let sgt = &mut self.sgt;
        sgt.slots.reserve(
            chunks + chunks / (SG_MAX_SINGLE_ALLOC - 1) + 2 + left_pages.min(SG_MAX_SINGLE_ALLOC),
        );
        let mut cur = self.prv;
        let mut left = size - (absorbed as u64 * PAGE_SIZE).min(size);
        let mut off = offset;
        let mut i = 0usize;
        for (k, &(start, pfn)) in runs.iter().enumerate() {
            let end = runs.get(k + 1).map_or(used, |r| r.0);
            let base = pfn.raw() << PAGE_SHIFT;
            let kind = pages.kind(start);
            let mut p = start;
            while p < end {
                let np = pages_per_seg.min(end - p);
                let needed = (chunks - i).saturating_add(left_pages);
                let slot = sgt.next_slot(cur, needed);
                let chunk_bytes = np as u64 * PAGE_SIZE - off;
                let len = left.min(chunk_bytes);
                let phys = base + ((p - start) as u64) * PAGE_SIZE + off;
                if let Some(s) = sgt.slots.get_mut(slot) {
                    // len <= ms <= MAX_SEGMENT_LIMIT fits in u32.
                    s.set_cpu(phys, len as u32, kind);
                }
                left -= len;
                off = 0;
                p += np;
                i += 1;
                cur = Some(slot);
            }
        }
        sgt.nents += chunks;
        sgt.orig_nents = sgt.nents;
        self.prv = cur;
    }
}

/// Entries the one-pass builder stages before copying them into the table.
const STAGE: usize = 64;

/// Appends entries in the layout `get_next_sg` gives a one-shot build.
struct ChunkWriter {
    slots: Vec<SgEntry>,
    /// Slots used in the current chunk.
    in_chunk: usize,
    /// First slot of the current (last) chunk.
    chunk_start: usize,
}

impl ChunkWriter {
    /// Appends one entry; when the current chunk is full, its last entry moves
    /// to a new chunk and its slot becomes the chain link.
    #[inline(always)]
    fn push(&mut self, e: SgEntry) {
        if self.in_chunk == SG_MAX_SINGLE_ALLOC {
            if let Some(last) = self.slots.last_mut() {
                let moved = core::mem::replace(last, SgEntry::CHAIN);
                self.chunk_start = self.slots.len();
                self.slots.push(moved);
                self.in_chunk = 1;
            }
        }
        self.slots.push(e);
        self.in_chunk += 1;
    }

    /// [`push`](Self::push) of each entry of `es` in turn, copied a chunk's
    /// room at a time.
    #[inline(never)]
    fn push_all(&mut self, mut es: &[SgEntry]) {
        while !es.is_empty() {
            if self.in_chunk == SG_MAX_SINGLE_ALLOC {
                if let Some(last) = self.slots.last_mut() {
                    let moved = core::mem::replace(last, SgEntry::CHAIN);
                    self.chunk_start = self.slots.len();
                    self.slots.push(moved);
                    self.in_chunk = 1;
                }
            }
            let room = SG_MAX_SINGLE_ALLOC.saturating_sub(self.in_chunk).max(1);
            let (now, rest) = es.split_at(room.min(es.len()));
            self.slots.extend_from_slice(now);
            self.in_chunk += now.len();
            es = rest;
        }
    }

    /// Appends a run of `n` pages at `phys` longer than `pages_per_seg`, cut
    /// into pieces of `pages_per_seg` pages (kept out of the scan loop).
    #[cold]
    #[inline(never)]
    fn push_split(&mut self, mut phys: u64, mut n: usize, pages_per_seg: usize, kind: SegKind) {
        while n > 0 {
            let np = n.min(pages_per_seg);
            let bytes = np as u64 * PAGE_SIZE;
            // bytes <= ms <= MAX_SEGMENT_LIMIT fits in a u32.
            self.push(SgEntry::cpu(phys, bytes as u32, kind));
            phys = phys.wrapping_add(bytes);
            n -= np;
        }
    }
}

/// One-shot build of the pages `0..used` (already validated except frame
/// numbers) in one pass: the run scan's sink writes each run's entries as soon
/// as the next run starts, in the layout `get_next_sg` gives a one-shot build
/// (`left_pages == 0`): chunks of 127 entries plus a chain link while more than
/// one entry follows, the final chunk holding the rest (up to 128). Without the
/// entry count in advance, a full chunk's last slot is filled provisionally and
/// turned into the link (its entry moving to the next chunk) only if another
/// entry arrives. Entries cover whole pages while writing; the first and last
/// are trimmed to `offset` and `size` afterwards (only they can be partial).
/// Frame numbers are checked with one OR per run; a bad one is then named
/// by [`count_chunks`] over a second scan.
fn build_fresh<P: PageSource + ?Sized>(
    pages: &P,
    used: usize,
    ms: u64,
    offset: u64,
    size: u64,
) -> Result<SgTable, SgError> {
    let pages_per_seg = (ms / PAGE_SIZE) as usize;
    let mut w = ChunkWriter {
        slots: Vec::with_capacity(used.min(64 + used / 16)),
        in_chunk: 0,
        chunk_start: 0,
    };
    // OR of every run's first and last frame number: all are valid iff it is
    // at most MAX_PFN (all ones), and a run's last frame only wraps when its
    // first is already invalid.
    let mut frames = 0u64;
    // Entries are staged in a small local buffer and copied into the table a
    // batch at a time: the table's length and chunk fill then stay out of the
    // per-run loop (which would otherwise carry them through memory).
    let mut buf = [SgEntry::EMPTY; STAGE];
    let mut staged = 0usize;
    // Entries of the run of pages `start..end` whose first frame is `pfn`:
    // one, or pieces of `pages_per_seg` pages (Linux's max_segment rule).
    let mut emit = |w: &mut ChunkWriter,
                    buf: &mut [SgEntry; STAGE],
                    staged: &mut usize,
                    (start, pfn): (usize, Pfn),
                    end: usize| {
        let n = end.wrapping_sub(start);
        let last = pfn.raw().wrapping_add(n as u64).wrapping_sub(1);
        frames |= pfn.raw() | last;
        let kind = pages.kind(start);
        if n <= pages_per_seg {
            // n pages <= ms <= MAX_SEGMENT_LIMIT bytes: fits in a u32.
            let e = SgEntry::cpu(pfn.raw() << PAGE_SHIFT, (n as u64 * PAGE_SIZE) as u32, kind);
            if let Some(slot) = buf.get_mut(*staged) {
                *slot = e;
            }
            *staged += 1;
            if *staged == STAGE {
                w.push_all(buf);
                *staged = 0;
            }
        } else {
            w.push_all(buf.get(..*staged).unwrap_or_default());
            *staged = 0;
            w.push_split(pfn.raw() << PAGE_SHIFT, n, pages_per_seg, kind);
        }
    };
    let mut prev = (0usize, Pfn::new(0));
    pages.run_starts(0, used, |i, p| {
        // The first run start is page 0; every later one ends a run.
        if i > 0 {
            emit(&mut w, &mut buf, &mut staged, prev, i);
        }
        prev = (i, p);
    });
    emit(&mut w, &mut buf, &mut staged, prev, used);
    w.push_all(buf.get(..staged).unwrap_or_default());
    let ChunkWriter {
        mut slots,
        chunk_start,
        ..
    } = w;
    if frames > MAX_PFN {
        let mut runs = Vec::new();
        pages.run_starts(0, used, |i, p| runs.push((i, p)));
        count_chunks(&runs, used, ms)?;
        // Not reached: count_chunks refuses the same runs.
        return Err(SgError::PfnOverflow { pfn: MAX_PFN + 1 });
    }
    // Trim: the first entry starts `offset` into its page, the last one ends
    // where `size` does: used * PAGE_SIZE - (offset + size) < PAGE_SIZE bytes
    // early (it holds at least one byte of the range).
    if let Some(e) = slots.first_mut() {
        e.set_cpu(e.phys().raw() + offset, e.len() - offset as u32, e.kind());
    }
    let excess = used as u64 * PAGE_SIZE - (offset + size);
    if let Some(e) = slots.last_mut() {
        e.set_len(e.len() - excess as u32);
        e.mark_end();
    }
    // Every chunk before the last is 128 slots, one of them a link.
    let entries = slots.len() - chunk_start / SG_MAX_SINGLE_ALLOC;
    Ok(SgTable {
        slots,
        last_chunk_start: chunk_start,
        nents: entries,
        orig_nents: entries,
        alloc_nents: entries,
        dma_mapped: false,
    })
}

/// Entries the runs need: each run of `len` pages is cut into
/// `ceil(len / (ms / PAGE_SIZE))` chunks (Linux's `seg_len >= max_segment`
/// rule). Also validates frame numbers: a run of consecutive pages is valid
/// when its last page, `start + len - 1`, is at most [`MAX_PFN`].
fn count_chunks(runs: &[(usize, Pfn)], used: usize, ms: u64) -> Result<usize, SgError> {
    let pages_per_seg = (ms / PAGE_SIZE) as usize;
    let mut chunks = 0usize;
    for (k, &(start, pfn)) in runs.iter().enumerate() {
        let end = runs.get(k + 1).map_or(used, |r| r.0);
        let len = end.saturating_sub(start);
        let last_ok = MAX_PFN.saturating_sub(len.saturating_sub(1) as u64);
        if pfn.raw() > last_ok {
            // The first invalid page: the start itself, or MAX_PFN + 1.
            let bad = if pfn.raw() > MAX_PFN {
                pfn.raw()
            } else {
                MAX_PFN + 1
            };
            return Err(SgError::PfnOverflow { pfn: bad });
        }
        chunks += match len {
            0 => 0,
            l if l <= pages_per_seg => 1,
            l => l.div_ceil(pages_per_seg),
        };
    }
    Ok(chunks)
}

impl SgTable {
    /// Linux `sg_alloc_table_from_pages_segment` for RAM pages: one entry per
    /// run of consecutive frame numbers, at most `max_segment` (rounded down to
    /// a page) bytes each, covering `[offset, offset + size)` of the pages.
    pub fn from_pages(
        pfns: &[Pfn],
        offset: u64,
        size: u64,
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        Self::from_page_source(pfns, offset, size, max_segment)
    }

    /// [`from_pages`](Self::from_pages) with a kind per page: pages merge only
    /// when consecutive **and** of equal kind (same provider).
    pub fn from_pages_kinds(
        pages: &[(Pfn, SegKind)],
        offset: u64,
        size: u64,
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        Self::from_page_source(pages, offset, size, max_segment)
    }

    /// [`from_pages`](Self::from_pages) with a closure classifying each page.
    pub fn from_pages_with<F: Fn(Pfn) -> SegKind>(
        pfns: &[Pfn],
        kind_of: F,
        offset: u64,
        size: u64,
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        Self::from_page_source(
            &PagesWithKind::new(pfns, kind_of),
            offset,
            size,
            max_segment,
        )
    }

    /// [`from_pages`](Self::from_pages) over any [`PageSource`].
    pub fn from_page_source<P: PageSource + ?Sized>(
        pages: &P,
        offset: u64,
        size: u64,
        max_segment: u64,
    ) -> Result<SgTable, SgError> {
        let mut a = SgAppendTable::new();
        a.append_from(pages, offset, size, max_segment, 0)?;
        Ok(a.into_table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Tiny deterministic generator (xorshift64*).
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The one-pass builder gives the entries of the reserving append path
    /// (`left_pages > 0`, then finished) in the `__sg_alloc_table` layout, for
    /// entry counts around every chunk edge, any offset / size and runs longer
    /// than `max_segment`; a bad frame number is the error `count_chunks` names.
    #[test]
    fn fresh_build_matches_append_path() {
        let mut st = 0x9e37_79b9_7f4a_7c15u64;
        let counts = [
            1usize, 2, 126, 127, 128, 129, 130, 254, 255, 256, 257, 381, 382, 383, 1000,
        ];
        for &runs_wanted in &counts {
            for round in 0..6 {
                let mut pfns = Vec::new();
                let mut next = 0x1000u64;
                for _ in 0..runs_wanted {
                    let len = 1 + rng(&mut st) % 9;
                    next += 2 + rng(&mut st) % 50;
                    pfns.extend((next..next + len).map(Pfn::new));
                    next += len;
                }
                let offset = if round % 2 == 0 {
                    0
                } else {
                    rng(&mut st) % PAGE_SIZE
                };
                let covered = pfns.len() as u64 * PAGE_SIZE - offset;
                let size = match round {
                    0 | 1 => covered,
                    _ => 1 + rng(&mut st) % covered,
                };
                for ms in [u64::MAX, 9 * PAGE_SIZE, 4 * PAGE_SIZE, PAGE_SIZE] {
                    let t = SgTable::from_pages(&pfns, offset, size, ms).unwrap();
                    let mut a = SgAppendTable::new();
                    a.append_pages(&pfns, offset, size, ms, 1).unwrap();
                    let r = a.into_table();
                    let cpu = |t: &SgTable| -> Vec<_> {
                        t.iter().map(|e| (e.phys(), e.len(), e.kind())).collect()
                    };
                    let ctx = alloc::format!("runs {runs_wanted} round {round} ms {ms:#x}");
                    assert_eq!(cpu(&t), cpu(&r), "{ctx}");
                    assert_eq!(t.total_len(), size, "{ctx}");
                    let n = t.orig_nents();
                    let layout = SgTable::with_layout(n);
                    let links = |t: &SgTable| -> Vec<usize> {
                        t.slots()
                            .iter()
                            .enumerate()
                            .filter(|s| s.1.is_chain())
                            .map(|s| s.0)
                            .collect()
                    };
                    assert_eq!(links(&t), links(&layout), "{ctx}");
                    assert_eq!(t.slot_count(), layout.slot_count(), "{ctx}");
                    assert_eq!(t.alloc_nents(), n, "{ctx}");
                    assert_eq!(t.nents(), n, "{ctx}");
                    assert_eq!(t.last_chunk_start, layout.last_chunk_start, "{ctx}");
                    let ends: Vec<bool> = t.slots().iter().map(|s| s.is_end()).collect();
                    let want_ends: Vec<bool> = (0..t.slot_count())
                        .map(|i| i + 1 == t.slot_count())
                        .collect();
                    assert_eq!(ends, want_ends, "{ctx}");
                }
            }
        }
        // A run running past the top page and a lone page above MAX_PFN name the
        // same pfn as count_chunks.
        for (pfns, want) in [
            (
                vec![Pfn::new(5), Pfn::new(MAX_PFN), Pfn::new(MAX_PFN + 1)],
                MAX_PFN + 1,
            ),
            (vec![Pfn::new(MAX_PFN + 7)], MAX_PFN + 7),
        ] {
            let r = SgTable::from_pages(&pfns, 0, pfns.len() as u64 * PAGE_SIZE, PAGE_SIZE * 4);
            assert_eq!(r, Err(SgError::PfnOverflow { pfn: want }));
        }
    }

    /// The streaming one-shot layout equals the `get_next_sg` emulation.
    #[test]
    fn fresh_layout_matches_get_next_sg() {
        for n in 1..700u64 {
            let pfns: Vec<Pfn> = (0..n).map(|i| Pfn::new(3 * i)).collect();
            let t = SgTable::from_pages(&pfns, 0, n * PAGE_SIZE, u64::MAX).unwrap();
            let reference = SgTable::with_layout(n as usize);
            let links = |t: &SgTable| -> Vec<usize> {
                t.slots()
                    .iter()
                    .enumerate()
                    .filter(|s| s.1.is_chain())
                    .map(|s| s.0)
                    .collect()
            };
            assert_eq!(links(&t), links(&reference), "n = {n}");
            assert_eq!(t.slot_count(), reference.slot_count());
            assert_eq!(t.alloc_nents(), reference.alloc_nents());
            assert_eq!(t.last_chunk_start, reference.last_chunk_start);
            // Same layout through the reserving path (left_pages > 0, then finish).
            let mut a = SgAppendTable::new();
            a.append_pages(&pfns, 0, n * PAGE_SIZE, u64::MAX, 1)
                .unwrap();
            let r = a.into_table();
            let want: Vec<_> = t.iter().map(|e| (e.phys(), e.len())).collect();
            let got: Vec<_> = r.iter().map(|e| (e.phys(), e.len())).collect();
            assert_eq!(got, want);
        }
    }
}
