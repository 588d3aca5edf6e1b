//! End to end, byte-exact: every P2P route of the reference server, mapped
//! through the assembled machine's `DmaDevice`s and then *used* by the
//! device on the fabric. The bytes are read back from where the mapping
//! promised they would land, and the fabric's link counters show which way
//! they went.

use dma_api::fallback::map_or_fallback;
use dma_api::port::{PolicyDecision, ProviderPolicy};
use dma_api::{Bdf, Direction, DmaAttrs, DmaError, ErrorKind, PhysAddr, SegKind};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::fabric::FaultReason;
use std::sync::Arc;
use unidma_tests::*;

const NVME0: &str = "03:00.0";
const NVME1: &str = "04:00.0";
const RDMA0_BAR: u64 = 0x40_0400_0000;
const GPU0_BAR1: u64 = 0x50_0000_0000;
const NVME2: &str = "07:00.0";

#[test]
fn bus_address_through_the_switch_keeps_bytes_off_the_root_complex() {
    for mode in [IommuMode::Strict, IommuMode::Lazy, IommuMode::Off] {
        let a = reference_with(mode);
        let d = a.device(bdf(NVME0)).unwrap();
        let at = PhysAddr::new(RDMA0_BAR + 0x2340);
        let data = pattern(0x3000, 7);
        let dma = d
            .map_phys(
                at,
                data.len() as u64,
                Direction::FromDevice,
                DmaAttrs::empty(),
            )
            .unwrap();
        // BUS_ADDRESS: identity bus windows on x86, the IOMMU untouched.
        assert_eq!(dma.raw(), at.raw(), "{mode:?}");
        dev_write(&a, bdf(NVME0), dma, &data).unwrap();
        assert_eq!(cpu_read(&a, at, data.len()), data, "{mode:?}");
        assert_eq!(a.fabric.root_complex_bytes(), 0, "{mode:?}");
        assert_eq!(a.fabric.ram_bytes(), 0, "{mode:?}");
        assert_eq!(a.fabric.counters().bytes_written, data.len() as u64);
        // The device reads the peer too (ToDevice: the client reads).
        let back = dev_read(&a, bdf(NVME0), dma, data.len()).unwrap();
        assert_eq!(back, data);
        assert_eq!(a.fabric.root_complex_bytes(), 0);
        d.unmap_phys(
            dma,
            data.len() as u64,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    }
}

#[test]
fn host_bridge_route_with_the_iommu_translates_to_the_bar() {
    // nvme0 -> gpu0 (ACS redirect on gpu0's port): through the root complex,
    // which forwards peer writes. The DMA address is an IOVA.
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME0)).unwrap();
    let at = PhysAddr::new(GPU0_BAR1 + 0x10_0000);
    let data = pattern(0x2000, 9);
    let dma = d
        .map_phys(at, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_ne!(dma.raw(), at.raw(), "an IOVA, not the BAR address");
    dev_write(&a, bdf(NVME0), dma, &data).unwrap();
    assert_eq!(cpu_read(&a, at, data.len()), data);
    // Up to the root complex and down again; never RAM.
    assert_eq!(a.fabric.root_complex_bytes(), 2 * 0x2000);
    assert_eq!(a.fabric.ram_bytes(), 0);
    d.unmap_phys(dma, 0x2000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
}

#[test]
fn host_bridge_route_without_iommu_uses_the_bus_address() {
    // nvme2 sits on another root port: every peer route crosses the root
    // complex. With the IOMMU off the direct backend programs the BAR's bus
    // address and the root complex decodes it through its MMIO window.
    let a = reference_with(IommuMode::Off);
    let d = a.device(bdf(NVME2)).unwrap();
    let at = PhysAddr::new(GPU0_BAR1 + 0x4000);
    let data = pattern(0x1800, 3);
    let tr = d.explain_map(at, 0x1800, Direction::FromDevice);
    assert_eq!(
        tr.route.as_ref().unwrap().map_type,
        dma_api::p2p::MapType::ThruHostBridge
    );
    let dma = d
        .map_phys(at, 0x1800, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dma.raw(), at.raw());
    dev_write(&a, bdf(NVME2), dma, &data).unwrap();
    assert_eq!(cpu_read(&a, at, data.len()), data);
    assert_eq!(a.fabric.root_complex_bytes(), 2 * 0x1800);
    assert_eq!(a.fabric.ram_bytes(), 0);
    // Reads are not forwarded by this root complex: the mapping is refused,
    // and a device that reads anyway faults at the host bridge.
    let e = d
        .map_phys(at, 0x1000, Direction::ToDevice, DmaAttrs::empty())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Fallback, "{e}");
    let f = dev_read(&a, bdf(NVME2), dma, 64).unwrap_err();
    assert!(
        matches!(f.reason, FaultReason::HostBridgeP2pRefused { .. }),
        "{f}"
    );
    assert_eq!(f.requester, bdf(NVME2));
}

