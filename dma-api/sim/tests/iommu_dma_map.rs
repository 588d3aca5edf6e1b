//! Single-range mapping through the IOMMU backend, checked by translating
//! through the root complex (IOTLB + hardware walker reading table memory).

#[path = "iommu_common/mod.rs"]
mod dma_common;

use std::time::Duration;

use dma_api::port::{DmaBackend, MapRequest, SegTarget};
use dma_api::{BusAddr, Direction, DmaAddr, DmaAttrs, DmaError, DmaMask, ErrorKind, PhysAddr};
use dma_common::*;
use dma_iommu::domain::PER_CPU_FQ_TIMEOUT;
use dma_iommu::{DomainType, Iova};
use dma_sim::fabric::{RcFaultReason, RootComplexIommu};

fn ram(phys: u64, len: u64, dir: Direction) -> MapRequest {
    MapRequest {
        phys: PhysAddr::new(phys),
        len,
        dir,
        attrs: DmaAttrs::empty(),
        target: SegTarget::Ram,
    }
}

#[test]
fn map_translates_byte_exact_and_data_flows_both_ways() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let phys = 0x1_2345_6789u64;
    let len = 0x2345u64;
    let req = ram(phys, len, Direction::Bidirectional);
    let dma = r.dev.map(&req).unwrap();
    // The in-granule offset is kept; 32-bit first for a PCI device.
    assert_eq!(dma.raw() & 0xfff, 0x789);
    assert!(dma.raw() < 1 << 32);
    // Every byte's translation is the byte it maps.
    for off in [0, 1, 0x876, 0x877, 0x1000, len - 1] {
        let got = r.translate(DmaAddr::new(dma.raw() + off), false).unwrap();
        assert_eq!(got, Some(PhysAddr::new(phys + off)), "offset {off:#x}");
    }
    // CPU writes, device reads through the IOMMU.
    let pat = pattern(len as usize, 7);
    r.cpu_write(PhysAddr::new(phys), &pat);
    assert_eq!(r.dev_read(dma, len).unwrap(), pat);
    // Device writes, CPU reads.
    let pat2 = pattern(len as usize, 99);
    r.dev_write(dma, &pat2).unwrap();
    assert_eq!(r.cpu_read(PhysAddr::new(phys), len as usize), pat2);
    r.dev.unmap(dma, &req).unwrap();
}

#[test]
fn protection_follows_direction() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let to = ram(0x1_0000_0000, 0x1000, Direction::ToDevice);
    let from = ram(0x1_0000_4000, 0x1000, Direction::FromDevice);
    let dto = r.dev.map(&to).unwrap();
    let dfrom = r.dev.map(&from).unwrap();
    assert_eq!(
        r.translate(dto, false).unwrap(),
        Some(PhysAddr::new(0x1_0000_0000))
    );
    let e = r.translate(dto, true).unwrap_err();
    assert_eq!(e.reason, RcFaultReason::Permission);
    assert!(e.write);
    assert_eq!(
        r.translate(dfrom, true).unwrap(),
        Some(PhysAddr::new(0x1_0000_4000))
    );
    assert_eq!(
        r.translate(dfrom, false).unwrap_err().reason,
        RcFaultReason::Permission
    );
    // The leaf carries exactly READ / WRITE (VT-d: snooping is a domain
    // property, not a leaf bit).
    let io = r.iommu.lock().unwrap();
    let pt = io.page_table(r.d).unwrap();
    let prot_of = |dma: DmaAddr| match pt.leaf_entry(dma.as_iova()) {
        Some((_, _, dma_iommu::pgtable::Pte::Leaf { prot, .. })) => prot,
        other => panic!("no leaf: {other:?}"),
    };
    use dma_iommu::Prot;
    assert_eq!(prot_of(dto), Prot::READ);
    assert_eq!(prot_of(dfrom), Prot::WRITE);
    drop(io);
    // ARM LPAE stage 1 encodes the memory type: coherent RAM is cacheable.
    let a = rig(DomainType::Dma, arm_s1(), |_| {});
    let d = a.dev.map(&to).unwrap();
    let io = a.iommu.lock().unwrap();
    match io.page_table(a.d).unwrap().leaf_entry(d.as_iova()) {
        Some((_, _, dma_iommu::pgtable::Pte::Leaf { prot, .. })) => {
            assert_eq!(prot, Prot::READ | Prot::CACHE);
        }
        other => panic!("no leaf: {other:?}"),
    }
}

