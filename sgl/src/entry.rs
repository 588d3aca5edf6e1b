//! One scatterlist entry (Linux `struct scatterlist`).
//!
//! Linux packs a page pointer plus two link bits, offset, length, DMA address,
//! DMA length and DMA flags into 32 bytes. We keep the same budget but store
//! the CPU side as a typed physical address (no `struct page`) and spend the
//! bytes Linux uses for the pointer tag on the segment's [`SegKind`], so the
//! mapping path decides per segment with one test instead of a pgmap lookup
//! per page (`include/linux/scatterlist.h`).

use crate::addr::{DmaAddr, PhysAddr};
use crate::error::SgError;
use crate::kind::{ProviderId, SegKind};
use core::fmt;
use core::ops::{BitOr, BitOrAssign};

/// Per-entry DMA flags (Linux `sg->dma_flags`, `SG_DMA_*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DmaFlags(u8);

impl DmaFlags {
    /// No flag set.
    pub const EMPTY: Self = Self(0);
    /// `SG_DMA_BUS_ADDRESS`: the DMA address is a PCI bus address (P2P through a
    /// switch) and must not be unmapped.
    pub const BUS_ADDRESS: Self = Self(1 << 0);
    /// `SG_DMA_SWIOTLB`: set on the first entry when the list was mapped entry
    /// by entry through bounce buffers.
    pub const SWIOTLB: Self = Self(1 << 1);
    /// The entry was mapped as MMIO (Linux passes `DMA_ATTR_MMIO` per call
    /// instead; recording it lets unmap and sync skip cache maintenance).
    pub const MMIO: Self = Self(1 << 2);
    const ALL: u8 = 0b111;

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits, or `None` if an unknown bit is set.
    #[inline]
    pub const fn from_bits(bits: u8) -> Option<Self> {
        if bits & !Self::ALL != 0 {
            None
        } else {
            Some(Self(bits))
        }
    }

