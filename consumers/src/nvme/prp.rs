//! Physical Region Page lists: how an NVMe command names its data (NVMe
//! base specification, "Physical Region Page Entry and List"; Linux
//! drivers/nvme/host/pci.c `nvme_pci_setup_prps`).
//!
//! The rules, on the DMA addresses the controller will use:
//! * PRP1 is the first byte's address; its offset inside the controller
//!   page must be dword aligned (bits 1:0 clear);
//! * every later entry names a whole controller page: offset 0;
//! * so every DMA segment but the first must start on a page boundary and
//!   every segment but the last must end on one (Linux: a segment ending
//!   inside a page is `dma_len < 0`, "Invalid SGL for payload").
//!
//! Then: data within PRP1's page → PRP2 = 0; ending in the next page →
//! PRP2 = that page; else PRP2 points to a PRP list, little-endian u64
//! entries, 512 per 4 KiB page, where the last slot of a full page points to
//! the next list page when more entries follow.

use core::fmt;
use core::ops::Range;
use dma_api::Segment;

/// The controller page size the driver uses (drivers/nvme/host/nvme.h
/// `NVME_CTRL_PAGE_SIZE`, 4 KiB whatever the CPU's page size).
pub const NVME_CTRL_PAGE_SIZE: u64 = 4096;

/// PRP entries per list page (`NVME_CTRL_PAGE_SIZE >> 3`).
pub const PRPS_PER_PAGE: usize = (NVME_CTRL_PAGE_SIZE / 8) as usize;

/// A PRP rule a DMA segment breaks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PrpRule {
    /// The first segment does not start on a dword.
    FirstNotDwordAligned,
    /// A segment other than the first starts inside a controller page.
    StartsInsidePage,
    /// A segment other than the last ends inside a controller page.
    EndsInsidePage,
}

impl fmt::Display for PrpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrpRule::FirstNotDwordAligned => "starts the transfer off a dword",
            PrpRule::StartsInsidePage => {
                "is not the first segment and starts inside a controller page"
            }
            PrpRule::EndsInsidePage => "is not the last segment and ends inside a controller page",
        })
    }
}

/// The PRP entries of a transfer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PrpPlan {
    /// PRP1: the first byte.
    pub prp1: u64,
    /// The controller pages after PRP1's, in order: PRP2 itself when there
    /// is one, else the PRP list's entries.
    pub pages: Vec<u64>,
    /// Bytes described.
    pub len: u64,
}

/// The PRP entries of `segments` (the mapped table's DMA segments, in
/// order), or the first segment that breaks a rule, as `(index, rule)`.
pub fn plan(segments: &[Segment]) -> Result<PrpPlan, (usize, PrpRule)> {
    let mask = NVME_CTRL_PAGE_SIZE - 1;
    let n = segments.len();
    let mut pages = Vec::new();
    let mut len = 0u64;
    for (i, s) in segments.iter().enumerate() {
        let start = s.dma.raw();
        let end = start.saturating_add(s.len);
        if i == 0 && start & 3 != 0 {
            return Err((i, PrpRule::FirstNotDwordAligned));
        }
        if i > 0 && start & mask != 0 {
            return Err((i, PrpRule::StartsInsidePage));
        }
        if i + 1 < n && end & mask != 0 {
            return Err((i, PrpRule::EndsInsidePage));
        }
        // Pages that start inside this segment; the first segment's first
        // page is PRP1's.
        let mut p = if i == 0 {
            (start & !mask).saturating_add(NVME_CTRL_PAGE_SIZE)
        } else {
            start
        };
        while p < end {
            pages.push(p);
            p = p.saturating_add(NVME_CTRL_PAGE_SIZE);
        }
        len = len.saturating_add(s.len);
    }
    Ok(PrpPlan {
        prp1: segments.first().map_or(0, |s| s.dma.raw()),
        pages,
        len,
    })
}

/// How `n` list entries fill PRP list pages: the entry range of each page.
/// Every page but the last holds `PRPS_PER_PAGE - 1` entries and, in its
/// last slot, the next page's address (Linux moves the last entry of a full
/// page to the next one and puts the chain pointer in its place).
pub fn list_chunks(n: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let take = if n - i <= PRPS_PER_PAGE {
            n - i
        } else {
            PRPS_PER_PAGE - 1
        };
        out.push(i..i + take);
        i += take;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dma_api::{DmaAddr, SegmentRoute};

    fn seg(dma: u64, len: u64) -> Segment {
        Segment {
            dma: DmaAddr::new(dma),
            len,
            route: SegmentRoute::Ram,
        }
    }

    #[test]
    fn entries_follow_nvme_pci_setup_prps() {
        // Within one page: no PRP2.
        let p = plan(&[seg(0x1_0200, 0x200)]).unwrap();
        assert_eq!((p.prp1, p.pages.len(), p.len), (0x1_0200, 0, 0x200));
        // Into the next page of the same segment.
        let p = plan(&[seg(0x1_0200, 0x1000)]).unwrap();
        assert_eq!(p.pages, [0x1_1000]);
        // Across segments: every later page, in order.
        let p = plan(&[
            seg(0x1_0800, 0x800),
            seg(0x5_0000, 0x2000),
            seg(0x9_0000, 0x10),
        ])
        .unwrap();
        assert_eq!(p.pages, [0x5_0000, 0x5_1000, 0x9_0000]);
        assert_eq!(p.len, 0x2810);
    }

    #[test]
    fn rules_name_the_segment() {
        assert_eq!(
            plan(&[seg(0x1002, 0x10)]),
            Err((0, PrpRule::FirstNotDwordAligned))
        );
        assert_eq!(
            plan(&[seg(0x1000, 0x800), seg(0x3000, 0x1000)]),
            Err((0, PrpRule::EndsInsidePage))
        );
        assert_eq!(
            plan(&[seg(0x1000, 0x1000), seg(0x3800, 0x800)]),
            Err((1, PrpRule::StartsInsidePage))
        );
    }

    #[test]
    fn list_pages_chain_after_511_entries() {
        assert_eq!(list_chunks(0), Vec::<Range<usize>>::new());
        assert_eq!(list_chunks(512), vec![0..512]);
        assert_eq!(list_chunks(513), [0..511, 511..513]);
        assert_eq!(list_chunks(1100), [0..511, 511..1022, 1022..1100]);
    }
}
