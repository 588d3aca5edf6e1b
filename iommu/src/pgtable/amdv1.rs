//! AMD IOMMU v1 host page table (generic_pt `fmt/amdv1.h`; AMD IOMMU spec
//! §2.2.3).
//!
//! 4 KiB granule, 512 entries per level, "mode" 1–6 levels (the level-5 table,
//! mode 6, only uses IOVA bits 63:57 and cannot hold leaves). PR is bit 0,
//! Next Level bits 11:9, the output address bits 51:12, FC bit 60, IR bit 61,
//! IW bit 62. Table entries carry IR|IW (permissions are ANDed down the walk,
//! so the leaf decides) and NL = the level of the table they point to in AMD
//! numbering (= the pointing entry's generic_pt level). A leaf whose size is
//! its level's natural size has NL = 0. Any other power-of-two size is a
//! *contiguous* leaf: NL = 7, written into every entry of the group, with the
//! size encoded as a run of 1s in the address field from bit 12 (size =
//! 2^(13 + run length)). As in generic_pt, every power-of-two size from 4 KiB
//! to 2^51 is supported except 512 GiB (a hardware erratum);
//! [`AmdV1::natural_sizes_only`] restricts the table to 4K/2M/1G/... natural
//! level sizes.

use alloc::format;
use alloc::string::String;

use scatterlist::PhysAddr;

use super::{mask, LeafBits, Prot, PtError, PtFormat, Pte};
use crate::walker::HwRegs;

const PR: u64 = 1 << 0;
const NL_SHIFT: u32 = 9;
const NL_MASK: u64 = 7 << NL_SHIFT;
const NL_SIZE: u64 = 7;
const OA: u64 = ((1u64 << 52) - 1) & !((1u64 << 12) - 1);
const FC: u64 = 1 << 60;
const IR: u64 = 1 << 61;
const IW: u64 = 1 << 62;

/// AMD IOMMU v1 table configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdV1 {
    mode: u32,
    natural_only: bool,
    force_coherent: bool,
}

impl AmdV1 {
    /// A table of `mode` levels (1..=6), all page sizes enabled.
    pub fn new(mode: u32) -> Result<Self, PtError> {
        if !(1..=6).contains(&mode) {
            return Err(PtError::BadConfig {
                what: "amdv1 mode",
                value: u64::from(mode),
            });
        }
        Ok(Self {
            mode,
            natural_only: false,
            force_coherent: false,
        })
    }

    /// Only natural level sizes (4K, 2M, 1G, 256T...; 512G stays excluded).
    pub fn natural_sizes_only(mut self) -> Self {
        self.natural_only = true;
        self
    }

    /// Sets FC (force coherent) in every leaf.
    pub fn with_force_coherent(mut self, on: bool) -> Self {
        self.force_coherent = on;
        self
    }
}

impl PtFormat for AmdV1 {
    fn name(&self) -> String {
        format!(
            "amdv1-mode{}{}",
            self.mode,
            if self.natural_only { "-natural" } else { "" }
        )
    }
    fn top_level(&self) -> u32 {
        self.mode - 1
    }
    #[inline]
    fn item_lg2(&self, level: u32) -> u32 {
        12 + 9 * level
    }
    #[inline]
    fn index_bits(&self, level: u32) -> u32 {
        if level >= 5 {
            7
        } else {
            9
        }
    }
    fn ias(&self) -> u32 {
        (12 + 9 * self.mode).min(64)
    }
    fn oas(&self) -> u32 {
        52
    }
    fn possible_sizes(&self, level: u32) -> u64 {
        if level >= 5 || level > self.top_level() {
            return 0;
        }
        let isz = self.item_lg2(level);
        let sizes = if self.natural_only {
            1u64 << isz
        } else {
            let hi = (isz + 9 - 1).min(51);
            mask(hi + 1) & !mask(isz)
        };
        sizes & !(1u64 << 39)
    }
    #[inline]
    fn encode_table(&self, level: u32, table: PhysAddr) -> u64 {
        PR | (u64::from(level) << NL_SHIFT) | (table.raw() & OA) | IR | IW
    }
    #[inline]
    fn encode_leaf(&self, level: u32, oa: PhysAddr, size_lg2: u32, prot: Prot) -> u64 {
        let mut e = PR | (oa.raw() & OA);
        if prot.contains(Prot::READ) {
            e |= IR;
        }
        if prot.contains(Prot::WRITE) {
            e |= IW;
        }
        if self.force_coherent {
            e |= FC;
        }
        if size_lg2 != self.item_lg2(level) {
            e |= (NL_SIZE << NL_SHIFT) | ((mask(size_lg2 - 13) << 12) & OA);
        }
        e
    }
    #[inline]
    fn decode(&self, level: u32, pte: u64) -> Pte {
        if pte & PR == 0 {
            return Pte::Empty;
        }
        let nl = (pte & NL_MASK) >> NL_SHIFT;
        if level == 0 || nl == 0 || nl == NL_SIZE {
            let mut prot = Prot::empty();
            if pte & IR != 0 {
                prot |= Prot::READ;
            }
            if pte & IW != 0 {
                prot |= Prot::WRITE;
            }
            if pte & FC != 0 {
                prot |= Prot::CACHE;
            }
            let field = (pte & OA) >> 12;
            let (oa, size_lg2) = if nl == NL_SIZE {
                let run = field.trailing_ones();
                ((field & !mask(run + 1)) << 12, 13 + run)
            } else {
                (field << 12, self.item_lg2(level))
            };
            return Pte::Leaf {
                oa: PhysAddr::new(oa),
                size_lg2,
                prot,
            };
        }
        Pte::Table(PhysAddr::new(pte & OA))
    }
    /// Present with next level 0: a page of the level's own size (the
    /// next-level-7 encoding of the same size is left to the general path).
    #[inline]
    fn one_entry_leaf(&self, _level: u32) -> LeafBits {
        LeafBits {
            mask: PR | NL_MASK,
            flip: NL_MASK,
            min: PR | NL_MASK,
        }
    }
    fn hw_regs(&self, root: PhysAddr) -> HwRegs {
        HwRegs::AmdV1 {
            pt_root: root,
            mode: self.mode,
        }
    }
}