#[test]
fn strict_unmap_faults_at_once_and_frees_after_flush() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let req = ram(0x1_0000_0000, 0x3000, Direction::Bidirectional);
    let dma = r.dev.map(&req).unwrap();
    // Fill the IOTLB.
    assert!(r.translate(dma, true).unwrap().is_some());
    assert!(r.released().is_empty());
    r.dev.unmap(dma, &req).unwrap();
    // The cached translation is gone: the very next access faults.
    assert_eq!(
        r.translate(dma, true).unwrap_err().reason,
        RcFaultReason::NotPresent
    );
    assert!(r.iommu.lock().unwrap().stale_entries(r.d).is_empty());
    // The IOVA went back (3 pages → the 4-page class) after the flush...
    assert_eq!(r.released(), vec![(dma.as_iova(), 0x3000)]);
    assert_eq!(r.dev.stats().strict_flushes, 1);
    // ...and the next allocation of that class reuses it.
    let dma2 = r.dev.map(&req).unwrap();
    assert_eq!(dma2, dma);
}

#[test]
fn lazy_unmap_keeps_stale_translation_until_fq_timeout() {
    let r = rig(DomainType::DmaFq, vtd(), |_| {});
    let req = ram(0x1_0000_0000, 0x1000, Direction::Bidirectional);
    let dma = r.dev.map(&req).unwrap();
    assert_eq!(
        r.translate(dma, false).unwrap(),
        Some(PhysAddr::new(0x1_0000_0000))
    );
    r.dev.unmap(dma, &req).unwrap();
    assert_eq!(r.dev.stats().lazy_queued, 1);
    // Stale IOTLB entry: the device can still reach the page.
    assert_eq!(
        r.translate(dma, false).unwrap(),
        Some(PhysAddr::new(0x1_0000_0000))
    );
    assert!(r.released().is_empty());
    // The IOVA is not reused while its invalidation is pending.
    let other = r.dev.map(&req).unwrap();
    assert_ne!(other, dma);
    // Just before the timeout nothing happens.
    r.clock
        .advance(PER_CPU_FQ_TIMEOUT - Duration::from_nanos(1));
    assert_eq!(r.poll(), 0);
    assert!(r.translate(dma, false).unwrap().is_some());
    // At the timeout the queue is flushed: the access faults and the IOVA is
    // released to the allocator.
    r.clock.advance(Duration::from_nanos(1));
    assert_eq!(r.poll(), 1);
    assert_eq!(
        r.translate(dma, false).unwrap_err().reason,
        RcFaultReason::NotPresent
    );
    assert_eq!(r.released(), vec![(dma.as_iova(), 0x1000)]);
    let again = r.dev.map(&req).unwrap();
    assert_eq!(again, dma);
    r.dev.unmap(other, &req).unwrap();
}

#[test]
fn untrusted_device_is_strict_even_on_a_lazy_domain() {
    let r = rig(DomainType::DmaFq, vtd(), |d| d.trusted = false);
    // Attaching the untrusted group forced the domain strict.
    assert!(!r.dom.is_lazy());
    let req = ram(0x1_0000_0000, 0x1000, Direction::ToDevice);
    let dma = r.dev.map(&req).unwrap();
    r.dev.unmap(dma, &req).unwrap();
    assert_eq!(r.dev.stats().strict_flushes, 1);
    assert!(r.translate(dma, false).is_err());
    assert_eq!(r.dev.max_mapping_size(), 256 * 1024);
    // A sub-granule MMIO buffer would need bouncing: refused as Fallback.
    let mmio = MapRequest {
        target: SegTarget::PeerHostBridge,
        ..ram(0x2_0000_0100, 0x80, Direction::ToDevice)
    };
    let e = r.dev.map(&mmio).unwrap_err();
    assert_eq!(
        e,
        DmaError::MmioNotBounceable {
            phys: PhysAddr::new(0x2_0000_0100),
            len: 0x80
        }
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
    assert!(r.dev.needs_bounce(PhysAddr::new(0x1_0000_0010), 0x1000));
    assert!(!r.dev.needs_bounce(PhysAddr::new(0x1_0000_0000), 0x2000));
}

#[test]
fn peer_targets() {
    let r = rig(DomainType::Dma, arm_s1(), |_| {});
    // Through a switch: the bus address, nothing mapped.
    let bus = MapRequest {
        target: SegTarget::PeerBus(BusAddr::new(0x9000_0040)),
        ..ram(0x2_0000_0040, 0x100, Direction::FromDevice)
    };
    assert_eq!(r.dev.map(&bus).unwrap(), DmaAddr::new(0x9000_0040));
    assert_eq!(r.dev.stats().iova_allocs, 0);
    r.dev.unmap(DmaAddr::new(0x9000_0040), &bus).unwrap();
    // Through the host bridge: mapped with MMIO, no cache attribute.
    let hb = MapRequest {
        target: SegTarget::PeerHostBridge,
        ..ram(0x2_0000_0000, 0x2000, Direction::Bidirectional)
    };
    let dma = r.dev.map(&hb).unwrap();
    let io = r.iommu.lock().unwrap();
    match io.page_table(r.d).unwrap().leaf_entry(dma.as_iova()) {
        Some((_, _, dma_iommu::pgtable::Pte::Leaf { prot, oa, .. })) => {
            assert!(prot.contains(dma_iommu::Prot::MMIO));
            assert!(!prot.contains(dma_iommu::Prot::CACHE));
            assert_eq!(oa, PhysAddr::new(0x2_0000_0000));
        }
        other => panic!("no leaf: {other:?}"),
    }
}

#[test]
fn identity_blocked_and_unknown_requesters() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    // A requester the IOMMU does not know has no context entry: blocked,
    // naming it (never passed through untranslated).
    let stranger: dma_api::Bdf = "0000:09:00.0".parse().unwrap();
    let f =
        r.rc.translate(stranger, DmaAddr::new(0x1234), 4, false)
            .unwrap_err();
    assert_eq!(
        (f.requester, f.reason),
        (stranger, RcFaultReason::NoContext)
    );
    let mut io = r.iommu.lock().unwrap();
    let fmt = vtd();
    let ident = io.alloc_domain(DomainType::Identity, fmt).unwrap();
    let blocked = io.alloc_domain(DomainType::Blocked, fmt).unwrap();
    io.attach_group(G, true, ident).unwrap();
    drop(io);
    assert_eq!(r.translate(DmaAddr::new(0x5000), true), Ok(None));
    r.iommu
        .lock()
        .unwrap()
        .attach_group(G, true, blocked)
        .unwrap();
    assert_eq!(
        r.translate(DmaAddr::new(0x5000), true).unwrap_err().reason,
        RcFaultReason::Blocked
    );
    r.iommu.lock().unwrap().detach_group(G);
    assert_eq!(
        r.translate(DmaAddr::new(0x5000), false).unwrap_err().reason,
        RcFaultReason::Blocked
    );
}

