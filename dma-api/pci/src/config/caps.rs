//! The standard capability list (0x40..0xff).
//!
//! Walk semantics match `__pci_find_next_cap_ttl` in drivers/pci/pci.c: a
//! pointer below 0x40 ends the list, the low two pointer bits are masked off,
//! an ID of 0xff (all-ones read) ends the list, and at most 48 entries are
//! visited. Differences: where Linux stops silently we record why (a zero
//! pointer is the only normal end), and we detect loops exactly instead of
//! spinning until the bound.

use super::bytes::{read_u16, read_u8};
use super::error::ConfigError;
use super::regs;
use alloc::vec::Vec;

/// One standard capability.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Capability {
    /// Offset of the capability header (dword aligned, 0x40..=0xfc).
    pub offset: u16,
    /// Capability ID (e.g. 0x10 for PCI Express).
    pub id: u8,
}

/// The result of a capability walk: what was found and what went wrong.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CapWalk<T> {
    /// Capabilities in list order, up to the point the walk stopped.
    pub caps: Vec<T>,
    /// Problems met; a walk stops at the first problem other than
    /// [`ConfigError::UnalignedPointer`].
    pub issues: Vec<ConfigError>,
}

impl<T> Default for CapWalk<T> {
    fn default() -> Self {
        Self {
            caps: Vec::new(),
            issues: Vec::new(),
        }
    }
}

/// Walks the standard capability list whose first pointer is at `ptr_offset`
/// (0x34, or 0x14 for CardBus). The caller checks the status bit.
pub fn walk_caps(buf: &[u8], ptr_offset: usize) -> CapWalk<Capability> {
    let mut walk = CapWalk::default();
    let mut visited = [false; 64];
    let mut at = ptr_offset;
    loop {
        let value = match read_u8(buf, at) {
            Ok(v) => v,
            Err(e) => {
                walk.issues.push(e);
                return walk;
            }
        };
        if value == 0 {
            return walk;
        }
        if usize::from(value) < regs::STD_HEADER_SIZE {
            walk.issues.push(ConfigError::BadPointer {
                offset: at as u16,
                value: u16::from(value),
            });
            return walk;
        }
        let pos = value & !3;
        if pos != value {
            walk.issues.push(ConfigError::UnalignedPointer {
                offset: at as u16,
                value: u16::from(value),
            });
        }
        let slot = usize::from(pos / 4);
        if visited.get(slot).copied().unwrap_or(false) {
            walk.issues.push(ConfigError::CapLoop {
                offset: u16::from(pos),
            });
            return walk;
        }
        if walk.caps.len() >= regs::FIND_CAP_TTL {
            walk.issues.push(ConfigError::TooManyCaps {
                limit: regs::FIND_CAP_TTL as u16,
            });
            return walk;
        }
        if let Some(v) = visited.get_mut(slot) {
            *v = true;
        }
        let pos = usize::from(pos);
        // The header is ID (low byte) + next pointer (high byte).
        let id = match read_u16(buf, pos) {
            Ok(h) => (h & 0xff) as u8,
            Err(e) => {
                walk.issues.push(e);
                return walk;
            }
        };
        if id == 0xff {
            walk.issues
                .push(ConfigError::CapIdAllOnes { offset: pos as u16 });
            return walk;
        }
        walk.caps.push(Capability {
            offset: pos as u16,
            id,
        });
        at = pos + 1;
    }
}

/// The first capability with `id`, if the walk reaches one.
pub fn find_cap(walk: &CapWalk<Capability>, id: u8) -> Option<Capability> {
    walk.caps.iter().copied().find(|c| c.id == id)
}
