//! The typed errors of device-private memory: each names the offending page,
//! device or range; a failed operation leaves nothing mapped or migrated
//! half-way.

use crate::bdf::Bdf;
use crate::error::DmaError;
use crate::mem::MemError;
use crate::share::Reason;
use crate::types::PhysAddr;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Every failure of the device-private layer.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum HmmError {
    /// A range not page aligned or empty.
    Unaligned {
        /// Start.
        phys: PhysAddr,
        /// Length.
        len: u64,
    },
    /// The memory map does not say the range is device-private memory of
    /// this owner (kinds come from the memory map, never from the caller).
    NotDevicePrivate {
        /// The claimed owner.
        owner: Bdf,
        /// Start.
        phys: PhysAddr,
        /// Length.
        len: u64,
    },
    /// The range overlaps one already registered.
    Overlap {
        /// Start of the new range.
        phys: PhysAddr,
        /// Start of the registered one.
        existing: PhysAddr,
    },
    /// No registered device-private range holds the page.
    NotRegistered {
        /// The page.
        page: PhysAddr,
    },
    /// The owner refused the client's access; the chain says why.
    Refused {
        /// The owner.
        owner: Bdf,
        /// The client.
        client: Bdf,
        /// The page.
        page: PhysAddr,
        /// The reason chain.
        reasons: Vec<Reason>,
    },
    /// The owner answered with an alias outside its own BAR memory.
    BadAlias {
        /// The owner.
        owner: Bdf,
        /// The page.
        page: PhysAddr,
        /// The alias it named.
        alias: PhysAddr,
    },
    /// The owner's copy engine faulted.
    DeviceDma {
        /// The device.
        device: Bdf,
        /// What the wire said.
        why: String,
    },
    /// The DMA layer refused a mapping (the alias or the RAM copy); the
    /// chain holds the owner's answer and the dispatcher's reasons.
    Dma {
        /// The page.
        page: PhysAddr,
        /// The dispatcher's error.
        error: DmaError,
        /// The reason chain.
        reasons: Vec<Reason>,
    },
    /// No free physical range could be reserved for device-private pages.
    NoRegion {
        /// The length asked for.
        len: u64,
        /// Why.
        why: String,
    },
    /// CPU memory failed.
    Memory(MemError),
    /// A virtual address outside every mapping of the address space.
    Unmapped {
        /// The virtual address.
        va: u64,
    },
    /// A virtual page that is already mapped.
    Mapped {
        /// The virtual address.
        va: u64,
    },
    /// A backing whose kind in the memory map is not the one claimed.
    WrongKind {
        /// Start.
        phys: PhysAddr,
        /// Length.
        len: u64,
    },
}

impl From<MemError> for HmmError {
    fn from(e: MemError) -> Self {
        Self::Memory(e)
    }
}

fn chain(f: &mut fmt::Formatter<'_>, reasons: &[Reason]) -> fmt::Result {
    for r in reasons {
        write!(f, "; {r}")?;
    }
    Ok(())
}

impl fmt::Display for HmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { phys, len } => {
                write!(f, "range {phys} + {len:#x} is empty or not page aligned")
            }
            Self::NotDevicePrivate { owner, phys, len } => write!(
                f,
                "range {phys} + {len:#x} is not device-private memory of {owner} in the memory map"
            ),
            Self::Overlap { phys, existing } => write!(
                f,
                "device-private range at {phys} overlaps the one registered at {existing}"
            ),
            Self::NotRegistered { page } => {
                write!(f, "page {page} is in no registered device-private range")
            }
            Self::Refused {
                owner,
                client,
                page,
                reasons,
            } => {
                write!(f, "{owner} refused {client} access to page {page}")?;
                chain(f, reasons)
            }
            Self::BadAlias { owner, page, alias } => write!(
                f,
                "{owner} aliased page {page} to {alias}, which is not its BAR memory"
            ),
            Self::DeviceDma { device, why } => write!(f, "{device} copy engine: {why}"),
            Self::Dma {
                page,
                error,
                reasons,
            } => {
                write!(f, "mapping page {page}: {error}")?;
                chain(f, reasons)
            }
            Self::NoRegion { len, why } => {
                write!(f, "no free physical range of {len:#x} bytes: {why}")
            }
            Self::Memory(e) => write!(f, "{e}"),
            Self::Unmapped { va } => write!(f, "virtual address {va:#x} is not mapped"),
            Self::Mapped { va } => write!(f, "virtual address {va:#x} is already mapped"),
            Self::WrongKind { phys, len } => write!(
                f,
                "range {phys} + {len:#x} is not the kind of memory claimed for it"
            ),
        }
    }
}

impl core::error::Error for HmmError {}
