//! Scatter Gather Lists: the other way an NVMe command names its data (NVMe
//! base specification, "Scatter Gather List (SGL)"; Linux
//! drivers/nvme/host/pci.c `nvme_pci_setup_sgls`, `nvme_pci_sgl_set_data`,
//! `nvme_pci_sgl_set_seg`).
//!
//! Each DMA segment becomes one 16-byte Data Block descriptor (address,
//! length, type 0 in the high nibble of the last byte). One segment: the
//! descriptor sits in the command itself (`dptr.sgl`). More: they fill one
//! list page in coherent memory and the command holds a Last Segment
//! descriptor (type 3) pointing to it — Linux never chains SGL segments
//! (`NVME_MAX_SEGS` descriptors fit a page). Unlike PRPs, descriptors carry
//! any byte address and length: no page rules, so a request with segments
//! the PRP rules refuse can still be described.

use core::fmt;
use dma_api::Segment;

/// Descriptor type: Data Block (`NVME_SGL_FMT_DATA_DESC`).
pub const SGL_TYPE_DATA_BLOCK: u8 = 0x0;
/// Descriptor type: Segment (`NVME_SGL_FMT_SEG_DESC`).
pub const SGL_TYPE_SEGMENT: u8 = 0x2;
/// Descriptor type: Last Segment (`NVME_SGL_FMT_LAST_SEG_DESC`).
pub const SGL_TYPE_LAST_SEGMENT: u8 = 0x3;
/// Descriptors per 4 KiB list page.
pub const SGLS_PER_PAGE: usize = 4096 / 16;

/// One SGL descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SglDescriptor {
    /// Address (data, or the next list).
    pub addr: u64,
    /// Length in bytes (of the data, or of the list).
    pub len: u32,
    /// Type (high nibble of byte 15).
    pub kind: u8,
}

impl SglDescriptor {
    /// The 16 little-endian bytes (`struct nvme_sgl_desc`).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[15] = self.kind << 4;
        b
    }

    /// Decodes 16 bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        let mut l = [0u8; 4];
        l.copy_from_slice(&b[8..12]);
        Self {
            addr: u64::from_le_bytes(a),
            len: u32::from_le_bytes(l),
            kind: b[15] >> 4,
        }
    }
}

/// Why segments cannot be described by one SGL.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SglRule {
    /// A segment longer than a descriptor's 32-bit length.
    TooLong,
    /// More descriptors than one list page.
    TooMany,
}

impl fmt::Display for SglRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SglRule::TooLong => "is longer than an SGL descriptor's 32-bit length",
            SglRule::TooMany => "is past the descriptors one SGL list page holds",
        })
    }
}

/// The Data Block descriptors of `segments`, or the first that breaks a
/// rule as `(index, rule)`.
pub fn plan(segments: &[Segment]) -> Result<Vec<SglDescriptor>, (usize, SglRule)> {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i >= SGLS_PER_PAGE {
                return Err((i, SglRule::TooMany));
            }
            let len = u32::try_from(s.len).map_err(|_| (i, SglRule::TooLong))?;
            Ok(SglDescriptor {
                addr: s.dma.raw(),
                len,
                kind: SGL_TYPE_DATA_BLOCK,
            })
        })
        .collect()
}
