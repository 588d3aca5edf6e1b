//! Intel VT-d second-stage format (generic_pt `fmt/vtdss.h`; VT-d spec §9.8).
//!
//! PAE-like, 4 KiB granule, 512 entries per level, 3/4/5 levels (AGAW
//! 39/48/57). There is no present bit: an entry with neither R (bit 0) nor W
//! (bit 1) is not present, and table entries carry R|W. Leaves above level 0
//! set PS (bit 7) and are 2 MiB (level 1) or 1 GiB (level 2) superpages when
//! the hardware's SLLPS field advertises them. SNP (bit 11) forces snooping
//! and is a domain property (`PT_FEAT_VTDSS_FORCE_COHERENCE`), not a per-map
//! prot. The output address is bits 51:12.

use alloc::format;
use alloc::string::String;

use scatterlist::PhysAddr;

use super::{LeafBits, Prot, PtError, PtFormat, Pte};
use crate::walker::HwRegs;

const R: u64 = 1 << 0;
const W: u64 = 1 << 1;
const PS: u64 = 1 << 7;
const SNP: u64 = 1 << 11;
const OA: u64 = ((1u64 << 52) - 1) & !((1u64 << 12) - 1);

/// VT-d second-stage table configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VtdSs {
    levels: u32,
    sllps: u8,
    force_snoop: bool,
    haw: u32,
}

impl VtdSs {
    /// A table of `levels` (3, 4 or 5) with 2 MiB and 1 GiB superpages,
    /// 52-bit host address width and no forced snooping.
    pub fn new(levels: u32) -> Result<Self, PtError> {
        if !(3..=5).contains(&levels) {
            return Err(PtError::BadConfig {
                what: "vtdss levels",
                value: u64::from(levels),
            });
        }
        Ok(Self {
            levels,
            sllps: 0b11,
            force_snoop: false,
            haw: 52,
        })
    }

    /// Restricts superpages to the SLLPS capability bits (bit 0: 2 MiB,
    /// bit 1: 1 GiB).
    pub fn with_sllps(mut self, sllps: u8) -> Self {
        self.sllps = sllps & 0b11;
        self
    }

    /// Sets SNP in every leaf (force-coherent domain).
    pub fn with_force_snoop(mut self, on: bool) -> Self {
        self.force_snoop = on;
        self
    }

    /// Host address width (output address bits), at most 52.
    pub fn with_haw(mut self, haw: u32) -> Result<Self, PtError> {
        if !(32..=52).contains(&haw) {
            return Err(PtError::BadConfig {
                what: "vtdss haw",
                value: u64::from(haw),
            });
        }
        self.haw = haw;
        Ok(self)
    }
}

impl PtFormat for VtdSs {
    fn name(&self) -> String {
        format!("vtdss-{}level", self.levels)
    }
    fn top_level(&self) -> u32 {
        self.levels - 1
    }
    #[inline]
    fn item_lg2(&self, level: u32) -> u32 {
        12 + 9 * level
    }
    #[inline]
    fn index_bits(&self, _level: u32) -> u32 {
        9
    }
    fn ias(&self) -> u32 {
        12 + 9 * self.levels
    }
    fn oas(&self) -> u32 {
        self.haw
    }
    fn possible_sizes(&self, level: u32) -> u64 {
        match level {
            0 => 1 << 12,
            1 if self.sllps & 1 != 0 => 1 << 21,
            2 if self.sllps & 2 != 0 => 1 << 30,
            _ => 0,
        }
    }
    #[inline]
    fn encode_table(&self, _level: u32, table: PhysAddr) -> u64 {
        (table.raw() & OA) | R | W
    }
    #[inline]
    fn encode_leaf(&self, level: u32, oa: PhysAddr, _size_lg2: u32, prot: Prot) -> u64 {
        let mut e = oa.raw() & OA;
        if prot.contains(Prot::READ) {
            e |= R;
        }
        if prot.contains(Prot::WRITE) {
            e |= W;
        }
        if self.force_snoop {
            e |= SNP;
        }
        if level != 0 {
            e |= PS;
        }
        e
    }
    #[inline]
    fn decode(&self, level: u32, pte: u64) -> Pte {
        if pte & (R | W) == 0 {
            return Pte::Empty;
        }
        if level == 0 || (level <= 2 && pte & PS != 0) {
            let mut prot = Prot::empty();
            if pte & R != 0 {
                prot |= Prot::READ;
            }
            if pte & W != 0 {
                prot |= Prot::WRITE;
            }
            if pte & SNP != 0 {
                prot |= Prot::CACHE;
            }
            return Pte::Leaf {
                oa: PhysAddr::new(pte & OA),
                size_lg2: self.item_lg2(level),
                prot,
            };
        }
        Pte::Table(PhysAddr::new(pte & OA))
    }
    /// Present (R or W) and, above level 0, PS: [`decode`](Self::decode)'s
    /// leaf rule (PS is above R and W, so "PS and R or W" is at least
    /// PS | R). No leaf exists above level 2.
    #[inline]
    fn one_entry_leaf(&self, level: u32) -> LeafBits {
        match level {
            0 => LeafBits {
                mask: R | W,
                flip: 0,
                min: R,
            },
            1 | 2 => LeafBits {
                mask: PS | R | W,
                flip: 0,
                min: PS | R,
            },
            _ => LeafBits::NEVER,
        }
    }
    fn hw_regs(&self, root: PhysAddr) -> HwRegs {
        HwRegs::VtdSs {
            ssptptr: root,
            aw: self.levels - 2,
        }
    }
}
