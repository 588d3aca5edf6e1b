//! The PCI Express extended capability list (0x100..0xfff).
//!
//! Walk semantics match `pci_find_next_ext_capability` in drivers/pci/pci.c:
//! the header dword is ID (bits 15:0), version (19:16) and next (31:20, low
//! two bits masked, `PCI_EXT_CAP_NEXT`); a header of 0 at 0x100 means no
//! extended capabilities; a next pointer below 0x100 ends the list; at most
//! (4096 - 256) / 8 = 480 entries are visited. A buffer of 256 bytes or less
//! (conventional device, or a non-root sysfs read) has no extended space.
//! An all-ones header at 0x100 also means "no extended space", as
//! `pci_cfg_space_size_ext` in drivers/pci/probe.c decides.

use super::bytes::read_u32;
use super::caps::CapWalk;
use super::error::ConfigError;
use super::regs;

/// One extended capability.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ExtCapability {
    /// Offset of the header (dword aligned, 0x100..=0xffc).
    pub offset: u16,
    /// Extended capability ID (e.g. 0x000d for ACS).
    pub id: u16,
    /// Capability version (4 bits).
    pub version: u8,
}

/// Walks the extended capability list from 0x100.
pub fn walk_ext_caps(buf: &[u8]) -> CapWalk<ExtCapability> {
    let mut walk = CapWalk::default();
    if buf.len() <= regs::CFG_SPACE_SIZE {
        return walk;
    }
    let mut visited = [0u64; regs::CFG_SPACE_EXP_SIZE / 4 / 64];
    let mut pos = regs::EXT_CAP_START;
    let mut ptr_at: Option<usize> = None;
    loop {
        let header = match read_u32(buf, pos) {
            Ok(h) => h,
            Err(e) => {
                walk.issues.push(e);
                return walk;
            }
        };
        if ptr_at.is_none() && (header == 0 || header == 0xffff_ffff) {
            return walk;
        }
        let slot = pos / 4;
        let (word, bit) = (slot / 64, slot % 64);
        let seen = visited.get(word).is_some_and(|w| w & (1u64 << bit) != 0);
        if seen {
            walk.issues
                .push(ConfigError::CapLoop { offset: pos as u16 });
            return walk;
        }
        if walk.caps.len() >= regs::EXT_CAP_TTL {
            walk.issues.push(ConfigError::TooManyCaps {
                limit: regs::EXT_CAP_TTL as u16,
            });
            return walk;
        }
        if let Some(w) = visited.get_mut(word) {
            *w |= 1u64 << bit;
        }
        walk.caps.push(ExtCapability {
            offset: pos as u16,
            id: (header & 0xffff) as u16,
            version: ((header >> 16) & 0xf) as u8,
        });
        let next = ((header >> 20) & 0xffc) as usize;
        if next == 0 {
            return walk;
        }
        if next < regs::EXT_CAP_START {
            walk.issues.push(ConfigError::BadPointer {
                offset: (pos + 2) as u16,
                value: next as u16,
            });
            return walk;
        }
        ptr_at = Some(pos);
        pos = next;
    }
}

/// The first extended capability with `id`, if the walk reaches one.
pub fn find_ext_cap(walk: &CapWalk<ExtCapability>, id: u16) -> Option<ExtCapability> {
    walk.caps.iter().copied().find(|c| c.id == id)
}
