//! Shared helpers for the page-table test suites.
#![allow(dead_code)]

use dma_iommu::pgtable::{AmdV1, AnyFormat, ArmLpae, ArmStage, Granule, PageTable, VtdSs};

/// Every format configuration the suites run over.
pub fn all_formats() -> Vec<AnyFormat> {
    let mut v = Vec::new();
    for l in 3..=5 {
        v.push(AnyFormat::VtdSs(VtdSs::new(l).unwrap()));
    }
    for m in [1, 2, 3, 4, 6] {
        v.push(AnyFormat::AmdV1(AmdV1::new(m).unwrap()));
    }
    for m in [3, 4] {
        v.push(AnyFormat::AmdV1(
            AmdV1::new(m).unwrap().natural_sizes_only(),
        ));
    }
    for stage in [ArmStage::S1, ArmStage::S2] {
        for g in [Granule::G4K, Granule::G16K, Granule::G64K] {
            for (ias, oas) in [(32, 32), (40, 40), (42, 42), (48, 48)] {
                v.push(AnyFormat::ArmLpae(
                    ArmLpae::new(stage, g, ias, oas).unwrap(),
                ));
            }
        }
    }
    v
}

/// Releases any tables detached by map (no IOTLB in these tests).
pub fn drain<F: dma_iommu::PtFormat>(pt: &mut PageTable<F>) {
    if let Some(g) = pt.take_deferred() {
        pt.release(g);
    }
}
