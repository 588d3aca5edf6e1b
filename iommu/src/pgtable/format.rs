//! The format trait: geometry and entry encoding of one hardware table layout.

use alloc::string::String;

use bitflags::bitflags;
use scatterlist::PhysAddr;

use super::{mask, AmdV1, ArmLpae, VtdSs};
use crate::walker::HwRegs;

bitflags! {
    /// Mapping protection, the Linux `IOMMU_*` prot bits (include/linux/iommu.h).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Prot: u32 {
        /// Device may read (`IOMMU_READ`).
        const READ = 1 << 0;
        /// Device may write (`IOMMU_WRITE`).
        const WRITE = 1 << 1;
        /// Cache-coherent / snooped access (`IOMMU_CACHE`).
        const CACHE = 1 << 2;
        /// No instruction fetch (`IOMMU_NOEXEC`).
        const NOEXEC = 1 << 3;
        /// Device memory, e.g. a peer BAR (`IOMMU_MMIO`).
        const MMIO = 1 << 4;
        /// Privileged-only (`IOMMU_PRIV`).
        const PRIV = 1 << 5;
    }
}

/// One decoded table entry, as the writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pte {
    /// Not present.
    Empty,
    /// Points to the next-level table at this address.
    Table(PhysAddr),
    /// Translates a page.
    Leaf {
        /// Output address of the start of the whole page (for a contiguous
        /// group of entries: of the whole group).
        oa: PhysAddr,
        /// log2 of the page size (may exceed the level's item size for a
        /// contiguous group).
        size_lg2: u32,
        /// Decoded permissions.
        prot: Prot,
    },
}

/// A bit test on a raw entry ([`PtFormat::one_entry_leaf`]): it matches
/// `pte` when `(pte & mask) ^ flip >= min`. One comparison expresses "these
/// bits set, those clear" (flip the bits that must be clear, `min` = all the
/// masked bits) as well as "this bit set and at least one of those" (no
/// flip, `min` = the one bit plus the lowest of the others, when the others
/// are all below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafBits {
    /// The bits looked at.
    pub mask: u64,
    /// The masked bits that are inverted before the comparison.
    pub flip: u64,
    /// The least value the masked, flipped bits may have.
    pub min: u64,
}

impl LeafBits {
    /// Matches no entry.
    pub const NEVER: Self = Self {
        mask: 0,
        flip: 0,
        min: 1,
    };

    /// Whether `pte` matches.
    #[inline(always)]
    pub fn matches(&self, pte: u64) -> bool {
        (pte & self.mask) ^ self.flip >= self.min
    }
}

/// Geometry and entry encoding of a page-table format (generic_pt `fmt/*.h`).
///
/// The engine never looks at entry bits itself; everything goes through
/// `encode_*`/`decode`.
pub trait PtFormat {
    /// Human-readable name, e.g. `"vtdss-4level"`.
    fn name(&self) -> String;
    /// Level of the root table (levels - 1).
    fn top_level(&self) -> u32;
    /// log2 of the bytes one entry at `level` covers.
    fn item_lg2(&self, level: u32) -> u32;
    /// log2 of the number of entries of a table at `level`.
    fn index_bits(&self, level: u32) -> u32;
    /// Bytes of a table at `level` (allocated rounded up to a page).
    fn table_bytes(&self, level: u32) -> u64 {
        8u64 << self.index_bits(level)
    }
    /// Input (IOVA) address bits.
    fn ias(&self) -> u32;
    /// Output (physical) address bits.
    fn oas(&self) -> u32;
    /// Bitmap of the page sizes a leaf at `level` can have.
    fn possible_sizes(&self, level: u32) -> u64;
    /// Encodes an entry at `level` pointing to a table at `level - 1`.
    fn encode_table(&self, level: u32, table: PhysAddr) -> u64;
    /// Encodes a leaf at `level` for a page of `2^size_lg2` bytes at `oa`. For
    /// a contiguous page (`size_lg2 > item_lg2(level)`) the same value is
    /// written to every entry of the group.
    fn encode_leaf(&self, level: u32, oa: PhysAddr, size_lg2: u32, prot: Prot) -> u64;
    /// Decodes an entry read at `level`.
    fn decode(&self, level: u32, pte: u64) -> Pte;
    /// How to recognise, from its bits alone, a leaf of exactly one entry
    /// (`2^item_lg2(level)` bytes) at `level`: the test of the one-page
    /// unmap fast path. It must be conservative: whenever it matches,
    /// [`decode`](Self::decode) says `Leaf` with `size_lg2 ==
    /// item_lg2(level)`; it may refuse other encodings of such a leaf (the
    /// general path then decides). The default never matches.
    fn one_entry_leaf(&self, level: u32) -> LeafBits {
        let _ = level;
        LeafBits::NEVER
    }
    /// The register values (root pointer, widths) the hardware walker is
    /// programmed with for a table rooted at `root`.
    fn hw_regs(&self, root: PhysAddr) -> HwRegs;
    /// Every page size this format supports at any level.
    fn pgsize_bitmap(&self) -> u64 {
        let mut b = 0;
        for l in 0..=self.top_level() {
            b |= self.possible_sizes(l);
        }
        b & mask(self.ias())
    }
}

/// A format chosen at run time (what a domain holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyFormat {
    /// Intel VT-d second stage.
    VtdSs(VtdSs),
    /// AMD IOMMU v1 host table.
    AmdV1(AmdV1),
    /// ARM LPAE stage 1 or 2.
    ArmLpae(ArmLpae),
}

macro_rules! dispatch {
    ($s:ident, $f:ident ( $($a:expr),* )) => {
        match $s {
            AnyFormat::VtdSs(x) => x.$f($($a),*),
            AnyFormat::AmdV1(x) => x.$f($($a),*),
            AnyFormat::ArmLpae(x) => x.$f($($a),*),
        }
    };
}

impl PtFormat for AnyFormat {
    fn name(&self) -> String {
        dispatch!(self, name())
    }
    fn top_level(&self) -> u32 {
        dispatch!(self, top_level())
    }
    fn item_lg2(&self, level: u32) -> u32 {
        dispatch!(self, item_lg2(level))
    }
    fn index_bits(&self, level: u32) -> u32 {
        dispatch!(self, index_bits(level))
    }
    fn table_bytes(&self, level: u32) -> u64 {
        dispatch!(self, table_bytes(level))
    }
    fn ias(&self) -> u32 {
        dispatch!(self, ias())
    }
    fn oas(&self) -> u32 {
        dispatch!(self, oas())
    }
    fn possible_sizes(&self, level: u32) -> u64 {
        dispatch!(self, possible_sizes(level))
    }
    fn encode_table(&self, level: u32, table: PhysAddr) -> u64 {
        dispatch!(self, encode_table(level, table))
    }
    fn encode_leaf(&self, level: u32, oa: PhysAddr, size_lg2: u32, prot: Prot) -> u64 {
        dispatch!(self, encode_leaf(level, oa, size_lg2, prot))
    }
    fn decode(&self, level: u32, pte: u64) -> Pte {
        dispatch!(self, decode(level, pte))
    }
    fn one_entry_leaf(&self, level: u32) -> LeafBits {
        dispatch!(self, one_entry_leaf(level))
    }
    fn hw_regs(&self, root: PhysAddr) -> HwRegs {
        dispatch!(self, hw_regs(root))
    }
}
