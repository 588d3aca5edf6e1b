//! Shared helpers for the page-table test suites.
#![allow(dead_code)]

use dma_iommu::pgtable::{
    AmdV1, AnyFormat, ArmLpae, ArmStage, Granule, PageTable, PtFormat, VtdSs,
};
use proptest::test_runner::TestCaseError;

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

/// The names of [`all_formats`], in order.
pub fn all_format_names() -> Vec<String> {
    all_formats().iter().map(|f| f.name()).collect()
}

/// Runs one property case on every format of [`all_formats`], in order
/// (deterministic coverage; the randomness is in the case's inputs). A
/// failure, or a panic, fails the case naming the format. Then checks that
/// every format ran.
pub fn on_every_format(
    mut body: impl FnMut(AnyFormat) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut ran = Vec::new();
    for fmt in all_formats() {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(fmt)));
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(TestCaseError::fail(format!("{}: {e}", fmt.name()))),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                return Err(TestCaseError::fail(format!(
                    "{}: panicked: {msg}",
                    fmt.name()
                )));
            }
        }
        ran.push(fmt.name());
    }
    if ran != all_format_names() {
        return Err(TestCaseError::fail(format!(
            "ran {} of {} formats",
            ran.len(),
            all_formats().len()
        )));
    }
    Ok(())
}

/// Releases any tables detached by map (no IOTLB in these tests).
pub fn drain<F: dma_iommu::PtFormat>(pt: &mut PageTable<F>) {
    if let Some(g) = pt.take_deferred() {
        pt.release(g);
    }
}
