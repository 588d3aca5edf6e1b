//! Coherent allocations through the direct backend (`dma_direct_alloc`):
//! never bounced, shared addresses when `force_dma_unencrypted`, typed
//! failure when the device cannot reach the memory.

use super::tests::{setup, POOL};
use super::*;
use crate::arch_port::{ArchInfo, CacheProgram, EdgePolicy, P2pSupport, SyncRules};
use crate::bdf::Bdf;
use crate::mask::DmaMask;
use alloc::vec::Vec;

fn forced() -> DirectConfig {
    DirectConfig {
        force_bounce: true,
        ..Default::default()
    }
}

fn creq(phys: u64, len: u64) -> CoherentRequest {
    CoherentRequest {
        device: Bdf::new(0, 3, 0, 0).unwrap(),
        phys: PhysAddr::new(phys),
        len,
        attrs: DmaAttrs::empty(),
    }
}

#[test]
fn forced_bouncing_never_bounces_a_coherent_allocation() {
    let (_m, b) = setup(64, true, forced());
    let r = creq(0x20_0000, 0x2000);
    let dma = b.map_coherent(&r).unwrap();
    // phys_to_dma through the dma-ranges offset, not a swiotlb slot.
    assert_eq!(dma.raw(), 0x8000_0000 + 0x20_0000);
    let st = b.stats();
    assert_eq!((st.coherent, st.bounced), (1, 0));
    assert_eq!(b.swiotlb().unwrap().live_mappings(), 0);
    // A streaming map of the same range is still bounced.
    let streaming = b.map(&r.as_map_request()).unwrap();
    assert_eq!(streaming.raw(), 0x8000_0000 + POOL);
    b.unmap(streaming, &r.as_map_request()).unwrap();
    // Freeing checks the address belongs to the request.
    assert_eq!(
        b.unmap_coherent(DmaAddr::new(dma.raw() + 0x1000), &r),
        Err(DmaError::NotMapped {
            dma: DmaAddr::new(dma.raw() + 0x1000),
            len: 0x2000
        })
    );
    b.unmap_coherent(dma, &r).unwrap();
    assert_eq!(b.cache_log().recent.len(), 0, "no cache maintenance");
}

#[test]
fn an_unreachable_allocation_fails_naming_device_range_and_mask() {
    for cfg in [DirectConfig::default(), forced()] {
        let (_m, b) = setup(32, true, cfg);
        // RAM at 4 GiB appears at bus 0x1_8000_0000: beyond 32 bits.
        let r = creq(0x1_0000_0000, 0x1000);
        assert_eq!(
            b.map_coherent(&r),
            Err(DmaError::CoherentUnreachable {
                device: r.device,
                phys: r.phys,
                len: 0x1000,
                mask: DmaMask::BITS_32,
                bus: Some(BusAddr::new(0x1_8000_0000)),
            })
        );
        // Outside every dma-range: no bus address at all.
        let far = creq(0x40_0000_0000, 0x1000);
        let e = b.map_coherent(&far).unwrap_err();
        assert!(
            matches!(e, DmaError::CoherentUnreachable { bus: None, .. }),
            "{e}"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::Fallback);
        let msg = alloc::string::ToString::to_string(&e);
        assert!(
            msg.contains("0000:03:00.0") && msg.contains("32-bit"),
            "{msg}"
        );
        assert_eq!(b.swiotlb().unwrap().live_mappings(), 0, "never bounced");
        assert_eq!(b.stats().coherent, 0);
    }
}

static ENC_INFO: ArchInfo = ArchInfo {
    name: "test-sme",
    cache_line_size: 64,
    default_coherent: true,
    always_coherent: true,
    p2p: P2pSupport::Full,
    mem_encrypt_bit: Some(47),
    sync: SyncRules::NONE,
    invalidate_edges: EdgePolicy::Plain,
    line_invalidate: false,
    fence_before: false,
};

struct EncArch;

impl ArchDma for EncArch {
    fn info(&self) -> &'static ArchInfo {
        &ENC_INFO
    }
    fn lower(&self, _: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        Ok(Vec::new())
    }
}

static ENC: EncArch = EncArch;

fn encrypted(mask: u32, cfg: DirectConfig) -> DirectBackend {
    let dev = ArchDevice::new(WindowMap::identity_all(), true, DmaMask::new(mask).unwrap())
        .with_mem_encrypt(true);
    DirectBackend::new(&ENC, dev, WindowMap::identity_all(), None, cfg)
}

#[test]
fn shared_address_exactly_when_dma_must_be_unencrypted() {
    const C_BIT: u64 = 1 << 47;
    let r = creq(0x20_0000, 0x1000);
    // A confidential guest: phys_to_dma_unencrypted, no encryption bit.
    let guest = encrypted(64, forced());
    assert!(guest.force_dma_unencrypted());
    assert_eq!(guest.map_coherent(&r).unwrap().raw(), 0x20_0000);
    // An encrypting host, device able to carry the bit: encrypted memory.
    let host = encrypted(64, DirectConfig::default());
    assert!(!host.force_dma_unencrypted());
    assert_eq!(host.map_coherent(&r).unwrap().raw(), 0x20_0000 | C_BIT);
    // An encrypting host, mask at or below the bit: shared.
    let narrow = encrypted(47, DirectConfig::default());
    assert!(narrow.force_dma_unencrypted());
    let dma = narrow.map_coherent(&r).unwrap();
    assert_eq!(dma.raw(), 0x20_0000);
    narrow.unmap_coherent(dma, &r).unwrap();
}
