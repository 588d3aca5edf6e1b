//! ARM LPAE (VMSAv8-64) stage-1 and stage-2 formats, as io-pgtable-arm.c
//! programs them for SMMUs.
//!
//! Granules 4K/16K/64K (`bits_per_level = granule_shift - 3`), block sizes
//! 4K: 2M/1G, 16K: 32M, 64K: 512M (the 64G/4T level-1 blocks need 52-bit and
//! are not offered, like `arm_lpae_restrict_pgsizes` for oas <= 48). ias/oas
//! 32..=48. The start level is `4 - ceil((ias - shift) / bits_per_level)` in
//! ARM numbering; stage 2 *concatenates* the start level into up to 16 tables
//! when the architecture makes it mandatory (`arm_lpae_concat_mandatory`:
//! 4K start level 0 with oas 40 or 42; 16K start level 0 with ias or oas 48;
//! 16K start level 1 with oas 40), giving one level less.
//!
//! Descriptor bits: valid bit 0; bit 1 set = table (levels above the last) or
//! page (last level), clear = block. Output address bits 47:granule_shift.
//! Leaves always set AF (bit 10). Stage 1: nG (bit 11), AP[2] read-only
//! (bit 7) when not writable, AP[1] unprivileged (bit 6) unless `PRIV`,
//! AttrIndx (bits 4:2) 1 = cacheable, 2 = device, 0 = non-cacheable.
//! Stage 2: S2AP read (bit 6) / write (bit 7), MemAttr (bits 5:2) 0xf =
//! write-back, 0x1 = device, 0x5 = non-cacheable. Both: SH inner-shareable
//! (3 << 8) for cacheable else outer (2 << 8); XN (bits 54:53) for NOEXEC.

use alloc::format;
use alloc::string::String;

use scatterlist::PhysAddr;

use super::{mask, LeafBits, Prot, PtError, PtFormat, Pte};
use crate::walker::HwRegs;

const VALID: u64 = 1 << 0;
const TYPE_TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const AP_UNPRIV: u64 = 1 << 6;
const AP_RDONLY: u64 = 1 << 7;
const HAP_READ: u64 = 1 << 6;
const HAP_WRITE: u64 = 1 << 7;
const SH_IS: u64 = 3 << 8;
const SH_OS: u64 = 2 << 8;
const XN: u64 = 3 << 53;
const ATTR_SHIFT: u32 = 2;
const S1_IDX_NC: u64 = 0;
const S1_IDX_CACHE: u64 = 1;
const S1_IDX_DEV: u64 = 2;
const S2_MEMATTR_OIWB: u64 = 0xf;
const S2_MEMATTR_NC: u64 = 0x5;
const S2_MEMATTR_DEV: u64 = 0x1;
const S2_MAX_CONCAT: u64 = 16;

/// Translation stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmStage {
    /// Stage 1 (`ARM_64_LPAE_S1`).
    S1,
    /// Stage 2 (`ARM_64_LPAE_S2`).
    S2,
}

/// Translation granule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granule {
    /// 4 KiB.
    G4K,
    /// 16 KiB.
    G16K,
    /// 64 KiB.
    G64K,
}

impl Granule {
    /// log2 of the granule.
    pub const fn shift(self) -> u32 {
        match self {
            Self::G4K => 12,
            Self::G16K => 14,
            Self::G64K => 16,
        }
    }

    /// The granule matching the smallest page size of a Linux pgsize bitmap.
    pub fn from_pgsize_bitmap(bitmap: u64) -> Option<Self> {
        if bitmap & (1 << 12) != 0 {
            Some(Self::G4K)
        } else if bitmap & (1 << 14) != 0 {
            Some(Self::G16K)
        } else if bitmap & (1 << 16) != 0 {
            Some(Self::G64K)
        } else {
            None
        }
    }
}

/// ARM LPAE table configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmLpae {
    stage: ArmStage,
    granule: Granule,
    ias: u32,
    oas: u32,
    /// Number of levels (generic_pt top level + 1).
    levels: u32,
    /// Index bits of the start-level table (incl. concatenation).
    pgd_bits: u32,
}

impl ArmLpae {
    /// Computes the geometry like `arm_lpae_alloc_pgtable` (+ the stage-2
    /// concatenation rule).
    pub fn new(stage: ArmStage, granule: Granule, ias: u32, oas: u32) -> Result<Self, PtError> {
        if !(32..=48).contains(&ias) {
            return Err(PtError::BadConfig {
                what: "arm lpae ias",
                value: u64::from(ias),
            });
        }
        if !(32..=48).contains(&oas) {
            return Err(PtError::BadConfig {
                what: "arm lpae oas",
                value: u64::from(oas),
            });
        }
        let shift = granule.shift();
        let bpl = shift - 3;
        let va_bits = ias - shift;
        let mut levels = va_bits.div_ceil(bpl);
        let mut start = 4 - levels;
        let mut pgd_bits = va_bits - bpl * (levels - 1);
        if stage == ArmStage::S2 && concat_mandatory(granule, start, ias, oas) {
            if (1u64 << pgd_bits) > S2_MAX_CONCAT {
                return Err(PtError::BadConfig {
                    what: "arm lpae s2 concatenated pages",
                    value: 1 << pgd_bits,
                });
            }
            pgd_bits += bpl;
            start += 1;
            levels -= 1;
        }
        let _ = start;
        Ok(Self {
            stage,
            granule,
            ias,
            oas,
            levels,
            pgd_bits,
        })
    }