#[test]
fn iova_exhaustion_is_no_resources() {
    // A 20-bit mask leaves 255 granules (frame 0 is never handed out).
    let r = rig(DomainType::Dma, vtd(), |d| {
        d.dma_mask = DmaMask::new(20).unwrap();
    });
    let big = ram(0x1_0000_0000, 0x8_0000, Direction::ToDevice);
    let a = r.dev.map(&big).unwrap();
    assert!(a.raw() + 0x8_0000 <= 1 << 20);
    let e = r.dev.map(&big).unwrap_err();
    assert!(
        matches!(e, DmaError::IovaExhausted { pages: 128, .. }),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::NoResources);
    // Nothing leaked into the page table by the failure.
    r.dev.unmap(a, &big).unwrap();
    assert_eq!(
        r.iommu
            .lock()
            .unwrap()
            .page_table(r.d)
            .unwrap()
            .leaf_count(),
        0
    );
    assert!(r.dev.map(&big).is_ok());
}

#[test]
fn bad_requests_are_typed() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    assert_eq!(
        r.dev.map(&ram(0x1000, 0, Direction::ToDevice)).unwrap_err(),
        DmaError::ZeroLength {
            phys: PhysAddr::new(0x1000)
        }
    );
    assert!(matches!(
        r.dev.map(&ram(u64::MAX - 10, 100, Direction::ToDevice)),
        Err(DmaError::PhysOverflow { .. })
    ));
    let req = ram(0x1_0000_0000, 0x1000, Direction::ToDevice);
    assert_eq!(
        r.dev.unmap(DmaAddr::new(0x7000), &req).unwrap_err(),
        DmaError::IovaNotAllocated {
            iova: Iova::new(0x7000)
        }
    );
    // Output address beyond the table's: refused, and the IOVA it took is
    // given back (the next map of that size gets it from the cache).
    let d1 = r.dev.map(&req).unwrap();
    r.dev.unmap(d1, &req).unwrap();
    let far = ram(1 << 60, 0x1000, Direction::ToDevice);
    assert!(matches!(
        r.dev.map(&far),
        Err(DmaError::NotTranslatable { .. })
    ));
    assert_eq!(r.dev.map(&req).unwrap(), d1);
}

