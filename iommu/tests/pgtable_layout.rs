//! Bit-exact layout of written entries, checked against the hardware
//! specifications (VT-d §9.8, AMD IOMMU §2.2.3, ARM VMSAv8-64 descriptors).

use dma_iommu::pgtable::{AmdV1, ArmLpae, ArmStage, Granule, PageTable, Prot, Pte, VtdSs};
use dma_iommu::{Iova, PhysAddr};

const RW: Prot = Prot::READ.union(Prot::WRITE);

#[test]
fn vtd_leaf_bits_r_w_snp_ps_and_address_are_exact() {
    let mut pt = PageTable::new(VtdSs::new(4).unwrap().with_force_snoop(true)).unwrap();
    // 4K leaf, RW, forced snoop, highest HAW address bit set.
    let pa4k = 0x000F_FFFF_1234_5000u64;
    pt.map(Iova::new(0x7000), PhysAddr::new(pa4k), 0x1000, RW)
        .unwrap();
    let (level, raw, _) = pt.leaf_entry(Iova::new(0x7000)).unwrap();
    assert_eq!(level, 0);
    assert_eq!(raw, pa4k | 0b11 | (1 << 11));
    assert_eq!(raw & (1 << 7), 0, "no PS at level 0");

    // 2M superpage, read only.
    let mut pt = PageTable::new(VtdSs::new(4).unwrap()).unwrap();
    pt.map(
        Iova::new(0x4020_0000),
        PhysAddr::new(0x8_0060_0000),
        0x20_0000,
        Prot::READ,
    )
    .unwrap();
    let (level, raw, dec) = pt.leaf_entry(Iova::new(0x4020_0000)).unwrap();
    assert_eq!(level, 1);
    assert_eq!(raw, 0x8_0060_0000 | 0b01 | (1 << 7));
    assert_eq!(
        dec,
        Pte::Leaf {
            oa: PhysAddr::new(0x8_0060_0000),
            size_lg2: 21,
            prot: Prot::READ
        }
    );
    // 1G superpage, write only.
    pt.map(
        Iova::new(0x8000_0000),
        PhysAddr::new(0x40_0000_0000),
        1 << 30,
        Prot::WRITE,
    )
    .unwrap();
    let (level, raw, _) = pt.leaf_entry(Iova::new(0x8000_1234)).unwrap();
    assert_eq!((level, raw), (2, 0x40_0000_0000 | 0b10 | (1 << 7)));

    // The root's table entry: next-table address | R | W, nothing else.
    let m = pt.mem().read().unwrap();
    let root_e = m.read_u64(pt.root());
    assert_eq!(root_e & 0b11, 0b11);
    assert_eq!(root_e & !0x000F_FFFF_FFFF_F000 & !0b11, 0);
    assert!(m.is_allocated(PhysAddr::new(root_e & 0x000F_FFFF_FFFF_F000)));
}

#[test]
fn vtd_without_sllps_uses_4k_pages_only() {
    let mut pt = PageTable::new(VtdSs::new(3).unwrap().with_sllps(0)).unwrap();
    pt.map(Iova::new(0), PhysAddr::new(0), 0x20_0000, RW)
        .unwrap();
    assert_eq!(pt.leaf_count(), 512);
    assert_eq!(pt.leaf_sizes().get(&12), Some(&512));
}