    /// True if every flag of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no flag is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the flags of `other` added.
    #[inline]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` with the flags of `other` removed.
    #[inline]
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for DmaFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for DmaFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for DmaFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DmaFlags(")?;
        let mut first = true;
        for (flag, name) in [
            (Self::BUS_ADDRESS, "BUS_ADDRESS"),
            (Self::SWIOTLB, "SWIOTLB"),
            (Self::MMIO, "MMIO"),
        ] {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// Link bit: this slot is a chain link to the next chunk (Linux `SG_CHAIN`).
pub(crate) const LINK_CHAIN: u8 = 0x01;
/// Link bit: this slot ends the list (Linux `SG_END`).
pub(crate) const LINK_END: u8 = 0x02;

const TAG_RAM: u8 = 0;
const TAG_PEER_BAR: u8 = 1;
const TAG_STOLEN_RAM: u8 = 2;
const TAG_DEVICE_PRIVATE: u8 = 3;

/// One scatterlist slot: a data entry, or a chain link between chunks.
///
/// Layout (32 bytes, like Linux on 64-bit with `NEED_SG_DMA_LENGTH` and
/// `NEED_SG_DMA_FLAGS`): physical address, DMA address, CPU length, DMA length,
/// provider id, kind tag, DMA flags, link bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SgEntry {
    phys: u64,
    dma_addr: u64,
    len: u32,
    dma_len: u32,
    provider: u32,
    kind_tag: u8,
    dma_flags: u8,
    link: u8,
}

static_assertions::const_assert!(core::mem::size_of::<SgEntry>() <= 32);

impl SgEntry {
    /// An empty, unlinked slot.
    pub(crate) const EMPTY: Self = Self {
        phys: 0,
        dma_addr: 0,
        len: 0,
        dma_len: 0,
        provider: 0,
        kind_tag: TAG_RAM,
        dma_flags: 0,
        link: 0,
    };

    /// A chain-link slot.
    pub(crate) const CHAIN: Self = Self {
        link: LINK_CHAIN,
        ..Self::EMPTY
    };

    /// An unlinked entry with only the CPU side set, built in one go (the
    /// builders' hot path).
    #[inline]
    pub(crate) const fn cpu(phys: u64, len: u32, kind: SegKind) -> Self {
        let (kind_tag, provider) = pack_kind(kind);
        Self {
            phys,
            len,
            kind_tag,
            provider,
            ..Self::EMPTY
        }
    }

    /// Sets the CPU side, keeping the link bits (Linux `sg_set_page`).
    #[inline]
    pub(crate) fn set_cpu(&mut self, phys: u64, len: u32, kind: SegKind) {
        let (tag, provider) = pack_kind(kind);
        self.phys = phys;
        self.len = len;
        self.kind_tag = tag;
        self.provider = provider;
    }

    /// Overwrites the CPU length (continuation and split).
    #[inline]
    pub(crate) fn set_len(&mut self, len: u32) {
        self.len = len;
    }

    /// Sets the raw DMA fields without checks (split copies validated values).
    #[inline]
    pub(crate) fn set_dma_raw(&mut self, addr: u64, len: u32, flags: u8) {
        self.dma_addr = addr;
        self.dma_len = len;
        self.dma_flags = flags;
    }

    /// Linux `sg_mark_end`: set END, clear CHAIN.
    #[inline]
    pub(crate) fn mark_end(&mut self) {
        self.link = LINK_END;
    }

    /// Linux `sg_unmark_end`.
    #[inline]
    pub(crate) fn unmark_end(&mut self) {
        self.link &= !LINK_END;
    }

    /// CPU physical address of the first byte.
    #[inline]
    pub const fn phys(&self) -> PhysAddr {
        PhysAddr::new(self.phys)
    }

    /// CPU-side length in bytes (Linux `sg->length`).
    #[inline]
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// True if the CPU-side length is zero (link slots and DMA-only entries).
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first byte inside its page (Linux `sg->offset`).
    #[inline]
    pub const fn offset(&self) -> u64 {
        self.phys().page_offset()
    }

    /// Physical address one past the last byte (never wraps for entries built
    /// by this crate: builders refuse ranges that would).
    #[inline]
    pub const fn phys_end(&self) -> u64 {
        self.phys.wrapping_add(self.len as u64)
    }

    /// The kind of memory this entry covers.
    #[inline]
    pub const fn kind(&self) -> SegKind {
        let p = ProviderId::new(self.provider);
        match self.kind_tag {
            TAG_PEER_BAR => SegKind::PeerBar(p),
            TAG_STOLEN_RAM => SegKind::StolenRam(p),
            TAG_DEVICE_PRIVATE => SegKind::DevicePrivate(p),
            _ => SegKind::Ram,
        }
    }

    /// True for a system-RAM entry ([`SegKind::Ram`]): one byte compare, for
    /// hot loops that only need to know whether anything else is present.
    #[inline]
    pub const fn is_ram(&self) -> bool {
        !matches!(
            self.kind_tag,
            TAG_PEER_BAR | TAG_STOLEN_RAM | TAG_DEVICE_PRIVATE
        )
    }

    /// DMA address (Linux `sg_dma_address`).
    #[inline]
    pub const fn dma_address(&self) -> DmaAddr {
        DmaAddr::new(self.dma_addr)
    }

    /// DMA length (Linux `sg_dma_len`).
    #[inline]
    pub const fn dma_len(&self) -> u32 {
        self.dma_len
    }

    /// DMA flags.
    #[inline]
    pub const fn dma_flags(&self) -> DmaFlags {
        DmaFlags(self.dma_flags)
    }

    /// True if this slot is a chain link (never yielded by the iterators).
    #[inline]
    pub const fn is_chain(&self) -> bool {
        self.link & LINK_CHAIN != 0
    }

    /// True if this entry is marked as the last of its list (Linux `sg_is_last`).
    #[inline]
    pub const fn is_end(&self) -> bool {
        self.link & LINK_END != 0
    }

    /// Sets the DMA side (used by mapping backends). `len` may be a `u32`
    /// (e.g. [`len()`](Self::len)), a `u64`, a `usize` or a literal; a length above `u32::MAX` and a
    /// range that wraps the DMA address space are refused, never truncated.
    pub fn set_dma(
        &mut self,
        addr: DmaAddr,
        len: impl DmaLen,
        flags: DmaFlags,
    ) -> Result<(), SgError> {
        let len = len.dma_len()?;
        let len32 = u32::try_from(len).map_err(|_| SgError::LengthTooLarge { len })?;
        if len != 0 && addr.last_of(len).is_none() {
            return Err(SgError::DmaOverflow { start: addr, len });
        }
        self.set_dma_raw(addr.raw(), len32, flags.bits());
        Ok(())
    }

    /// Replaces only the DMA flags (Linux `sg_dma_mark_bus_address` and friends).
    #[inline]
    pub fn set_dma_flags(&mut self, flags: DmaFlags) {
        self.dma_flags = flags.bits();
    }

    /// Clears the DMA side (address, length, flags), as unmap does.
    #[inline]
    pub fn clear_dma(&mut self) {
        self.set_dma_raw(0, 0, 0);
    }
}

/// A length argument for [`SgEntry::set_dma`]: `u32`, `u64`, `usize`, or an
/// integer literal (`i32`, refused when negative). Lets mappers pass an entry's
/// `u32` length or a computed `u64` without casts that could truncate.
pub trait DmaLen {
    /// The length in bytes, or an error naming a negative value.
    fn dma_len(self) -> Result<u64, SgError>;
}

impl DmaLen for u32 {
    fn dma_len(self) -> Result<u64, SgError> {
        Ok(u64::from(self))
    }
}

impl DmaLen for u64 {
    fn dma_len(self) -> Result<u64, SgError> {
        Ok(self)
    }
}

impl DmaLen for usize {
    fn dma_len(self) -> Result<u64, SgError> {
        u64::try_from(self).map_err(|_| SgError::LengthTooLarge { len: u64::MAX })
    }
}

impl DmaLen for i32 {
    fn dma_len(self) -> Result<u64, SgError> {
        u64::try_from(self).map_err(|_| SgError::NegativeLength {
            len: i64::from(self),
        })
    }
}

#[inline]
const fn pack_kind(kind: SegKind) -> (u8, u32) {
    match kind {
        SegKind::Ram => (TAG_RAM, 0),
        SegKind::PeerBar(p) => (TAG_PEER_BAR, p.raw()),
        SegKind::StolenRam(p) => (TAG_STOLEN_RAM, p.raw()),
        SegKind::DevicePrivate(p) => (TAG_DEVICE_PRIVATE, p.raw()),
    }
}

impl fmt::Debug for SgEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_chain() {
            return f.write_str("SgEntry(CHAIN)");
        }
        f.debug_struct("SgEntry")
            .field("phys", &self.phys())
            .field("len", &self.len)
            .field("kind", &self.kind())
            .field("dma", &self.dma_address())
            .field("dma_len", &self.dma_len)
            .field("dma_flags", &self.dma_flags())
            .field("end", &self.is_end())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_32_bytes_and_kinds_round_trip() {
        assert_eq!(core::mem::size_of::<SgEntry>(), 32);
        let mut e = SgEntry::EMPTY;
        for k in [
            SegKind::Ram,
            SegKind::PeerBar(ProviderId::new(7)),
            SegKind::StolenRam(ProviderId::new(u32::MAX)),
            SegKind::DevicePrivate(ProviderId::new(0)),
        ] {
            e.set_cpu(0x1000, 10, k);
            assert_eq!(e.kind(), k);
            assert_eq!(e.is_ram(), k == SegKind::Ram, "{k:?}");
        }
    }

    #[test]
    fn set_dma_checks_len_and_wrap() {
        let mut e = SgEntry::EMPTY;
        assert_eq!(
            e.set_dma(DmaAddr::new(0), 1u64 << 32, DmaFlags::EMPTY),
            Err(SgError::LengthTooLarge { len: 1 << 32 })
        );
        assert_eq!(
            e.set_dma(DmaAddr::new(u64::MAX), 2u32, DmaFlags::EMPTY),
            Err(SgError::DmaOverflow {
                start: DmaAddr::new(u64::MAX),
                len: 2
            })
        );
        assert_eq!(
            e.set_dma(DmaAddr::new(0), -1, DmaFlags::EMPTY),
            Err(SgError::NegativeLength { len: -1 })
        );
        e.set_dma(
            DmaAddr::new(0x5000),
            0x100,
            DmaFlags::BUS_ADDRESS | DmaFlags::MMIO,
        )
        .unwrap();
        assert_eq!(e.dma_address(), DmaAddr::new(0x5000));
        assert_eq!(e.dma_len(), 0x100);
        assert!(e.dma_flags().contains(DmaFlags::BUS_ADDRESS));
        assert!(!e.dma_flags().contains(DmaFlags::SWIOTLB));
        assert_eq!(
            alloc::format!("{:?}", e.dma_flags()),
            "DmaFlags(BUS_ADDRESS | MMIO)"
        );
        e.clear_dma();
        assert_eq!((e.dma_address().raw(), e.dma_len()), (0, 0));
        assert!(e.dma_flags().is_empty());
        assert_eq!(DmaFlags::from_bits(8), None);
        assert_eq!(DmaFlags::from_bits(3).map(|f| f.bits()), Some(3));
    }

    #[test]
    fn link_bits() {
        let mut e = SgEntry::CHAIN;
        assert!(e.is_chain());
        e.mark_end();
        assert!(e.is_end() && !e.is_chain());
        e.unmark_end();
        assert!(!e.is_end());
    }
}
