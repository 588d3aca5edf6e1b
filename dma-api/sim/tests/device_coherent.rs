//! Coherent allocations move real bytes on the simulated fabric: what the CPU
//! writes, the device reads through its DMA address with no sync, and the
//! other way round — under forced bouncing (a confidential guest, where
//! Linux `dma_direct_alloc` allocates shared memory and never uses swiotlb)
//! and behind the IOMMU (`iommu_dma_alloc`), untrusted devices included.

use dma_api::debug::MapKind;
use dma_api::device::CoherentAllocation;
use dma_api::{Bdf, DmaAddr, DmaError, DmaMask, PhysAddr};
use dma_sim::assembly::{Assembly, AssemblyOptions, Concrete, IommuMode};
use dma_sim::machine::{Machine, REFERENCE_TOML};

const NVME0: &str = "0000:03:00.0";
const NVME1: &str = "0000:04:00.0";

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

/// The reference server with `edits` applied to its TOML, assembled with
/// `opts`.
fn assembly(edits: &[(&str, &str)], opts: AssemblyOptions) -> Assembly {
    let mut src = REFERENCE_TOML.to_string();
    for (from, to) in edits {
        assert!(src.contains(from), "edit target {from:?} missing");
        src = src.replacen(from, to, 1);
    }
    Assembly::build(Machine::from_toml_str("test", &src).unwrap(), opts).unwrap()
}

fn forced_bounce() -> Assembly {
    assembly(
        &[],
        AssemblyOptions {
            iommu: IommuMode::Off,
            force_bounce: true,
            ..AssemblyOptions::default()
        },
    )
}

fn iommu(edits: &[(&str, &str)]) -> Assembly {
    assembly(
        edits,
        AssemblyOptions {
            iommu: IommuMode::Strict,
            ..AssemblyOptions::default()
        },
    )
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        // Never a zero byte: a write that never happened over zeroed memory
        // cannot pass for the pattern.
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) % 255 + 1)
        .collect()
}

fn dev_read(a: &Assembly, who: Bdf, dma: DmaAddr, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    a.fabric.dma_read(who, dma, &mut b).unwrap();
    b
}

fn cpu_read(a: &Assembly, phys: PhysAddr, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    a.fabric.cpu_read(phys, &mut b).unwrap();
    b
}

#[test]
fn raw_pair_is_coherent_under_forced_bouncing() {
    let a = forced_bounce();
    let who = bdf(NVME0);
    let d = a.device(who).unwrap();
    let (phys, dma) = d.alloc_coherent(0x2000).unwrap();
    // The CPU writes a PRP list; the device reads it with no sync.
    let prp = pattern(0x2000, 1);
    a.fabric.cpu_write(phys, &prp).unwrap();
    assert_eq!(dev_read(&a, who, dma, 0x2000), prp);
    // The device writes a completion; the CPU sees it with no sync.
    let cqe = pattern(0x40, 2);
    a.fabric
        .dma_write(who, DmaAddr::new(dma.raw() + 0x1000), &cqe)
        .unwrap();
    assert_eq!(cpu_read(&a, PhysAddr::new(phys.raw() + 0x1000), 0x40), cqe);
    assert_eq!(a.swiotlb.stats().maps, 0, "never bounced");
    d.free_coherent(phys, dma).unwrap();
}

/// CPU → device and device → CPU through `buf`, with no sync in between,
/// over the fabric (the device's reads and writes are TLPs through the
/// topology and the root complex, translated by the IOMMU when there is one).
fn round_trip(a: &Assembly, who: Bdf, buf: &CoherentAllocation) {
    let len = buf.len() as usize;
    let prp = pattern(len, 7);
    buf.write(0, &prp).unwrap();
    assert_eq!(
        dev_read(a, who, buf.dma_handle(), len),
        prp,
        "CPU -> device"
    );
    let cqe = pattern(0x40, 9);
    let at = buf.len() - 0x40;
    a.fabric
        .dma_write(who, DmaAddr::new(buf.dma_handle().raw() + at), &cqe)
        .unwrap();
    let mut got = vec![0; 0x40];
    buf.read(at, &mut got).unwrap();
    assert_eq!(got, cqe, "device -> CPU");
    assert!(a.fabric.faults().is_empty());
}

#[test]
fn owned_buffer_is_coherent_under_forced_bouncing() {
    let a = forced_bounce();
    let who = bdf(NVME0);
    let ep = a.endpoint(who).unwrap();
    let buf = ep.device.alloc_coherent_buf(0x3000).unwrap();
    round_trip(&a, who, &buf);
    let Concrete::Direct(b) = &ep.concrete else {
        panic!("IOMMU off: direct backend")
    };
    assert_eq!((b.stats().coherent, b.stats().bounced), (1, 0));
    assert_eq!(a.swiotlb.stats().maps, 0, "never a swiotlb slot");
    buf.free().unwrap();
}

#[test]
fn owned_buffer_is_coherent_behind_the_strict_iommu() {
    let a = iommu(&[]);
    let who = bdf(NVME0);
    let buf = a.device(who).unwrap().alloc_coherent_buf(0x2000).unwrap();
    assert_ne!(buf.dma_handle().raw(), buf.phys().raw(), "an IOVA");
    round_trip(&a, who, &buf);
}