/// The APU's driver: its "VRAM" (BAR aperture and carve-out) has been
/// evicted to system RAM at `to`, so peers are redirected there.
struct ApuEvicted {
    bar: u64,
    stolen: u64,
    to: u64,
}

impl ProviderPolicy for ApuEvicted {
    fn decide(
        &self,
        _: Bdf,
        phys: PhysAddr,
        _: u64,
        kind: SegKind,
        _: Direction,
    ) -> PolicyDecision {
        let base = match kind {
            SegKind::PeerBar(_) => self.bar,
            _ => self.stolen,
        };
        PolicyDecision::Redirect(PhysAddr::new(self.to + (phys.raw() - base)))
    }
}

#[test]
fn stolen_ram_is_ram_in_place_and_follows_the_owner_redirect() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = reference_with(mode);
        let d = a.device(bdf(NVME0)).unwrap();
        let data = pattern(0x1000, 0x44);
        // No policy: the carve-out is mapped in place, as RAM (never MMIO).
        let stolen = PhysAddr::new(0x8000_3000);
        let tr = d.explain_map(stolen, 0x1000, Direction::FromDevice);
        assert!(matches!(tr.kind, SegKind::StolenRam(_)));
        assert_eq!(tr.target, Some((stolen, dma_api::port::SegTarget::Ram)));
        let dma = d
            .map_phys(stolen, 0x1000, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        dev_write(&a, bdf(NVME0), dma, &data).unwrap();
        assert_eq!(cpu_read(&a, stolen, 0x1000), data, "{mode:?}");
        assert_eq!(
            a.fabric.ram_bytes(),
            0x1000,
            "{mode:?}: through the memory controller"
        );
        d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        // The APU reads what the peer wrote, through its own mapping.
        let apu_dev = a.device(bdf("00:08.0")).unwrap();
        let adma = apu_dev
            .map_phys(stolen, 0x1000, Direction::ToDevice, DmaAttrs::empty())
            .unwrap();
        assert_eq!(dev_read(&a, bdf("00:08.0"), adma, 0x1000).unwrap(), data);
        apu_dev
            .unmap_phys(adma, 0x1000, Direction::ToDevice, DmaAttrs::empty())
            .unwrap();

        // The owner evicted its VRAM to system RAM: the BAR aperture and the
        // carve-out are both redirected there.
        let to = scratch(&a, 3);
        let apu = a.ctx.provider_of(bdf("00:08.0")).unwrap();
        a.ctx.set_policy(
            apu,
            Arc::new(ApuEvicted {
                bar: 0xc200_0000,
                stolen: 0x8000_0000,
                to: to.raw(),
            }),
        );
        a.fabric.reset_counters();
        for (src, off) in [
            (PhysAddr::new(0xc200_1000), 0x1000u64),
            (PhysAddr::new(0x8000_2000), 0x2000),
        ] {
            let tr = d.explain_map(src, 0x1000, Direction::FromDevice);
            let want = PhysAddr::new(to.raw() + off);
            assert_eq!(
                tr.policy,
                Some(PolicyDecision::Redirect(want)),
                "{mode:?} {src}"
            );
            let dma = d
                .map_phys(src, 0x1000, Direction::FromDevice, DmaAttrs::empty())
                .unwrap();
            let data = pattern(0x1000, off as u8);
            dev_write(&a, bdf(NVME0), dma, &data).unwrap();
            assert_eq!(cpu_read(&a, want, 0x1000), data, "{mode:?} {src}");
            d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
                .unwrap();
        }
        assert_eq!(a.fabric.ram_bytes(), 0x2000, "{mode:?}");
        assert_ne!(
            cpu_read(&a, PhysAddr::new(0xc200_1000), 0x1000),
            pattern(0x1000, 0x10)
        );
    }
}

