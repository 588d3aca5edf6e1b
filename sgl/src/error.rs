//! Scatterlist errors. Every one is a caller bug (Linux `-EINVAL`): the DMA
//! layer classifies them as `Invalid`. Each variant names the offending values.

use crate::addr::{DmaAddr, PhysAddr};
use core::fmt;

/// Why a scatterlist operation refused its input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SgError {
    /// No pages (Linux `__sg_alloc_table` with `nents == 0`).
    ZeroPages,
    /// A zero-byte range or size was given where data is required.
    ZeroLength,
    /// `max_segment` rounded down to a page is below one page.
    MaxSegmentTooSmall {
        /// The value the caller passed.
        max_segment: u64,
    },
    /// The first-page offset is not inside a page.
    OffsetNotInPage {
        /// The offset the caller passed.
        offset: u64,
    },
    /// An append continuing a previous table was given a non-zero offset.
    AppendWithOffset {
        /// The offset the caller passed.
        offset: u64,
    },
    /// `offset + size` needs more bytes than the pages cover.
    SizeExceedsPages {
        /// Bytes requested (offset included).
        needed: u64,
        /// Bytes the pages cover.
        covered: u64,
    },
    /// A range wraps past the top of the physical address space.
    AddressOverflow {
        /// Start of the range.
        start: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A single segment length does not fit the 32-bit length field.
    LengthTooLarge {
        /// The length asked for.
        len: u64,
    },
    /// A page frame number too large to be a physical address.
    PfnOverflow {
        /// The raw frame number.
        pfn: u64,
    },
    /// The table holds fewer bytes than asked for (`sg_nents_for_len`, `sg_split`).
    TooShort {
        /// Bytes asked for.
        wanted: u64,
        /// Bytes the table holds.
        available: u64,
    },
    /// A negative length was given.
    NegativeLength {
        /// The length asked for.
        len: i64,
    },
    /// A DMA range wraps past the top of the DMA address space.
    DmaOverflow {
        /// Start of the range.
        start: DmaAddr,
        /// Its length.
        len: u64,
    },
    /// `offset + size` does not fit in 64 bits.
    SizeOverflow {
        /// The offset the caller passed.
        offset: u64,
        /// The size the caller passed.
        size: u64,
    },
    /// No ranges or segments were given.
    NoRanges,
    /// No split sizes were given to `sg_split`.
    NoSplits,
    /// An append needs new entries but the previous append ended the table
    /// (`left_pages == 0`) and reserved no room. Linux dereferences NULL here.
    AppendAfterEnd {
        /// Entries the table already holds.
        nents: usize,
    },
    /// A mapped-entry count is larger than the table can hold.
    NentsOutOfRange {
        /// The count the caller passed.
        nents: usize,
        /// The largest count allowed.
        max: usize,
    },
    /// Chaining refused: a DMA-mapped table's DMA view cannot be concatenated.
    ChainMapped {
        /// The mapped table's DMA entry count.
        nents: usize,
        /// Its CPU entry count.
        orig_nents: usize,
    },
}

impl fmt::Display for SgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SgError::ZeroPages => f.write_str("no pages given"),
            SgError::ZeroLength => f.write_str("zero-length range"),
            SgError::MaxSegmentTooSmall { max_segment } => write!(
                f,
                "max_segment {max_segment:#x} is below one page after rounding down"
            ),
            SgError::OffsetNotInPage { offset } => {
                write!(f, "offset {offset:#x} is not inside the first page")
            }
            SgError::AppendWithOffset { offset } => write!(
                f,
                "offset {offset:#x} given to an append that continues a table (must be 0)"
            ),
            SgError::SizeExceedsPages { needed, covered } => write!(
                f,
                "offset + size = {needed:#x} bytes but the pages cover only {covered:#x}"
            ),
            SgError::AddressOverflow { start, len } => {
                write!(f, "range {start} + {len:#x} wraps the address space")
            }
            SgError::LengthTooLarge { len } => {
                write!(f, "segment length {len:#x} exceeds u32::MAX")
            }
            SgError::PfnOverflow { pfn } => {
                write!(f, "page frame number {pfn:#x} is beyond the address space")
            }
            SgError::TooShort { wanted, available } => write!(
                f,
                "asked for {wanted:#x} bytes but the table holds {available:#x}"
            ),
            SgError::NegativeLength { len } => write!(f, "negative length {len}"),
            SgError::DmaOverflow { start, len } => {
                write!(f, "DMA range {start} + {len:#x} wraps the address space")
            }
            SgError::SizeOverflow { offset, size } => {
                write!(f, "offset {offset:#x} + size {size:#x} overflows 64 bits")
            }
            SgError::NoRanges => f.write_str("no ranges given"),
            SgError::NoSplits => f.write_str("no split sizes given"),
            SgError::AppendAfterEnd { nents } => write!(
                f,
                "append after the table was ended ({nents} entries, left_pages was 0)"
            ),
            SgError::NentsOutOfRange { nents, max } => {
                write!(f, "nents {nents} exceeds the table's {max} entries")
            }
            SgError::ChainMapped { nents, orig_nents } => write!(
                f,
                "cannot chain a DMA-mapped table (nents {nents}, orig_nents {orig_nents})"
            ),
        }
    }
}

impl core::error::Error for SgError {}
