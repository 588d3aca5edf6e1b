//! Coherent allocations move real bytes on the simulated fabric: what the CPU
//! writes, the device reads through its DMA address with no sync, and the
//! other way round — under forced bouncing (a confidential guest, where
//! Linux `dma_direct_alloc` allocates shared memory and never uses swiotlb)
//! and behind the IOMMU (`iommu_dma_alloc`), untrusted devices included.

use dma_api::{Bdf, DmaAddr, PhysAddr};
use dma_sim::assembly::{Assembly, AssemblyOptions, IommuMode};
use dma_sim::machine::{Machine, REFERENCE_TOML};

const NVME0: &str = "0000:03:00.0";

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

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
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
