//! The two things a device does to memory.
//!
//! One type for every layer that cares: the P2P oracle gives a verdict per
//! access (host bridges may forward posted writes but not reads), the IOMMU
//! walker checks the leaf's permission for it, and the fabric routes it.

use core::fmt;

/// A device's memory access: a read (non-posted request and completion) or a
/// write (posted).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Access {
    /// The device reads memory (data moves to the device).
    Read,
    /// The device writes memory (data moves from the device).
    Write,
}

impl Access {
    /// The wire name: `read` or `write`.
    pub const fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
