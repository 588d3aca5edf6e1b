//! Device constraints without the simulator (`no_std` included), over the
//! hand-built topology of `tests.rs`: a 32-bit device on the direct backend,
//! swiotlb at 128 MiB, the coherent pool at 256 MiB.
//!
//! * a mask that cannot reach the bounce pool (or a coherent mask that
//!   cannot reach the coherent pool) is refused, typed, and the old masks
//!   stay; one that can takes effect: RAM beyond it bounces from then on;
//! * invalid values and changes under live mappings are refused;
//! * `table_from_ranges` cuts at the max segment size and the boundary;
//! * `map_sgtable` refuses, naming the entry, a CPU entry that is too long,
//!   crosses the boundary or leaves a virt-boundary gap, and a DMA segment
//!   the backend produced across the boundary (a swiotlb slot), unmapping it.

use super::constraints::{ConstraintViolation, DmaConstraints, EntryAddr};
use super::tests::{device, device_with, POOL, SWIOTLB};
use crate::attrs::DmaAttrs;
use crate::direct::DirectConfig;
use crate::direction::Direction;
use crate::error::{DmaError, ErrorKind};
use crate::mask::DmaMask;
use crate::mem::CpuMemory;
use crate::test_support::TestMem;
use crate::types::{PhysAddr, SegKind};
use crate::Bdf;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use scatterlist::SgTable;

fn mask(bits: u32) -> DmaMask {
    DmaMask::new(bits).unwrap()
}

fn ep() -> Bdf {
    "01:00.0".parse().unwrap()
}

fn in_swiotlb(a: u64) -> bool {
    (SWIOTLB.0..SWIOTLB.0 + SWIOTLB.1).contains(&a)
}

#[test]
fn defaults_are_a_pci_function_s_over_the_record_mask() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    assert_eq!(dev.constraints(), DmaConstraints::pci(DmaMask::BITS_32));
    assert_eq!(dev.constraints().max_seg_size, 0x1_0000);
    assert_eq!(dev.constraints().seg_boundary_mask, 0xffff_ffff);
    // A backend configured with a min-align mask reports it.
    let cfg = DirectConfig {
        min_align_mask: 0xfff,
        ..DirectConfig::default()
    };
    let (dev, _) = device_with(&mem, cfg);
    assert_eq!(dev.constraints().min_align_mask, 0xfff);
}

