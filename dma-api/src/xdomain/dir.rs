//! The chained page directory (drivers/xen/xen-front-pgdir-shbuf.c
//! `struct xen_page_directory`): each directory page starts with the
//! reference of the next directory page (or [`GrantRef::INVALID`]) and holds
//! as many buffer-page references as fit after it, little endian, 4 bytes
//! each. The exporter grants the directory pages too and hands over the
//! reference of the first one.

use super::error::GrantError;
use super::ids::GrantRef;
use crate::types::PAGE_SIZE;
use alloc::vec;
use alloc::vec::Vec;

/// Buffer references per directory page: `(PAGE_SIZE - 4) / 4` = 1023
/// (Linux `XEN_NUM_GREFS_PER_PAGE`).
pub const REFS_PER_PAGE: usize = (PAGE_SIZE as usize - 4) / 4;

/// Directory pages for `pages` buffer pages: ⌈pages / REFS_PER_PAGE⌉.
pub const fn directory_pages(pages: usize) -> usize {
    pages.div_ceil(REFS_PER_PAGE)
}

/// One decoded directory page.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageDirectory {
    /// The next directory page, or [`GrantRef::INVALID`].
    pub next: GrantRef,
    /// The buffer-page references this page holds (the decoder returns all
    /// [`REFS_PER_PAGE`] slots; the reader takes as many as it needs).
    pub refs: Vec<GrantRef>,
}

impl PageDirectory {
    /// Encodes into one page; more than [`REFS_PER_PAGE`] references is
    /// [`GrantError::DirectoryFull`].
    pub fn encode(&self) -> Result<Vec<u8>, GrantError> {
        if self.refs.len() > REFS_PER_PAGE {
            return Err(GrantError::DirectoryFull {
                refs: self.refs.len(),
            });
        }
        let mut page = vec![0u8; PAGE_SIZE as usize];
        page[..4].copy_from_slice(&self.next.0.to_le_bytes());
        for (slot, r) in page[4..].chunks_exact_mut(4).zip(&self.refs) {
            slot.copy_from_slice(&r.0.to_le_bytes());
        }
        Ok(page)
    }

    /// Decodes one page (exactly [`PAGE_SIZE`] bytes, else
    /// [`GrantError::DirectoryFull`] naming the length).
    pub fn decode(page: &[u8]) -> Result<Self, GrantError> {
        if page.len() != PAGE_SIZE as usize {
            return Err(GrantError::DirectoryFull { refs: page.len() });
        }
        let word = |c: &[u8]| GrantRef(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        Ok(Self {
            next: word(&page[..4]),
            refs: page[4..].chunks_exact(4).map(word).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_per_page_and_directory_count() {
        assert_eq!(REFS_PER_PAGE, 1023);
        assert_eq!(directory_pages(1), 1);
        assert_eq!(directory_pages(1000), 1);
        assert_eq!(directory_pages(1023), 1);
        assert_eq!(directory_pages(1024), 2);
        assert_eq!(directory_pages(2100), 3);
    }

    #[test]
    fn encode_decode_round_trip() {
        let d = PageDirectory {
            next: GrantRef(77),
            refs: (8..1031).map(GrantRef).collect(),
        };
        let page = d.encode().unwrap();
        assert_eq!(page.len(), PAGE_SIZE as usize);
        assert_eq!(&page[..4], &77u32.to_le_bytes());
        assert_eq!(&page[4..8], &8u32.to_le_bytes());
        assert_eq!(PageDirectory::decode(&page).unwrap(), d);
    }

    #[test]
    fn too_many_refs_and_short_pages_are_refused() {
        let d = PageDirectory {
            next: GrantRef::INVALID,
            refs: alloc::vec![GrantRef(9); REFS_PER_PAGE + 1],
        };
        assert_eq!(
            d.encode().unwrap_err(),
            GrantError::DirectoryFull { refs: 1024 }
        );
        assert_eq!(
            PageDirectory::decode(&[0u8; 12]).unwrap_err(),
            GrantError::DirectoryFull { refs: 12 }
        );
    }
}