    /// The stage.
    pub fn stage(&self) -> ArmStage {
        self.stage
    }

    /// The granule.
    pub fn granule(&self) -> Granule {
        self.granule
    }

    /// Start level in ARM numbering (0..=3).
    pub fn start_level(&self) -> u32 {
        4 - self.levels
    }

    /// Number of concatenated start-level tables (1 when not concatenated).
    pub fn concat_tables(&self) -> u64 {
        let bpl = self.granule.shift() - 3;
        if self.pgd_bits > bpl {
            1 << (self.pgd_bits - bpl)
        } else {
            1
        }
    }

    fn oa_mask(&self) -> u64 {
        mask(48) & !mask(self.granule.shift())
    }
}

/// Arm DDI0487 R_DXBSH / R_SRKBC as encoded by `arm_lpae_concat_mandatory`.
fn concat_mandatory(g: Granule, start: u32, ias: u32, oas: u32) -> bool {
    match (g, start) {
        (Granule::G16K, 0) => oas == 48 || ias == 48,
        (Granule::G4K, 0) => oas == 40 || oas == 42,
        (Granule::G16K, 1) => oas == 40,
        _ => false,
    }
}

impl PtFormat for ArmLpae {
    fn name(&self) -> String {
        let s = match self.stage {
            ArmStage::S1 => 1,
            ArmStage::S2 => 2,
        };
        format!(
            "arm-lpae-s{s}-{}k-ias{}-oas{}",
            1u32 << (self.granule.shift() - 10),
            self.ias,
            self.oas
        )
    }
    fn top_level(&self) -> u32 {
        self.levels - 1
    }
    #[inline]
    fn item_lg2(&self, level: u32) -> u32 {
        self.granule.shift() + level * (self.granule.shift() - 3)
    }
    #[inline]
    fn index_bits(&self, level: u32) -> u32 {
        if level == self.levels - 1 {
            self.pgd_bits
        } else {
            self.granule.shift() - 3
        }
    }
    fn table_bytes(&self, level: u32) -> u64 {
        8u64 << self.index_bits(level)
    }
    fn ias(&self) -> u32 {
        self.ias
    }
    fn oas(&self) -> u32 {
        self.oas
    }
    fn possible_sizes(&self, level: u32) -> u64 {
        if level > self.top_level() {
            return 0;
        }
        match (self.granule, level) {
            (_, 0) | (Granule::G4K, 1 | 2) | (Granule::G16K | Granule::G64K, 1) => {
                1 << self.item_lg2(level)
            }
            _ => 0,
        }
    }
    #[inline]
    fn encode_table(&self, _level: u32, table: PhysAddr) -> u64 {
        (table.raw() & self.oa_mask()) | VALID | TYPE_TABLE_OR_PAGE
    }
    #[inline]
    fn encode_leaf(&self, level: u32, oa: PhysAddr, _size_lg2: u32, prot: Prot) -> u64 {
        let mut e = (oa.raw() & self.oa_mask()) | VALID | AF;
        if level == 0 {
            e |= TYPE_TABLE_OR_PAGE;
        }
        match self.stage {
            ArmStage::S1 => {
                e |= NG;
                if !prot.contains(Prot::WRITE) && prot.contains(Prot::READ) {
                    e |= AP_RDONLY;
                }
                if !prot.contains(Prot::PRIV) {
                    e |= AP_UNPRIV;
                }
                let idx = if prot.contains(Prot::MMIO) {
                    S1_IDX_DEV
                } else if prot.contains(Prot::CACHE) {
                    S1_IDX_CACHE
                } else {
                    S1_IDX_NC
                };
                e |= idx << ATTR_SHIFT;
            }
            ArmStage::S2 => {
                if prot.contains(Prot::READ) {
                    e |= HAP_READ;
                }
                if prot.contains(Prot::WRITE) {
                    e |= HAP_WRITE;
                }
                let attr = if prot.contains(Prot::MMIO) {
                    S2_MEMATTR_DEV
                } else if prot.contains(Prot::CACHE) {
                    S2_MEMATTR_OIWB
                } else {
                    S2_MEMATTR_NC
                };
                e |= attr << ATTR_SHIFT;
            }
        }
        e |= if prot.contains(Prot::CACHE) {
            SH_IS
        } else {
            SH_OS
        };
        if prot.contains(Prot::NOEXEC) {
            e |= XN;
        }
        e
    }
    #[inline]
    fn decode(&self, level: u32, pte: u64) -> Pte {
        if pte & VALID == 0 {
            return Pte::Empty;
        }
        let tbl = pte & TYPE_TABLE_OR_PAGE != 0;
        if level > 0 && tbl {
            return Pte::Table(PhysAddr::new(pte & self.oa_mask()));
        }
        if level == 0 && !tbl {
            return Pte::Empty; // reserved encoding at the last level
        }
        let mut prot = Prot::empty();
        match self.stage {
            ArmStage::S1 => {
                prot |= Prot::READ;
                if pte & AP_RDONLY == 0 {
                    prot |= Prot::WRITE;
                }
                if pte & AP_UNPRIV == 0 {
                    prot |= Prot::PRIV;
                }
                match (pte >> ATTR_SHIFT) & 7 {
                    S1_IDX_CACHE => prot |= Prot::CACHE,
                    S1_IDX_DEV => prot |= Prot::MMIO,
                    _ => {}
                }
            }
            ArmStage::S2 => {
                if pte & HAP_READ != 0 {
                    prot |= Prot::READ;
                }
                if pte & HAP_WRITE != 0 {
                    prot |= Prot::WRITE;
                }
                match (pte >> ATTR_SHIFT) & 0xf {
                    S2_MEMATTR_OIWB => prot |= Prot::CACHE,
                    S2_MEMATTR_DEV => prot |= Prot::MMIO,
                    _ => {}
                }
            }
        }
        if pte & XN != 0 {
            prot |= Prot::NOEXEC;
        }
        Pte::Leaf {
            oa: PhysAddr::new(pte & self.oa_mask()),
            size_lg2: self.item_lg2(level),
            prot,
        }
    }
    /// Valid, with the table/page bit set at level 0 (a page) and clear
    /// above (a block): [`decode`](Self::decode)'s leaf rule.
    #[inline]
    fn one_entry_leaf(&self, level: u32) -> LeafBits {
        LeafBits {
            mask: VALID | TYPE_TABLE_OR_PAGE,
            flip: if level == 0 { 0 } else { TYPE_TABLE_OR_PAGE },
            min: VALID | TYPE_TABLE_OR_PAGE,
        }
    }
    fn hw_regs(&self, root: PhysAddr) -> HwRegs {
        HwRegs::ArmLpae {
            stage2: self.stage == ArmStage::S2,
            ttbr: root,
            granule_shift: self.granule.shift(),
            tsz: 64 - self.ias,
            ps: self.oas,
            sl: self.start_level(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_io_pgtable_arm() {
        // 4K, ias 48: 4 levels from level 0.
        let f = ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).unwrap();
        assert_eq!(
            (f.start_level(), f.concat_tables(), f.index_bits(3)),
            (0, 1, 9)
        );
        // 4K, ias 40, oas 40, stage 2: concatenated 2 tables at level 1.
        let f = ArmLpae::new(ArmStage::S2, Granule::G4K, 40, 40).unwrap();
        assert_eq!((f.start_level(), f.concat_tables()), (1, 2));
        // same for stage 1: not concatenated.
        let f = ArmLpae::new(ArmStage::S1, Granule::G4K, 40, 40).unwrap();
        assert_eq!(
            (f.start_level(), f.concat_tables(), f.index_bits(3)),
            (0, 1, 1)
        );
        // 4K, ias 42, oas 42: 8 tables.
        let f = ArmLpae::new(ArmStage::S2, Granule::G4K, 42, 42).unwrap();
        assert_eq!((f.start_level(), f.concat_tables()), (1, 8));
        // 16K, ias 40, oas 40: start level 1 -> 2 with 16 tables.
        let f = ArmLpae::new(ArmStage::S2, Granule::G16K, 40, 40).unwrap();
        assert_eq!((f.start_level(), f.concat_tables()), (2, 16));
        // 16K, ias 48: level 0 -> 1 with 2 tables.
        let f = ArmLpae::new(ArmStage::S2, Granule::G16K, 48, 48).unwrap();
        assert_eq!((f.start_level(), f.concat_tables()), (1, 2));
        // 64K, ias 32: 2 levels, 8-entry pgd.
        let f = ArmLpae::new(ArmStage::S1, Granule::G64K, 32, 32).unwrap();
        assert_eq!((f.start_level(), f.index_bits(1)), (2, 3));
        assert_eq!(f.pgsize_bitmap(), (1 << 16) | (1 << 29));
        assert!(ArmLpae::new(ArmStage::S1, Granule::G4K, 31, 40).is_err());
    }
}