#[test]
fn a_mask_short_of_the_bounce_pool_is_refused_and_a_reaching_one_bounces_beyond_it() {
    let mem = Arc::new(TestMem::default());
    let (dev, tlb) = device(&mem);
    let before = dev.constraints();
    // The pool's last byte 0x83f_ffff needs 28 bits.
    let err = dev.set_dma_mask(mask(27)).unwrap_err();
    assert_eq!(
        err,
        DmaError::MaskNotSupported {
            device: ep(),
            mask: mask(27),
            coherent: false,
            needs: SWIOTLB.0 + SWIOTLB.1 - 1,
            what: "the swiotlb bounce pool",
        }
    );
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(dev.constraints(), before, "the old mask stays");

    // RAM at 512 MiB maps 1:1 under 32 bits ...
    let ram = PhysAddr::new(0x2000_0000);
    let dma = dev
        .map_phys(ram, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dma.raw(), ram.raw());
    dev.unmap_phys(dma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    // ... and bounces once a 28-bit mask is set.
    dev.set_dma_mask(mask(28)).unwrap();
    assert_eq!(dev.constraints().dma_mask, mask(28));
    assert_eq!(dev.constraints().coherent_mask, DmaMask::BITS_32);
    let dma = dev
        .map_phys(ram, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(in_swiotlb(dma.raw()), "{dma} bounced");
    assert_eq!(tlb.live_mappings(), 1);
    dev.unmap_phys(dma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(tlb.live_mappings(), 0);
}

#[test]
fn a_coherent_mask_short_of_the_coherent_pool_is_refused() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    // The pool's last byte 0x100f_ffff needs 29 bits.
    let refused = DmaError::MaskNotSupported {
        device: ep(),
        mask: mask(28),
        coherent: true,
        needs: POOL.0 + POOL.1 - 1,
        what: "the coherent pool",
    };
    assert_eq!(dev.set_coherent_mask(mask(28)), Err(refused.clone()));
    // Both or neither: the streaming half alone would have been fine.
    assert_eq!(dev.set_mask_and_coherent(mask(28)), Err(refused));
    assert_eq!(dev.constraints(), DmaConstraints::pci(DmaMask::BITS_32));
    dev.set_mask_and_coherent(mask(29)).unwrap();
    assert_eq!(dev.constraints().coherent_mask, mask(29));
    let buf = dev.alloc_coherent_buf(0x1000).unwrap();
    assert!(buf.dma_handle().raw() <= mask(29).value());
}

#[test]
fn invalid_values_and_changes_under_live_mappings_are_refused() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    let invalid = |r: Result<(), DmaError>, field: &str, v: u64| match r {
        Err(DmaError::InvalidConstraint { what, value, .. }) => {
            assert_eq!((what, value), (field, v));
        }
        other => panic!("{field}: {other:?}"),
    };
    invalid(
        dev.set_seg_boundary(0x1_2fff),
        "seg_boundary_mask",
        0x1_2fff,
    );
    invalid(dev.set_seg_boundary(0x7ff), "seg_boundary_mask", 0x7ff);
    invalid(dev.set_max_seg_size(0x800), "max_seg_size", 0x800);
    invalid(dev.set_min_align_mask(0x1001), "min_align_mask", 0x1001);
    invalid(dev.set_virt_boundary(0x1800), "virt_boundary_mask", 0x1800);
    assert_eq!(dev.constraints(), DmaConstraints::pci(DmaMask::BITS_32));

    let ram = PhysAddr::new(0x2000_0000);
    let dma = dev
        .map_phys(ram, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(
        dev.set_dma_mask(DmaMask::BITS_64),
        Err(DmaError::ConstraintsBusy {
            device: ep(),
            singles: 1,
            tables: 0,
            coherent: 0
        })
    );
    // Setting what is already set, and the virt boundary (checked only at
    // map time), are fine.
    dev.set_dma_mask(DmaMask::BITS_32).unwrap();
    dev.set_virt_boundary(0xfff).unwrap();
    dev.unmap_phys(dma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    dev.set_dma_mask(DmaMask::BITS_64).unwrap();
}

#[test]
fn table_from_ranges_cuts_at_the_max_segment_size_and_the_boundary() {
    let mem = Arc::new(TestMem::default());
    let (dev, _) = device(&mem);
    dev.set_max_seg_size(0x2000).unwrap();
    dev.set_seg_boundary(0xffff).unwrap();
    let t = dev
        .table_from_ranges(&[(PhysAddr::new(0x2000_e800), 0x6000)], 0x10_0000)
        .unwrap();
    let got: Vec<(u64, u32)> = t.iter().map(|e| (e.phys().raw(), e.len())).collect();
    assert_eq!(
        got,
        [
            (0x2000_e800, 0x1800),
            (0x2001_0000, 0x2000),
            (0x2001_2000, 0x2000),
            (0x2001_4000, 0x800)
        ]
    );
    // The caller's max segment still applies when it is smaller.
    let t = dev
        .table_from_ranges(&[(PhysAddr::new(0x2000_0000), 0x3000)], 0x1000)
        .unwrap();
    assert_eq!(t.orig_nents(), 3);
    // What it builds maps.
    let mut t = dev
        .table_from_ranges(&[(PhysAddr::new(0x2000_e800), 0x6000)], 0x10_0000)
        .unwrap();
    dev.map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
}

fn table(ranges: &[(u64, u64)]) -> SgTable {
    let r: Vec<(PhysAddr, u64)> = ranges.iter().map(|&(p, l)| (PhysAddr::new(p), l)).collect();
    SgTable::from_ranges(&r, SegKind::Ram, 0x10_0000).unwrap()
}

fn refused(dev: &super::DmaDevice, ranges: &[(u64, u64)]) -> DmaError {
    let mut t = table(ranges);
    let e = dev
        .map_sgtable(&mut t, Direction::FromDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(dev.live_tables(), 0, "nothing stays mapped");
    assert!(!t.is_dma_mapped());
    e
}

fn violated(index: usize, phys: u64, len: u64, violation: ConstraintViolation) -> DmaError {
    DmaError::ConstraintViolated {
        device: ep(),
        index,
        at: EntryAddr::Cpu(PhysAddr::new(phys)),
        len,
        violation,
    }
}

#[test]
fn violating_tables_are_refused_naming_the_entry() {
    let mem = Arc::new(TestMem::default());
    let (dev, tlb) = device(&mem);
    let (a, b) = (0x2000_0000u64, 0x3000_0000u64);
    // Longer than the default 64 KiB.
    let e = refused(&dev, &[(a, 0x1000), (b, 0x2_0000)]);
    assert_eq!(
        e,
        violated(
            1,
            b,
            0x2_0000,
            ConstraintViolation::TooLong {
                max_seg_size: 0x1_0000
            }
        )
    );
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(tlb.live_mappings(), 0);

    dev.set_seg_boundary(0xffff).unwrap();
    assert_eq!(
        refused(&dev, &[(a + 0xf000, 0x2000)]),
        violated(
            0,
            a + 0xf000,
            0x2000,
            ConstraintViolation::CrossesBoundary {
                seg_boundary_mask: 0xffff
            }
        )
    );

    dev.set_virt_boundary(0xfff).unwrap();
    let v = 0xfff;
    // First entry may start inside a page, last may end inside one.
    let mut ok = table(&[(a + 0x800, 0x800), (b, 0x1000), (a + 0x4000, 0x200)]);
    dev.map_sgtable(&mut ok, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    dev.unmap_sgtable(&mut ok, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(
        refused(&dev, &[(a, 0x1000), (b + 0x200, 0xe00)]),
        violated(
            1,
            b + 0x200,
            0xe00,
            ConstraintViolation::VirtGapBefore {
                virt_boundary_mask: v
            }
        )
    );
    assert_eq!(
        refused(&dev, &[(a, 0x800), (b, 0x1000)]),
        violated(
            0,
            a,
            0x800,
            ConstraintViolation::VirtGapAfter {
                virt_boundary_mask: v
            }
        )
    );
}

#[test]
fn a_bounce_avoids_slots_across_the_segment_boundary() {
    let mem = Arc::new(TestMem::default());
    let (dev, tlb) = device(&mem);
    dev.set_dma_mask(mask(28)).unwrap();
    dev.set_seg_boundary(0xfff).unwrap();
    // One 2 KiB bounce moves the pool's next free slot to an odd one ...
    let high = PhysAddr::new(0x2000_0000);
    let single = dev
        .map_phys(high, 0x800, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(single.raw(), SWIOTLB.0);
    // ... so the next free slots for a 3 KiB entry, [0x800, 0x1800) of the
    // pool, span the 4 KiB boundary. Linux's slot search skips them
    // (kernel/dma/swiotlb.c `swiotlb_search_pool_area`, `iommu_is_span_boundary`)
    // and so does ours: the entry bounces to the next page instead of being
    // refused. (Before, the search ignored the boundary and the table was
    // refused with `CrossesBoundary` at SWIOTLB + 0x800.)
    let orig = PhysAddr::new(0x3000_0000);
    let data: Vec<u8> = (0..0xc00u32).map(|i| i as u8).collect();
    mem.write(orig, &data).unwrap();
    let mut t = table(&[(0x3000_0000, 0xc00)]);
    dev.map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    let seg = t.dma_iter().next().unwrap();
    let (dma, len) = (seg.dma_address().raw(), u64::from(seg.dma_len()));
    assert_eq!((dma, len), (SWIOTLB.0 + 0x1000, 0xc00));
    assert_eq!(dma >> 12, (dma + len - 1) >> 12, "inside one 4 KiB segment");
    let mut seen = vec![0u8; 0xc00];
    mem.read(PhysAddr::new(dma), &mut seen).unwrap();
    assert_eq!(seen, data, "the device reads the bounced bytes");
    dev.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    dev.unmap_phys(single, 0x800, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(tlb.live_mappings(), 0);
}
