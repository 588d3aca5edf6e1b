//! dma-debug properties: random correct usage never reports, and the
//! cache-line check agrees with a brute-force model under random map/unmap.

mod common;

use common::{ram, Arena};
use dma_api::debug::{DebugConfig, DebugReport, DmaDebug};
use dma_api::port::DmaBackend;
use dma_api::{Direction, DmaAddr};
use proptest::prelude::*;

fn dir_of(i: u8) -> Direction {
    match i % 3 {
        0 => Direction::ToDevice,
        1 => Direction::FromDevice,
        _ => Direction::Bidirectional,
    }
}

proptest! {
    #[test]
    fn correct_usage_never_reports(
        ops in prop::collection::vec((0u64..64, 1u64..3000, 0u8..3, any::<bool>()), 1..60)
    ) {
        // Disjoint, line-aligned buffers (4 KiB apart), synced inside their
        // range with their own direction, all unmapped: zero reports.
        let cfg = DebugConfig { panic_on_report: true, ..DebugConfig::default() };
        let d = DmaDebug::with_config(Arena::iommu(), cfg);
        let mut live = Vec::new();
        for (i, (slot, len, dir, unmap_one)) in (0u64..).zip(ops) {
            let r = ram(0x100_0000 * (i + 1) + slot * 0x1_0000, len, dir_of(dir));
            let dma = d.map(&r).unwrap();
            d.sync_for_cpu(dma, len, r.dir).unwrap();
            d.sync_for_device(dma.checked_add(len / 2).unwrap(), len - len / 2, r.dir).unwrap();
            live.push((dma, r));
            if unmap_one {
                let (dma, r) = live.remove(0);
                d.unmap(dma, &r).unwrap();
            }
        }
        for (dma, r) in live {
            d.unmap(dma, &r).unwrap();
        }
        prop_assert_eq!(d.reports(), vec![]);
        prop_assert!(d.detach().is_empty());
    }

    #[test]
    fn overlap_reports_match_a_brute_force_model(
        ops in prop::collection::vec((0u64..2048, 1u64..400, 0u8..3, 0u8..4), 1..80)
    ) {
        let d = DmaDebug::new(Arena::iommu());
        // (dma, first line, last line, dir)
        let mut live: Vec<(DmaAddr, u64, u64, Direction, dma_api::port::MapRequest)> = Vec::new();
        for (off, len, dir, action) in ops {
            if action == 0 && !live.is_empty() {
                let (dma, _, _, _, r) = live.remove(0);
                d.unmap(dma, &r).unwrap();
                continue;
            }
            let r = ram(0x1_0000 + off, len, dir_of(dir));
            let first = r.phys.raw() >> 6;
            let last = (r.phys.raw() + len - 1) >> 6;
            let sharing: Vec<DmaAddr> = live
                .iter()
                .filter(|(_, f, l, dd, _)| *dd != Direction::ToDevice && *f <= last && *l >= first)
                .map(|(x, ..)| *x)
                .collect();
            let dma = d.map(&r).unwrap();
            let got = d.take_reports();
            if r.dir == Direction::ToDevice || sharing.is_empty() {
                prop_assert_eq!(got, vec![]);
            } else {
                prop_assert_eq!(got.len(), 1);
                match &got[0] {
                    DebugReport::CachelineOverlap { dma: new, other, line, .. } => {
                        prop_assert_eq!(*new, dma);
                        prop_assert!(sharing.contains(other), "{:?} not in {:?}", other, sharing);
                        let l = line.raw() >> 6;
                        prop_assert!(l >= first && l <= last);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            live.push((dma, first, last, r.dir, r));
        }
    }
}
