//! After unmap, the device's access must stop working: at once under strict
//! invalidation; under lazy invalidation only after the flush-queue timeout
//! on the SimClock, and never later than that bound.

use dma_api::{Direction, DmaAttrs, PhysAddr};
use dma_iommu::domain::FqMode;
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::fabric::FaultReason;
use dma_sim::fabric::RcFaultReason;
use std::time::Duration;
use unidma_tests::*;

const NVME0: &str = "03:00.0";

#[test]
fn strict_unmap_faults_the_next_device_access() {
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME0)).unwrap();
    let buf = scratch(&a, 0);
    let data = pattern(0x2000, 1);
    let dma = d
        .map_phys(buf, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    dev_write(&a, bdf(NVME0), dma, &data).unwrap();
    assert_eq!(cpu_read(&a, buf, 0x2000), data);
    d.unmap_phys(dma, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let f = dev_write(&a, bdf(NVME0), dma, &pattern(0x2000, 2)).unwrap_err();
    assert_eq!(f.requester, bdf(NVME0));
    assert_eq!(f.addr, dma);
    assert!(f.write);
    match &f.reason {
        FaultReason::IommuFault(rc) => {
            assert_eq!(rc.reason, RcFaultReason::NotPresent, "{f}");
            assert_eq!(rc.requester, bdf(NVME0));
        }
        other => panic!("expected an IOMMU fault, got {other:?}"),
    }
    // Recorded by the fabric, and nothing changed in RAM.
    assert_eq!(a.fabric.faults().last(), Some(&f));
    assert_eq!(cpu_read(&a, buf, 0x2000), data);
    // Reads fault the same way.
    let f = dev_read(&a, bdf(NVME0), dma, 16).unwrap_err();
    assert!(matches!(f.reason, FaultReason::IommuFault(_)), "{f}");
    assert!(!f.write);
}

#[test]
fn lazy_unmap_keeps_the_stale_translation_until_the_flush_queue_timeout() {
    let a = reference_with(IommuMode::Lazy);
    let io = a.iommu.as_ref().unwrap();
    let d = a.device(bdf(NVME0)).unwrap();
    let group = a.endpoint(bdf(NVME0)).unwrap().group;
    let dom = io.domains[&group].id;
    let bound = io.iommu.lock().unwrap().stale_window_bound(dom).unwrap();
    assert_eq!(bound, FqMode::PerCpu { cpus: 2 }.timeout());
    assert_eq!(bound, Duration::from_millis(10));

    let buf = scratch(&a, 1);
    let dma = d
        .map_phys(buf, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // The device uses it (fills the IOTLB).
    dev_write(&a, bdf(NVME0), dma, &pattern(0x1000, 1)).unwrap();
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(io.iommu.lock().unwrap().queued(dom), 1);
    // Stale: still translates (the window Linux accepts with iommu.strict=0).
    let stale = pattern(0x1000, 2);
    dev_write(&a, bdf(NVME0), dma, &stale).unwrap();
    assert_eq!(cpu_read(&a, buf, 0x1000), stale);
    // Just before the timeout: still open.
    assert_eq!(a.advance(bound - Duration::from_micros(1)).unwrap(), 0);
    dev_write(&a, bdf(NVME0), dma, &pattern(0x1000, 3)).unwrap();
    // The timer fires: flushed, the window is closed.
    assert_eq!(a.advance(Duration::from_micros(1)).unwrap(), 1);
    let f = dev_write(&a, bdf(NVME0), dma, &pattern(0x1000, 4)).unwrap_err();
    assert!(matches!(f.reason, FaultReason::IommuFault(_)), "{f}");
    assert_eq!(f.requester, bdf(NVME0));
    assert_eq!(cpu_read(&a, buf, 0x1000), pattern(0x1000, 3));
    let io = io.iommu.lock().unwrap();
    assert_eq!(io.queued(dom), 0);
    assert!(io.max_observed_window(dom) <= bound);
    assert!(io.stale_entries(dom).is_empty());
}

#[test]
fn untrusted_device_is_strict_even_in_lazy_mode() {
    let a = variant(
        |t| {
            edit_once(
                t,
                "name = \"nvme2\"\n",
                "name = \"nvme2\"\nuntrusted = true\n",
            )
        },
        AssemblyOptions {
            iommu: IommuMode::Lazy,
            ..AssemblyOptions::default()
        },
    );
    let io = a.iommu.as_ref().unwrap();
    let g = a.endpoint(bdf("07:00.0")).unwrap().group;
    assert_eq!(io.domains[&g].ty, dma_iommu::DomainType::Dma);
    let g0 = a.endpoint(bdf(NVME0)).unwrap().group;
    assert_eq!(io.domains[&g0].ty, dma_iommu::DomainType::DmaFq);
    let d = a.device(bdf("07:00.0")).unwrap();
    let buf = PhysAddr::new(scratch(&a, 2).raw());
    let dma = d
        .map_phys(buf, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    dev_write(&a, bdf("07:00.0"), dma, &pattern(0x1000, 1)).unwrap();
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    let f = dev_write(&a, bdf("07:00.0"), dma, &pattern(0x1000, 2)).unwrap_err();
    assert!(matches!(f.reason, FaultReason::IommuFault(_)), "{f}");
}