#[test]
fn small_mask_bounces_through_swiotlb_and_sync_shows_the_bytes() {
    let a = variant(
        |t| edit_once(t, "name = \"nvme1\"\n", "name = \"nvme1\"\ndma_mask = 32\n"),
        AssemblyOptions {
            iommu: IommuMode::Off,
            ..AssemblyOptions::default()
        },
    );
    let d = a.device(bdf(NVME1)).unwrap();
    let buf = PhysAddr::new(0x2_0000_0000 + 0x80);
    let len = 0x1f00u64;
    let dma = d
        .map_phys(buf, len, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert!(dma.raw() < 1 << 32, "bounced below the mask: {dma}");
    assert!(a.swiotlb.contains(PhysAddr::new(dma.raw())));
    let data = pattern(len as usize, 0x21);
    dev_write(&a, bdf(NVME1), dma, &data).unwrap();
    // Not visible before the sync...
    assert_ne!(cpu_read(&a, buf, data.len()), data);
    d.sync_single_for_cpu(dma, len, Direction::FromDevice)
        .unwrap();
    // ...exactly visible after it.
    assert_eq!(cpu_read(&a, buf, data.len()), data);
    d.unmap_phys(dma, len, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(a.swiotlb.live_mappings(), 0);

    // The same device behind the IOMMU needs no bounce: the IOVA fits.
    let a = variant(
        |t| edit_once(t, "name = \"nvme1\"\n", "name = \"nvme1\"\ndma_mask = 32\n"),
        AssemblyOptions::default(),
    );
    let d = a.device(bdf(NVME1)).unwrap();
    let dma = d
        .map_phys(buf, len, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    assert!(dma.raw() < 1 << 32 && !a.swiotlb.contains(PhysAddr::new(dma.raw())));
    dev_write(&a, bdf(NVME1), dma, &data).unwrap();
    assert_eq!(cpu_read(&a, buf, data.len()), data);
}

#[test]
fn unreachable_peer_falls_back_through_ram() {
    // nvme0 reading gpu0's BAR: the root complex does not forward reads.
    let a = reference_with(IommuMode::Strict);
    let d = a.device(bdf(NVME0)).unwrap().clone();
    let at = PhysAddr::new(GPU0_BAR1 + 0x8000);
    let data = pattern(0x1000, 0x5a);
    cpu_write(&a, at, &data);
    let m = map_or_fallback(
        &d,
        at,
        0x1000,
        Direction::ToDevice,
        DmaAttrs::empty(),
        a.peer_memory(),
    )
    .unwrap();
    let why = m.fell_back().expect("must fall back");
    assert!(matches!(why, DmaError::P2pUnreachable { .. }), "{why}");
    assert!(
        why.to_string()
            .contains("does not forward peer-to-peer reads"),
        "{why}"
    );
    a.fabric.reset_counters();
    assert_eq!(
        dev_read(&a, bdf(NVME0), m.dma_addr(), 0x1000).unwrap(),
        data
    );
    // The bytes came from RAM, not across the root complex from the BAR.
    assert_eq!(a.fabric.ram_bytes(), 0x1000);
    let buf = m.bounce_buffer().unwrap();
    m.complete().unwrap();
    assert_eq!(a.ctx.ram_in_use(), 0, "staging buffer {buf} freed");
}

#[test]
fn s390x_refuses_p2p_then_fallback_moves_the_bytes_through_ram() {
    let a = variant(
        |t| edit_once(t, "arch = \"x86_64\"", "arch = \"s390x\""),
        AssemblyOptions::default(),
    );
    let d = a.device(bdf(NVME0)).unwrap().clone();
    let at = PhysAddr::new(RDMA0_BAR + 0x1000);
    let e = d
        .map_phys(at, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap_err();
    assert!(
        matches!(e, DmaError::ArchNoP2p { arch: "s390x", .. }),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
    let m = map_or_fallback(
        &d,
        at,
        0x1000,
        Direction::FromDevice,
        DmaAttrs::empty(),
        a.peer_memory(),
    )
    .unwrap();
    assert!(matches!(m.fell_back(), Some(DmaError::ArchNoP2p { .. })));
    let data = pattern(0x1000, 0x77);
    dev_write(&a, bdf(NVME0), m.dma_addr(), &data).unwrap();
    assert_eq!(a.fabric.ram_bytes(), 0x1000, "the device wrote RAM");
    assert_ne!(
        cpu_read(&a, at, 0x1000),
        data,
        "not in the BAR before complete()"
    );
    m.complete().unwrap();
    assert_eq!(
        cpu_read(&a, at, 0x1000),
        data,
        "copied back to the peer BAR"
    );
}

/// The APU's driver: its BAR aperture is a window onto its own stolen-RAM
/// carve-out, so peers are redirected to the RAM it really is.
struct ApuAperture {
    bar: u64,
    stolen: u64,
}

impl ProviderPolicy for ApuAperture {
    fn decide(
        &self,
        _: Bdf,
        phys: PhysAddr,
        _: u64,
        kind: SegKind,
        _: Direction,
    ) -> PolicyDecision {
        match kind {
            SegKind::PeerBar(_) => {
                PolicyDecision::Redirect(PhysAddr::new(self.stolen + (phys.raw() - self.bar)))
            }
            _ => PolicyDecision::Allow,
        }
    }
}

#[test]
fn apu_bar_redirected_to_its_own_carve_out_is_coherent_ram_not_mmio() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = reference_with(mode);
        let apu = a.ctx.provider_of(bdf("00:08.0")).unwrap();
        a.ctx.set_policy(
            apu,
            Arc::new(ApuAperture {
                bar: 0xc200_0000,
                stolen: 0x8000_0000,
            }),
        );
        let d = a.device(bdf(NVME0)).unwrap();
        let bar = PhysAddr::new(0xc200_4000);
        let want = PhysAddr::new(0x8000_4000);
        let tr = d.explain_map(bar, 0x1000, Direction::FromDevice);
        assert!(matches!(tr.kind, SegKind::PeerBar(_)), "{mode:?}");
        assert_eq!(tr.policy, Some(PolicyDecision::Redirect(want)), "{mode:?}");
        assert_eq!(
            tr.target,
            Some((want, dma_api::port::SegTarget::Ram)),
            "{mode:?}: mapped as RAM, not MMIO"
        );
        a.fabric.reset_counters();
        let dma = d
            .map_phys(bar, 0x1000, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
        let data = pattern(0x1000, 0x5a);
        dev_write(&a, bdf(NVME0), dma, &data).unwrap();
        assert_eq!(cpu_read(&a, want, 0x1000), data, "{mode:?}");
        assert_eq!(a.fabric.ram_bytes(), 0x1000, "{mode:?}: memory controller");
        d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
            .unwrap();
    }
}

/// A provider may not redirect into memory that is not system RAM it owns.
struct RedirectTo(u64);

impl ProviderPolicy for RedirectTo {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        PolicyDecision::Redirect(PhysAddr::new(self.0))
    }
}

#[test]
fn redirect_into_mmio_is_a_typed_bad_redirect() {
    let a = reference_with(IommuMode::Strict);
    let rdma = a.ctx.provider_of(bdf("05:00.0")).unwrap();
    // rdma0 redirects into gpu0's BAR: not RAM.
    a.ctx.set_policy(rdma, Arc::new(RedirectTo(GPU0_BAR1)));
    let d = a.device(bdf(NVME0)).unwrap();
    let e = d
        .map_phys(
            PhysAddr::new(RDMA0_BAR),
            0x1000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert!(matches!(e, DmaError::BadRedirect { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Invalid);
}
