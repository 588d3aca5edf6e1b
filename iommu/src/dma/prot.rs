//! Direction, coherency and attributes to IOMMU protection bits.

use crate::pgtable::Prot;
use dma_api::{Direction, DmaAttrs};

/// drivers/iommu/dma-iommu.c `dma_info_to_prot`: MMIO (peer memory or
/// `DMA_ATTR_MMIO`) → `MMIO` and no cache attribute; otherwise coherent →
/// `CACHE`; `DMA_ATTR_PRIVILEGED` → `PRIV`; `ToDevice` → `READ`,
/// `FromDevice` → `WRITE`, `Bidirectional` → both.
///
/// `mmio` is the segment's own property here, so a table mixing RAM and peer
/// memory gets the right bits per segment (Linux computes one `prot` per list).
pub fn dma_info_to_prot(dir: Direction, coherent: bool, attrs: DmaAttrs, mmio: bool) -> Prot {
    let mut prot = if mmio || attrs.contains(DmaAttrs::MMIO) {
        Prot::MMIO
    } else if coherent {
        Prot::CACHE
    } else {
        Prot::empty()
    };
    if attrs.contains(DmaAttrs::PRIVILEGED) {
        prot |= Prot::PRIV;
    }
    if dir.device_reads() {
        prot |= Prot::READ;
    }
    if dir.device_writes() {
        prot |= Prot::WRITE;
    }
    prot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_table() {
        let a = DmaAttrs::empty();
        assert_eq!(
            dma_info_to_prot(Direction::ToDevice, true, a, false),
            Prot::READ | Prot::CACHE
        );
        assert_eq!(
            dma_info_to_prot(Direction::FromDevice, false, a, false),
            Prot::WRITE
        );
        assert_eq!(
            dma_info_to_prot(Direction::Bidirectional, true, a, true),
            Prot::READ | Prot::WRITE | Prot::MMIO
        );
        assert_eq!(
            dma_info_to_prot(Direction::ToDevice, true, DmaAttrs::PRIVILEGED, false),
            Prot::READ | Prot::CACHE | Prot::PRIV
        );
        assert_eq!(
            dma_info_to_prot(Direction::ToDevice, true, DmaAttrs::MMIO, false),
            Prot::READ | Prot::MMIO
        );
    }
}
