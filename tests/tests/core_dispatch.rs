//! The core dispatcher and direct backend over the reference machine with
//! the real arch backends: cache programs lower to real code (arm64,
//! non-coherent), s390x vetoes P2P, x86_64 maps P2P by bus address.

use dma_api::arch_port::SyncOp;
use dma_api::device::DmaDevice;
use dma_api::direct::{DirectBackend, DirectConfig};
use dma_api::swiotlb::Swiotlb;
use dma_api::{Bdf, Direction, DmaAttrs, DmaError, ErrorKind, PhysAddr};
use dma_iommu::{PhysMem, SharedMem};
use dma_sim::machine::{Machine, REFERENCE_TOML};
use std::sync::{Arc, RwLock};

fn device(arch: &str, toml: &str, at: &str) -> (Arc<DmaDevice>, Arc<DirectBackend>) {
    let m = Machine::from_toml_str("t", toml).unwrap();
    let arch = dma_arch::by_name(arch).unwrap();
    let mem: SharedMem = Arc::new(RwLock::new(PhysMem::new()));
    let ctx = m
        .dma_context(
            arch,
            dma_sim::SimRam(mem.clone()).port(),
            (PhysAddr::new(0x1000_0000), 0x100_0000),
        )
        .unwrap();
    let pool = Arc::new(
        Swiotlb::new(
            dma_sim::SimRam(mem).port(),
            PhysAddr::new(0x800_0000),
            0x40_0000,
        )
        .unwrap(),
    );
    let bdf: Bdf = at.parse().unwrap();
    let b = Arc::new(
        ctx.direct_backend(bdf, Some(pool), DirectConfig::default())
            .unwrap(),
    );
    let d = Arc::new(DmaDevice::new(ctx, bdf, b.clone()).unwrap());
    (d, b)
}

#[test]
fn arm64_non_coherent_programs_lower_to_real_code() {
    let toml = REFERENCE_TOML
        .replacen("arch = \"x86_64\"", "arch = \"arm64\"", 1)
        .replacen(
            "name = \"nvme0\"\n",
            "name = \"nvme0\"\ncoherent = false\n",
            1,
        );
    let (d, b) = device("arm64", &toml, "03:00.0");
    let dma = d
        .map_phys(
            PhysAddr::new(0x2000_0020),
            0x200,
            Direction::Bidirectional,
            DmaAttrs::empty(),
        )
        .unwrap();
    d.unmap_phys(dma, 0x200, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    let log = b.cache_log();
    assert_eq!((log.for_device, log.for_cpu), (1, 1));
    assert_eq!(log.recent[0].op, SyncOp::Clean);
    assert_eq!(log.recent[1].op, SyncOp::Invalidate);
    // arm64 DC ops are 4 bytes each; the program covers 9 lines plus a DSB.
    let bytes = b.lower_recorded().unwrap();
    assert!(bytes >= 2 * 9 * 4, "{bytes}");
}

#[test]
fn s390x_vetoes_peer_memory_and_maps_ram() {
    let toml = REFERENCE_TOML.replacen("arch = \"x86_64\"", "arch = \"s390x\"", 1);
    let (d, _b) = device("s390x", &toml, "03:00.0");
    let e = d
        .map_phys(
            PhysAddr::new(0x40_0400_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap_err();
    assert!(
        matches!(e, DmaError::ArchNoP2p { arch: "s390x", .. }),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Fallback);
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
fn x86_64_reference_machine_routes() {
    let (d, _b) = device("x86_64", REFERENCE_TOML, "03:00.0");
    let bus = d
        .map_phys(
            PhysAddr::new(0x40_0400_0000),
            0x1000,
            Direction::ToDevice,
            DmaAttrs::empty(),
        )
        .unwrap();
    assert_eq!(bus.raw(), 0x40_0400_0000);
    let tr = d.explain_map(PhysAddr::new(0x50_0000_0000), 0x1000, Direction::ToDevice);
    let e = tr.error.clone().unwrap();
    assert!(matches!(e, DmaError::P2pUnreachable { .. }));
    let text = tr.to_string();
    assert!(
        text.contains("ACS redirect") && text.contains("reads"),
        "{text}"
    );
}
