//! Per-segment dispatch of peer memory: bus routes, host-bridge routes, ACS,
//! per-direction access, provider policies, stolen RAM, device-private
//! memory and the arch veto — on the reference machine.

#[path = "device_common/mod.rs"]
mod common;

use common::*;
use dma_api::device::ArchStep;
use dma_api::direct::DirectConfig;
use dma_api::memmap::{MemRange, RangeKind};
use dma_api::p2p::MapType;
use dma_api::port::{PolicyDecision, ProviderPolicy, SegTarget};
use dma_api::{Bdf, Direction, DmaAttrs, DmaError, ErrorKind, PhysAddr, SegKind};
use scatterlist::{DmaFlags, SgTable};
use std::sync::Arc;

const BUS_OFFSET: (&str, &str) = (
    "{ cpu = 0x40_0000_0000, size = 0x40_0000_0000 }",
    "{ cpu = 0x40_0000_0000, bus = 0x80_0000_0000, size = 0x40_0000_0000 }",
);
const RDMA_BAR: u64 = 0x40_0400_0000;
const GPU_BAR: u64 = 0x50_0000_0000;

struct Fixed(PolicyDecision);
impl ProviderPolicy for Fixed {
    fn decide(&self, _: Bdf, _: PhysAddr, _: u64, _: SegKind, _: Direction) -> PolicyDecision {
        self.0.clone()
    }
}

#[test]
fn peer_bar_under_the_switch_is_a_bus_address_segment_with_its_own_length() {
    let s = setup(&machine(&[BUS_OFFSET]), &COHERENT);
    let (d, b) = s.direct("03:00.0", None, DirectConfig::default());
    let rdma = SegKind::PeerBar(s.ctx.provider_of(bdf("05:00.0")).unwrap());
    let ram = SgTable::from_ranges(
        &[(PhysAddr::new(0x2000_0000), 0x1800)],
        SegKind::Ram,
        0x1000,
    )
    .unwrap();
    let peer =
        SgTable::from_ranges(&[(PhysAddr::new(RDMA_BAR + 0x1000), 0x1800)], rdma, 0x1000).unwrap();
    let mut t = ram.chain(peer).unwrap();
    assert_eq!(t.orig_nents(), 4);
    let n = d
        .map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert_eq!(n, 4, "direct never merges");
    let segs: Vec<_> = t
        .dma_iter()
        .map(|e| (e.dma_address().raw(), e.dma_len(), e.dma_flags()))
        .collect();
    assert_eq!(
        segs,
        vec![
            (0x2000_0000, 0x1000, DmaFlags::EMPTY),
            (0x2000_1000, 0x800, DmaFlags::EMPTY),
            (0x80_0400_1000, 0x1000, DmaFlags::BUS_ADDRESS),
            (0x80_0400_2000, 0x800, DmaFlags::BUS_ADDRESS),
        ]
    );
    assert_eq!(d.live_tables(), 1);
    assert!(d
        .map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .is_err());
    d.sync_sgtable_for_cpu(&t, Direction::ToDevice).unwrap();
    d.unmap_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .unwrap();
    assert!(!t.is_dma_mapped());
    assert_eq!(d.live_tables(), 0);
    let st = b.stats();
    assert_eq!((st.bus, st.direct, st.unmaps), (2, 2, 2));
    // map_phys gives the same bus address.
    let dma = d
        .map_phys(
            PhysAddr::new(RDMA_BAR + 0x10),
            0x20,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), 0x80_0400_0010);
}

