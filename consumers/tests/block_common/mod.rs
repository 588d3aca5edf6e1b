//! Shared by the block, NVMe-over-block, stacking and nvmet tests: the
//! simulated fabric as the device models' [`Wire`], machines, patterns and
//! the "nothing left behind" check.

#![allow(dead_code)]

use dma_api::{Bdf, DmaAddr, DmaDevice, PhysAddr};
use dma_consumers::wire::Wire;
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use dma_sim::Assembly;

/// RAM above 4 GiB.
pub const HIGH: u64 = 0x1_0020_0000;
/// rdma0's BAR 0, registered p2pmem (examples/machines/reference-server.toml).
pub const RDMA_P2PMEM: u64 = 0x40_0400_0000;
/// nvme0's BAR 2 (its CMB on the reference server).
pub const NVME0_BAR2: u64 = 0x40_0000_0000;

/// The fabric as the device models' bus.
pub struct FabricWire<'a>(pub &'a Assembly);

impl Wire for FabricWire<'_> {
    fn dma_read(&self, who: Bdf, at: DmaAddr, buf: &mut [u8]) -> Result<(), String> {
        self.0
            .fabric
            .dma_read(who, at, buf)
            .map_err(|f| f.to_string())
    }

    fn dma_write(&self, who: Bdf, at: DmaAddr, data: &[u8]) -> Result<(), String> {
        self.0
            .fabric
            .dma_write(who, at, data)
            .map_err(|f| f.to_string())
    }
}

/// The reference server with dma-debug.
pub fn assembly(iommu: IommuMode) -> Assembly {
    build(Machine::reference().unwrap(), iommu)
}

/// `m` assembled with dma-debug.
pub fn build(m: Machine, iommu: IommuMode) -> Assembly {
    let opts = AssemblyOptions {
        iommu,
        debug: true,
        ..AssemblyOptions::default()
    };
    Assembly::build(m, opts).unwrap()
}

/// A pattern without zero bytes.
pub fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8) % 255 + 1)
        .collect()
}

/// The CPU's view.
pub fn cpu_read(a: &Assembly, phys: PhysAddr, len: u64) -> Vec<u8> {
    let mut b = vec![0; len as usize];
    a.fabric.cpu_read(phys, &mut b).unwrap();
    b
}

/// Nothing mapped, allocated or reported for `dev`.
pub fn assert_quiet(a: &Assembly, dev: &DmaDevice, ram_before: u64) {
    assert_eq!(dev.live_tables(), 0);
    assert_eq!(dev.live_singles(), 0);
    assert_eq!(dev.live_coherent(), 0);
    assert_eq!(dev.context().ram_in_use(), ram_before);
    assert!(dev.context().take_drop_errors().is_empty());
    let e = a.endpoint(dev.bdf()).unwrap();
    let debug = e.debug.as_ref().expect("assembled with dma-debug");
    assert!(debug.reports().is_empty(), "{:?}", debug.reports());
    assert_eq!(debug.active_count(), 0, "mappings left for {}", dev.bdf());
}