#[test]
fn limits_and_syncs() {
    let r = rig(DomainType::Dma, vtd(), |d| d.coherent = false);
    assert_eq!(r.dev.opt_mapping_size(), 128 * 1024);
    assert_eq!(r.dev.max_mapping_size(), u64::MAX);
    assert_eq!(r.dev.merge_boundary(), 0xfff);
    assert!(r.dev.iova_ops().is_some());
    let req = ram(0x1_0000_0800, 0x1800, Direction::FromDevice);
    let dma = r.dev.map(&req).unwrap();
    assert!(r.dev.need_sync(dma));
    // Map handed the buffer to the device.
    let log = r.dev.take_sync_log();
    assert_eq!(log.len(), 1);
    assert!(!log[0].for_cpu && log[0].phys == PhysAddr::new(0x1_0000_0800) && log[0].len == 0x1800);
    // A sub-range sync translates through the table.
    r.dev
        .sync_for_cpu(
            DmaAddr::new(dma.raw() + 0x100),
            0x200,
            Direction::FromDevice,
        )
        .unwrap();
    let log = r.dev.take_sync_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].phys, PhysAddr::new(0x1_0000_0900));
    assert_eq!(log[0].len, 0x200);
    assert!(log[0].for_cpu);
    r.dev.unmap(dma, &req).unwrap();
    assert!(r.dev.take_sync_log()[0].for_cpu);
    assert!(matches!(
        r.dev.sync_for_device(dma, 0x10, Direction::FromDevice),
        Err(DmaError::IovaNotAllocated { .. })
    ));
    // REQUIRE_COHERENT cannot be honoured on a non-coherent device.
    let rc = MapRequest {
        attrs: DmaAttrs::REQUIRE_COHERENT,
        ..req
    };
    assert_eq!(r.dev.map(&rc).unwrap_err().kind(), ErrorKind::Fallback);
    // A coherent device never syncs.
    let c = rig(DomainType::Dma, vtd(), |_| {});
    let dma = c.dev.map(&req).unwrap();
    assert!(!c.dev.need_sync(dma));
    c.dev
        .sync_for_cpu(dma, 0x10, Direction::FromDevice)
        .unwrap();
    assert!(c.dev.take_sync_log().is_empty());
}

#[test]
fn devices_share_one_domain() {
    let r = rig(DomainType::Dma, vtd(), |_| {});
    let g2 = dma_iommu::GroupId(4);
    let bdf2: dma_api::Bdf = "0000:04:00.0".parse().unwrap();
    r.iommu.lock().unwrap().attach_group(g2, true, r.d).unwrap();
    let dev2 = dma_iommu::IommuDmaBackend::new(
        std::sync::Arc::clone(&r.dom),
        dma_iommu::IommuDevice::pci(bdf2, g2),
    )
    .unwrap();
    let a = r
        .dev
        .map(&ram(0x1_0000_0000, 0x1000, Direction::ToDevice))
        .unwrap();
    let b = dev2
        .map(&ram(0x1_0001_0000, 0x1000, Direction::ToDevice))
        .unwrap();
    assert_ne!(a, b);
    let rc = r.rc.clone();
    rc.add_requester(bdf2, g2);
    // Same domain: both requesters see both mappings.
    assert_eq!(
        rc.translate(bdf2, a, 8, false).unwrap(),
        Some(PhysAddr::new(0x1_0000_0000))
    );
    // A group attached elsewhere cannot get a backend on this domain.
    let g3 = dma_iommu::GroupId(5);
    let e = dma_iommu::IommuDmaBackend::new(
        std::sync::Arc::clone(&r.dom),
        dma_iommu::IommuDevice::pci(bdf2, g3),
    )
    .unwrap_err();
    assert!(matches!(e, DmaError::IommuDomain { .. }));
}

#[test]
fn pci_devices_get_32bit_iova_first_others_top_down() {
    let pci = rig(DomainType::Dma, vtd(), |_| {});
    let a = pci
        .dev
        .map(&ram(0x1_0000_0000, 0x1000, Direction::ToDevice))
        .unwrap();
    assert!(a.raw() < 1 << 32);
    assert!(pci.dev.iova_policy().pci_32bit_workaround());
    let plat = rig(DomainType::Dma, vtd(), |d| d.is_pci = false);
    let b = plat
        .dev
        .map(&ram(0x1_0000_0000, 0x1000, Direction::ToDevice))
        .unwrap();
    // Top-down from the 48-bit aperture end.
    assert_eq!(b.raw(), (1 << 48) - 0x1000);
    assert_eq!(
        plat.translate(b, false).unwrap(),
        Some(PhysAddr::new(0x1_0000_0000))
    );
}

#[test]
fn iova_never_lands_in_a_host_bridge_window() {
    use dma_api::{AddrWindow, WindowMap};
    let r = rig(DomainType::Dma, vtd(), |_| {});
    // The bridge forwards 0xc0000000..=0xffffffff to peer BARs.
    let win = WindowMap::new([AddrWindow::identity(
        PhysAddr::new(0xc000_0000),
        0x4000_0000,
    )])
    .unwrap();
    r.dom
        .reserve_pci_windows(&win, &WindowMap::empty(), true)
        .unwrap();
    let req = ram(0x1_0000_0000, 0x10000, Direction::ToDevice);
    for _ in 0..64 {
        let dma = r.dev.map(&req).unwrap();
        assert!(dma.raw() + 0x10000 <= 0xc000_0000, "{dma}");
    }
}