#[test]
fn acs_redirect_gives_host_bridge_route_for_writes_and_refuses_reads_with_reasons() {
    let s = setup(&machine(&[BUS_OFFSET]), &COHERENT);
    let (d, b) = s.direct("03:00.0", None, DirectConfig::default());
    // nvme0 writes into gpu0's BAR: ACS redirect at 02:03.0 sends it through
    // the (allow-listed, write-forwarding) host bridge: MMIO at the bus address.
    let dma = d
        .map_phys(
            PhysAddr::new(GPU_BAR + 0x4000),
            0x1000,
            Direction::FromDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), 0x90_0000_4000);
    assert_eq!(b.stats().host_bridge, 1);
    assert!(!d.need_sync(dma));
    d.unmap_phys(dma, 0x1000, Direction::FromDevice, DmaAttrs::empty())
        .unwrap();
    // Reading it is refused: this root complex does not forward P2P reads.
    for dir in [Direction::ToDevice, Direction::Bidirectional] {
        let e = d
            .map_phys(PhysAddr::new(GPU_BAR), 0x1000, dir, DmaAttrs::empty())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Fallback);
        let DmaError::P2pUnreachable {
            provider,
            client,
            reasons,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((*provider, *client), (bdf("06:00.0"), bdf("03:00.0")));
        let all = reasons.join(" | ");
        assert!(
            all.contains("ACS redirect") && all.contains("0000:02:03.0"),
            "{all}"
        );
        assert!(all.contains("does not forward peer-to-peer reads"), "{all}");
        assert!(!all.contains("writes"), "{all}");
    }
    // The trace shows every step.
    let tr = d.explain_map(PhysAddr::new(GPU_BAR), 0x1000, Direction::FromDevice);
    let route = tr.route.as_ref().unwrap();
    assert_eq!(route.map_type, MapType::ThruHostBridge);
    assert!(route.write && !route.read);
    assert_eq!(
        tr.arch,
        Some(ArchStep::Allowed {
            arch: "test-coherent"
        })
    );
    assert_eq!(
        tr.target,
        Some((PhysAddr::new(GPU_BAR), SegTarget::PeerHostBridge))
    );
    assert_eq!(tr.dma.map(|x| x.raw()), Some(0x90_0000_0000));
    assert!(tr.error.is_none());
    let text = tr.to_string();
    assert!(
        text.contains("thru_host_bridge") && text.contains("0000:02:03.0"),
        "{text}"
    );
    assert_eq!(d.live_singles(), 0, "explain leaves nothing mapped");
}

#[test]
fn no_common_upstream_goes_through_the_host_bridge() {
    let s = setup(&machine(&[]), &COHERENT);
    // nvme2 on root port 00:02.0 writes into nvme0's CMB (BAR2).
    let (d, _b) = s.direct("07:00.0", None, DirectConfig::default());
    let tr = d.explain_map(PhysAddr::new(0x40_0000_0000), 0x1000, Direction::FromDevice);
    assert_eq!(tr.route.as_ref().unwrap().map_type, MapType::ThruHostBridge);
    assert_eq!(tr.dma.map(|x| x.raw()), Some(0x40_0000_0000));
}

