//! Typed problems found while decoding config space.
//!
//! Each variant names the offset (and value) at fault. The same type is used
//! for fatal errors (the buffer is not a function's config space) and for the
//! non-fatal issues a walk records before stopping or continuing.

use core::fmt;

/// A config-space decoding problem, naming the offending offset and value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading a register needs `needed` bytes but the buffer has only `len`.
    Truncated {
        /// Bytes needed (offset + register width).
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// Vendor/device read as an "absent function" pattern (all ones, all
    /// zeros, or one half all ones), as Linux `pci_bus_generic_read_dev_vendor_id`
    /// checks.
    NoDevice {
        /// The 32-bit vendor/device dword read at offset 0.
        id: u32,
    },
    /// The header-type layout (bits 6:0) is not 0, 1 or 2.
    UnknownHeaderType {
        /// The raw header-type byte.
        value: u8,
    },
    /// A 64-bit memory BAR sits in the last BAR slot: its high half is missing.
    Bar64AtEnd {
        /// BAR index (0-based).
        index: u8,
    },
    /// A memory BAR uses the reserved type value 3; decoded as 32-bit, as
    /// Linux `decode_bar` does.
    ReservedBarType {
        /// BAR index (0-based).
        index: u8,
        /// The raw BAR dword.
        value: u32,
    },
    /// A capability pointer points into the standard header (1..0x40) or an
    /// extended next pointer points below 0x100. Linux stops the walk silently.
    BadPointer {
        /// Where the pointer was read.
        offset: u16,
        /// The pointer value.
        value: u16,
    },
    /// A standard capability pointer with the low two bits set; masked as
    /// Linux does (`pos &= ~3`) and the walk continues.
    UnalignedPointer {
        /// Where the pointer was read.
        offset: u16,
        /// The unmasked pointer value.
        value: u16,
    },
    /// The walk reached a capability it had already visited.
    CapLoop {
        /// The capability offset seen twice.
        offset: u16,
    },
    /// The walk exceeded the kernel's bound (48 standard / 480 extended).
    TooManyCaps {
        /// The bound that was hit.
        limit: u16,
    },
    /// A standard capability ID of 0xff: the function returned all ones
    /// (Linux stops the walk there).
    CapIdAllOnes {
        /// The capability offset.
        offset: u16,
    },
    /// The PCI Express device/port type (capabilities bits 7:4) is reserved.
    UnknownPcieType {
        /// Offset of the PCI Express capability.
        offset: u16,
        /// The 4-bit type value.
        value: u8,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Truncated { needed, len } => {
                write!(f, "config space truncated: need {needed} bytes, have {len}")
            }
            ConfigError::NoDevice { id } => {
                write!(f, "no function present (vendor/device dword {id:#010x})")
            }
            ConfigError::UnknownHeaderType { value } => {
                write!(f, "unknown header type {value:#04x}")
            }
            ConfigError::Bar64AtEnd { index } => {
                write!(f, "64-bit BAR {index} has no slot for its high half")
            }
            ConfigError::ReservedBarType { index, value } => {
                write!(f, "BAR {index} ({value:#010x}) uses reserved memory type 3")
            }
            ConfigError::BadPointer { offset, value } => {
                write!(f, "bad capability pointer {value:#x} at {offset:#x}")
            }
            ConfigError::UnalignedPointer { offset, value } => {
                write!(f, "unaligned capability pointer {value:#x} at {offset:#x}")
            }
            ConfigError::CapLoop { offset } => {
                write!(f, "capability list loops back to {offset:#x}")
            }
            ConfigError::TooManyCaps { limit } => {
                write!(f, "capability list longer than {limit} entries")
            }
            ConfigError::CapIdAllOnes { offset } => {
                write!(f, "capability ID 0xff (all ones) at {offset:#x}")
            }
            ConfigError::UnknownPcieType { offset, value } => {
                write!(
                    f,
                    "reserved PCIe port type {value:#x} in capability at {offset:#x}"
                )
            }
        }
    }
}

impl core::error::Error for ConfigError {}
