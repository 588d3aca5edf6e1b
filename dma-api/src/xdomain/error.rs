//! The typed errors of cross-domain grants. Each names the offending
//! reference, domain or address; a failed import leaves nothing mapped.

use super::ids::{DomId, GrantRef, GuestAddr};
use crate::error::DmaError;
use alloc::string::String;
use core::fmt;

/// Every failure of grant-based sharing.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum GrantError {
    /// No such domain.
    UnknownDomain {
        /// The domain.
        dom: DomId,
    },
    /// The granting domain does not own the page it tries to grant (no
    /// second-stage translation: Xen `GNTST_bad_page`).
    NotOwned {
        /// The granter.
        dom: DomId,
        /// The page.
        page: GuestAddr,
    },
    /// A reference that names no live grant of the granter: never issued,
    /// out of range, reserved, or ended (Xen `GNTST_bad_gntref`).
    BadRef {
        /// The granter.
        granter: DomId,
        /// The reference.
        gref: GrantRef,
    },
    /// A grant being revoked: no new mapping (Xen: the entry's
    /// `GTF_permit_access` is cleared).
    Revoked {
        /// The granter.
        granter: DomId,
        /// The reference.
        gref: GrantRef,
    },
    /// The grant is for another domain (Xen `GNTST_permission_denied`).
    NotGrantee {
        /// The granter.
        granter: DomId,
        /// The reference.
        gref: GrantRef,
        /// Who tried to map it.
        mapper: DomId,
    },
    /// A write mapping of a read-only grant.
    ReadOnly {
        /// The granter.
        granter: DomId,
        /// The reference.
        gref: GrantRef,
    },
    /// The mapper has no grant mapping at this address.
    NotMapped {
        /// The mapper.
        dom: DomId,
        /// The address.
        at: GuestAddr,
    },
    /// A directory chain that comes back to a page it already visited.
    DirectoryLoop {
        /// The directory reference seen twice.
        gref: GrantRef,
    },
    /// A directory chain that ends before (or runs past) the buffer's page
    /// count.
    DirectoryLength {
        /// Pages the buffer has.
        expected: usize,
        /// References the chain held when it ended (or directory pages it
        /// had when it should have ended).
        found: usize,
    },
    /// More references than a directory page holds, or a page of the wrong
    /// size.
    DirectoryFull {
        /// The count.
        refs: usize,
    },
    /// An empty buffer.
    Empty,
    /// A domain's memory is exhausted or an address is outside it.
    Memory {
        /// The domain.
        dom: DomId,
        /// What failed.
        why: String,
    },
    /// The device mapping failed.
    Dma(DmaError),
}

impl From<DmaError> for GrantError {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDomain { dom } => write!(f, "no domain {dom}"),
            Self::NotOwned { dom, page } => write!(f, "{dom} does not own {page}"),
            Self::BadRef { granter, gref } => {
                write!(f, "{gref} names no live grant of {granter}")
            }
            Self::Revoked { granter, gref } => write!(f, "{gref} of {granter} is being revoked"),
            Self::NotGrantee {
                granter,
                gref,
                mapper,
            } => write!(f, "{gref} of {granter} is not granted to {mapper}"),
            Self::ReadOnly { granter, gref } => {
                write!(f, "{gref} of {granter} is read-only")
            }
            Self::NotMapped { dom, at } => write!(f, "{dom} has no grant mapped at {at}"),
            Self::DirectoryLoop { gref } => {
                write!(f, "page directory loops back to {gref}")
            }
            Self::DirectoryLength { expected, found } => write!(
                f,
                "page directory holds {found} where the buffer has {expected} pages"
            ),
            Self::DirectoryFull { refs } => {
                write!(f, "{refs} references do not fit one directory page")
            }
            Self::Empty => write!(f, "empty buffer"),
            Self::Memory { dom, why } => write!(f, "{dom} memory: {why}"),
            Self::Dma(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for GrantError {}