#[test]
fn stolen_ram_is_mapped_as_ram_in_place_or_at_the_redirect() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let apu = s.ctx.provider_of(bdf("00:08.0")).unwrap();
    let stolen = SegKind::StolenRam(apu);
    let mut t =
        SgTable::from_ranges(&[(PhysAddr::new(0x8000_0000), 0x2000)], stolen, 0x1000).unwrap();
    d.map_sgtable(&mut t, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    for (i, e) in t.dma_iter().enumerate() {
        assert_eq!(e.dma_address().raw(), 0x8000_0000 + i as u64 * 0x1000);
        assert_eq!(e.dma_flags(), DmaFlags::EMPTY, "RAM, not MMIO");
    }
    d.unmap_sgtable(&mut t, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    // The owner redirects to the RAM its data really is in.
    s.ctx.set_policy(
        apu,
        Arc::new(Fixed(PolicyDecision::Redirect(PhysAddr::new(0x3000_0000)))),
    );
    let dma = d
        .map_phys(
            PhysAddr::new(0x8000_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), 0x3000_0000);
    let tr = d.explain_map(PhysAddr::new(0x8000_0000), 0x1000, Direction::ToDevice);
    assert_eq!(
        tr.target,
        Some((PhysAddr::new(0x3000_0000), SegTarget::Ram))
    );
    // A redirect to something that is not RAM is the provider's bug.
    s.ctx.set_policy(
        apu,
        Arc::new(Fixed(PolicyDecision::Redirect(PhysAddr::new(GPU_BAR)))),
    );
    let e = d
        .map_phys(
            PhysAddr::new(0x8000_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert!(matches!(e, DmaError::BadRedirect { .. }), "{e}");
}

#[test]
fn provider_refusal_is_a_fallback_with_the_reason() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let rdma = s.ctx.provider_of(bdf("05:00.0")).unwrap();
    s.ctx.set_policy(
        rdma,
        Arc::new(Fixed(PolicyDecision::Refuse("BAR revoked by VFIO".into()))),
    );
    let e = d
        .map_phys(
            PhysAddr::new(RDMA_BAR),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::ProviderRefused {
            provider: bdf("05:00.0"),
            client: bdf("03:00.0"),
            reason: "BAR revoked by VFIO".into()
        }
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
    // In a table the whole mapping fails and nothing stays mapped.
    let ram = SgTable::from_ranges(
        &[(PhysAddr::new(0x2000_0000), 0x1000)],
        SegKind::Ram,
        0x1000,
    )
    .unwrap();
    let peer = SgTable::from_ranges(
        &[(PhysAddr::new(RDMA_BAR), 0x1000)],
        SegKind::PeerBar(rdma),
        0x1000,
    )
    .unwrap();
    let mut t = ram.chain(peer).unwrap();
    assert!(d
        .map_sgtable(&mut t, Direction::ToDevice, DmaAttrs::empty())
        .is_err());
    assert!(!t.is_dma_mapped());
    assert_eq!(d.live_tables(), 0);
}

#[test]
fn device_private_memory_is_refused_unless_its_owner_redirects() {
    let s = setup(&machine(&[]), &COHERENT);
    let gpu = s.ctx.provider_of(bdf("06:00.0")).unwrap();
    s.ctx
        .memmap
        .write()
        .insert(MemRange {
            start: PhysAddr::new(0x100_0000_0000),
            size: 0x10_0000,
            kind: RangeKind::DevicePrivate { owner: gpu },
        })
        .unwrap();
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let e = d
        .map_phys(
            PhysAddr::new(0x100_0000_1000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::DevicePrivate {
            owner: bdf("06:00.0"),
            phys: PhysAddr::new(0x100_0000_1000),
            len: 0x1000
        }
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
    // Even the owner cannot DMA to it by address.
    let (own, _) = s.direct("06:00.0", None, DirectConfig::default());
    assert!(own
        .map_phys(
            PhysAddr::new(0x100_0000_1000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty()
        )
        .is_err());
    // After migration the owner redirects to RAM.
    s.ctx.set_policy(
        gpu,
        Arc::new(Fixed(PolicyDecision::Redirect(PhysAddr::new(0x3100_0000)))),
    );
    let dma = d
        .map_phys(
            PhysAddr::new(0x100_0000_1000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), 0x3100_0000);
}

#[test]
fn an_arch_without_p2p_vetoes_even_bus_routes() {
    let s = setup(&machine(&[]), &NOP2P);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let e = d
        .map_phys(
            PhysAddr::new(RDMA_BAR),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        DmaError::ArchNoP2p {
            arch: "test-nop2p",
            why: "no peer routing between functions"
        }
    );
    let tr = d.explain_map(PhysAddr::new(RDMA_BAR), 0x1000, Direction::ToDevice);
    assert_eq!(tr.route.as_ref().unwrap().map_type, MapType::BusAddr);
    assert!(matches!(
        tr.arch,
        Some(ArchStep::Vetoed {
            arch: "test-nop2p",
            ..
        })
    ));
    assert_eq!(tr.error, Some(e));
    // RAM is unaffected.
    assert!(d
        .map_phys(
            PhysAddr::new(0x2000_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty()
        )
        .is_ok());
}

#[test]
fn acs_change_invalidates_the_route_cache() {
    let s = setup(&machine(&[]), &COHERENT);
    let (d, _b) = s.direct("03:00.0", None, DirectConfig::default());
    let e = d.map_phys(
        PhysAddr::new(GPU_BAR),
        0x1000,
        Direction::ToDevice,
        DmaAttrs::empty(),
    );
    assert!(e.is_err());
    {
        let mut topo = s.ctx.topology.write();
        let dp3 = topo.lookup(bdf("02:03.0")).unwrap();
        topo.set_acs_ctrl(dp3, dma_api::topology::Acs::empty())
            .unwrap();
    }
    // Now a bus route through the switch: reads allowed.
    let dma = d
        .map_phys(
            PhysAddr::new(GPU_BAR),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(dma.raw(), GPU_BAR);
}