#[test]
fn amd_natural_and_next_level_7_encodings_are_exact() {
    let mut pt = PageTable::new(AmdV1::new(4).unwrap()).unwrap();
    // Natural 2M leaf at level 1: NL = 0.
    pt.map(
        Iova::new(0x20_0000),
        PhysAddr::new(0x1_0020_0000),
        0x20_0000,
        RW,
    )
    .unwrap();
    let (level, raw, _) = pt.leaf_entry(Iova::new(0x20_0000)).unwrap();
    assert_eq!(level, 1);
    assert_eq!(raw, 1 | 0x1_0020_0000 | (1 << 61) | (1 << 62));
    // 8K contiguous page at level 0: NL = 7, no size bits, 2 identical entries.
    pt.map(
        Iova::new(0x4000),
        PhysAddr::new(0x9_0000_4000),
        0x2000,
        Prot::READ,
    )
    .unwrap();
    let want = 1 | (7 << 9) | 0x9_0000_4000 | (1 << 61);
    assert_eq!(pt.leaf_entry(Iova::new(0x4000)).unwrap().1, want);
    assert_eq!(pt.leaf_entry(Iova::new(0x5000)).unwrap().1, want);
    // 64K: run of three 1s at address bits 14:12, 16 identical entries.
    pt.map(
        Iova::new(0x10_0000),
        PhysAddr::new(0xA_0001_0000),
        0x1_0000,
        RW,
    )
    .unwrap();
    let want = 1 | (7 << 9) | 0xA_0001_0000 | 0x7000 | (3 << 61);
    for i in 0..16 {
        assert_eq!(
            pt.leaf_entry(Iova::new(0x10_0000 + i * 0x1000)).unwrap().1,
            want
        );
    }
    assert_eq!(
        pt.iova_to_phys(Iova::new(0x10_fabc)),
        Some(PhysAddr::new(0xA_0001_FABC))
    );
    // Table entries: PR | NL = next table's AMD level | IR | IW.
    let m = pt.mem().read().unwrap();
    let root_e = m.read_u64(pt.root());
    assert_eq!(root_e & 1, 1);
    assert_eq!((root_e >> 9) & 7, 3, "root (AMD level 4) points to level 3");
    assert_eq!(root_e >> 61, 0b11);
    drop(m);
    // 512 GiB is excluded (hardware erratum); 1 TiB uses NL=7 at level 3.
    assert_eq!(pt.pgsize_bitmap() & (1 << 39), 0);
    assert_ne!(pt.pgsize_bitmap() & (1 << 40), 0);
    assert_eq!(pt.leaf_count(), 3);
}

#[test]
fn arm_s1_and_s2_leaf_attributes_are_exact() {
    let mut s1 = PageTable::new(ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).unwrap()).unwrap();
    s1.map(
        Iova::new(0x1000),
        PhysAddr::new(0x8000_1000),
        0x1000,
        Prot::READ | Prot::CACHE,
    )
    .unwrap();
    let (_, raw, _) = s1.leaf_entry(Iova::new(0x1000)).unwrap();
    // page | AF | nG | AP[2]=RO | AP[1]=unpriv | AttrIndx=1 | SH=IS
    assert_eq!(
        raw,
        0x8000_1000 | 0b11 | (1 << 10) | (1 << 11) | (1 << 7) | (1 << 6) | (1 << 2) | (3 << 8)
    );
    s1.map(
        Iova::new(0x4000_0000),
        PhysAddr::new(0xC000_0000),
        1 << 30,
        RW | Prot::NOEXEC | Prot::MMIO,
    )
    .unwrap();
    let (level, raw, _) = s1.leaf_entry(Iova::new(0x4000_0000)).unwrap();
    assert_eq!(level, 2);
    // block | AF | nG | unpriv | AttrIndx=2 | SH=OS | XN
    assert_eq!(
        raw,
        0xC000_0000 | 0b01 | (1 << 10) | (1 << 11) | (1 << 6) | (2 << 2) | (2 << 8) | (3 << 53)
    );

    let mut s2 =
        PageTable::new(ArmLpae::new(ArmStage::S2, Granule::G64K, 48, 48).unwrap()).unwrap();
    s2.map(
        Iova::new(0x2000_0000),
        PhysAddr::new(0x4000_0000),
        1 << 29,
        Prot::WRITE | Prot::CACHE,
    )
    .unwrap();
    let (level, raw, _) = s2.leaf_entry(Iova::new(0x2000_0000)).unwrap();
    assert_eq!(level, 1);
    // block | AF | S2AP=W | MemAttr=0xf | SH=IS
    assert_eq!(
        raw,
        0x4000_0000 | 0b01 | (1 << 10) | (1 << 7) | (0xf << 2) | (3 << 8)
    );
}

#[test]
fn arm_s2_concatenated_root_spans_contiguous_pages() {
    // 4K, ias = oas = 42: 8 concatenated level-1 tables (64 KiB root).
    let fmt = ArmLpae::new(ArmStage::S2, Granule::G4K, 42, 42).unwrap();
    let mut pt = PageTable::new(fmt).unwrap();
    let top = (1u64 << 42) - (1 << 30);
    pt.map(Iova::new(top), PhysAddr::new(0x40_0000_0000), 1 << 30, RW)
        .unwrap();
    // The entry lives in the 8th page of the root: index 4095 of 4096.
    let m = pt.mem().read().unwrap();
    let e = m.read_u64(PhysAddr::new(pt.root().raw() + 4095 * 8));
    assert_eq!(e & 0x0000_FFFF_FFFF_F000, 0x40_0000_0000);
    assert_eq!(e & 0b11, 0b01);
    assert_eq!(
        pt.root().raw() % 0x8000,
        0,
        "root aligned to its 8-page size"
    );
}
