//! Domain ids, grant references and guest-physical addresses: distinct
//! types, so a guest address never passes for a host one.

use core::fmt;

/// A domain (Xen `domid_t`, 16 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DomId(pub u16);

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}", self.0)
    }
}

/// A grant reference: an index into the granting domain's grant table
/// (Xen `grant_ref_t`, 4 bytes on the wire).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GrantRef(pub u32);

impl GrantRef {
    /// "No reference": ends a directory chain (Linux `GRANT_INVALID_REF`).
    pub const INVALID: GrantRef = GrantRef(0);
}

impl fmt::Display for GrantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gref {}", self.0)
    }
}

/// A guest-physical address of one domain (its "physical" memory, which a
/// second-stage table translates to host physical).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GuestAddr(u64);

impl GuestAddr {
    /// From a raw value.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + off`, `None` on overflow.
    pub const fn checked_add(self, off: u64) -> Option<Self> {
        match self.0.checked_add(off) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl fmt::Display for GuestAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gpa {:#x}", self.0)
    }
}