#[test]
fn untrusted_device_behind_the_iommu_is_never_bounced() {
    let a = iommu(&[("name = \"nvme1\"\n", "name = \"nvme1\"\nuntrusted = true\n")]);
    let who = bdf(NVME1);
    let ep = a.endpoint(who).unwrap();
    let Concrete::Iommu(b) = &ep.concrete else {
        panic!("IOMMU strict: IOMMU backend")
    };
    assert!(!b.device().trusted && b.swiotlb().is_some());
    // An odd size: the allocation is still whole pages, mapped in place.
    let buf = ep.device.alloc_coherent_buf(0x1234).unwrap();
    round_trip(&a, who, &buf);
    assert_eq!(b.stats().bounced, 0);
    assert_eq!(a.swiotlb.stats().maps, 0);
}

#[test]
fn drop_frees_and_the_device_loses_the_address() {
    let a = iommu(&[]);
    let who = bdf(NVME0);
    let d = a.device(who).unwrap();
    let before = a.ctx.ram_in_use();
    let buf = d.alloc_coherent_buf(0x1000).unwrap();
    let dma = buf.dma_handle();
    assert_eq!(a.ctx.ram_in_use(), before + 0x1000);
    assert_eq!(d.live_coherent(), 1);
    drop(buf);
    assert_eq!(a.ctx.ram_in_use(), before);
    assert_eq!(d.live_coherent(), 0);
    let mut b = [0u8; 8];
    assert!(
        a.fabric.dma_read(who, dma, &mut b).is_err(),
        "the IOVA is unmapped and flushed (strict)"
    );

    // Without an IOMMU the address stays RAM; the allocation is gone.
    let a = forced_bounce();
    let d = a.device(who).unwrap();
    let before = a.ctx.ram_in_use();
    let buf = d.alloc_coherent_buf(0x1000).unwrap();
    let (phys, dma) = (buf.phys(), buf.dma_handle());
    drop(buf);
    assert_eq!(a.ctx.ram_in_use(), before);
    assert_eq!(
        d.free_coherent(phys, dma),
        Err(DmaError::NotMapped { dma, len: 0 })
    );
}

#[test]
fn out_of_bounds_access_is_a_typed_error() {
    let a = forced_bounce();
    let buf = a
        .device(bdf(NVME0))
        .unwrap()
        .alloc_coherent_buf(0x100)
        .unwrap();
    let mut b = [0u8; 0x10];
    let oob = |offset, len| DmaError::OutOfBounds {
        offset,
        len,
        size: 0x100,
    };
    assert_eq!(buf.read(0xf8, &mut b), Err(oob(0xf8, 0x10)));
    assert_eq!(buf.write(0x101, &[]), Err(oob(0x101, 0)));
    assert_eq!(buf.write(u64::MAX - 1, &[0; 4]), Err(oob(u64::MAX - 1, 4)));
    // The page behind the 0x100 bytes is not the caller's.
    assert_eq!(buf.write(0x100, &[1]), Err(oob(0x100, 1)));
    buf.write(0xf0, &[1; 0x10]).unwrap();
}

#[test]
fn a_pool_the_device_cannot_reach_fails_by_name_and_is_never_bounced() {
    let a = assembly(
        &[("name = \"nvme0\"\n", "name = \"nvme0\"\ndma_mask = 24\n")],
        AssemblyOptions {
            iommu: IommuMode::Off,
            force_bounce: true,
            ..AssemblyOptions::default()
        },
    );
    let d = a.device(bdf(NVME0)).unwrap();
    let before = a.ctx.ram_in_use();
    let e = d.alloc_coherent_buf(0x1000).unwrap_err();
    let pool = a.layout.coherent.0;
    assert_eq!(
        e,
        DmaError::CoherentUnreachable {
            device: bdf(NVME0),
            phys: pool,
            len: 0x1000,
            mask: DmaMask::new(24).unwrap(),
            bus: Some(dma_api::BusAddr::new(pool.raw())),
        }
    );
    assert_eq!(a.ctx.ram_in_use(), before, "the RAM went back to the pool");
    assert_eq!(a.swiotlb.stats().maps, 0);
    assert_eq!(d.live_coherent(), 0);
}

#[test]
fn dma_debug_tracks_the_allocation_as_coherent() {
    let a = assembly(
        &[],
        AssemblyOptions {
            iommu: IommuMode::Off,
            force_bounce: true,
            debug: true,
            ..AssemblyOptions::default()
        },
    );
    let who = bdf(NVME0);
    let ep = a.endpoint(who).unwrap();
    let dbg = ep.debug.as_ref().unwrap();
    let buf = ep.device.alloc_coherent_buf(0x2000).unwrap();
    let active = dbg.active();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].kind, active[0].dma, active[0].len),
        (MapKind::Coherent, buf.dma_handle(), 0x2000)
    );
    round_trip(&a, who, &buf);
    drop(buf);
    assert_eq!(dbg.active_count(), 0);
    assert_eq!(dbg.reports(), vec![]);
    assert_eq!(a.swiotlb.stats().maps, 0);
}
