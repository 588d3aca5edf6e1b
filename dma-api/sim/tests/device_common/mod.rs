//! Shared setup for the device tests: tiny in-test arches (the trait only
//! needs `info` and `lower`) over the embedded reference machine.
#![allow(dead_code)]

use dma_api::arch_port::{ArchInfo, CacheProgram, EdgePolicy, P2pSupport, SyncRules};
use dma_api::device::{DmaContext, DmaDevice};
use dma_api::direct::{DirectBackend, DirectConfig};
use dma_api::swiotlb::Swiotlb;
use dma_api::{ArchDma, Bdf, DmaError, DmaMask, PhysAddr};
use dma_iommu::{PhysMem, SharedMem};
use dma_sim::machine::{Machine, REFERENCE_TOML};
use std::sync::{Arc, RwLock};

pub struct TestArch(pub &'static ArchInfo);

impl ArchDma for TestArch {
    fn info(&self) -> &'static ArchInfo {
        self.0
    }
    fn lower(&self, p: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        Ok(p.events().iter().map(|_| 0xcc).collect())
    }
}

pub static COHERENT_INFO: ArchInfo = ArchInfo {
    name: "test-coherent",
    cache_line_size: 64,
    default_coherent: true,
    always_coherent: true,
    p2p: P2pSupport::Full,
    mem_encrypt_bit: None,
    sync: SyncRules::NONE,
    invalidate_edges: EdgePolicy::Plain,
    line_invalidate: false,
    fence_before: false,
};

pub static NONCOHERENT_INFO: ArchInfo = ArchInfo {
    name: "test-noncoherent",
    cache_line_size: 64,
    default_coherent: false,
    always_coherent: false,
    p2p: P2pSupport::Full,
    mem_encrypt_bit: None,
    sync: SyncRules::CLEAN_THEN_INVALIDATE,
    invalidate_edges: EdgePolicy::CleanInvalidateEdges,
    line_invalidate: true,
    fence_before: false,
};

pub static NOP2P_INFO: ArchInfo = ArchInfo {
    name: "test-nop2p",
    p2p: P2pSupport::None {
        why: "no peer routing between functions",
    },
    ..COHERENT_INFO
};

pub static COHERENT: TestArch = TestArch(&COHERENT_INFO);
pub static NONCOHERENT: TestArch = TestArch(&NONCOHERENT_INFO);
pub static NOP2P: TestArch = TestArch(&NOP2P_INFO);

pub const SWIOTLB_BASE: u64 = 0x0800_0000;
pub const SWIOTLB_SIZE: u64 = 0x40_0000;
pub const RAM_POOL: (u64, u64) = (0x1000_0000, 0x100_0000);

pub fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

/// The reference machine with textual edits applied.
pub fn machine(edits: &[(&str, &str)]) -> Machine {
    let mut src = REFERENCE_TOML.to_string();
    for (from, to) in edits {
        assert!(src.contains(from), "edit target {from:?} missing");
        src = src.replacen(from, to, 1);
    }
    Machine::from_toml_str("test", &src).unwrap()
}

pub struct Setup {
    pub ctx: Arc<DmaContext>,
    pub mem: SharedMem,
    pub pool: Arc<Swiotlb>,
}

pub fn setup(m: &Machine, arch: &'static dyn ArchDma) -> Setup {
    let mem: SharedMem = Arc::new(RwLock::new(PhysMem::new()));
    let ctx = m
        .dma_context(
            arch,
            dma_sim::SimRam(mem.clone()).port(),
            (PhysAddr::new(RAM_POOL.0), RAM_POOL.1),
        )
        .unwrap();
    let pool = Arc::new(
        Swiotlb::new(
            dma_sim::SimRam(mem.clone()).port(),
            PhysAddr::new(SWIOTLB_BASE),
            SWIOTLB_SIZE,
        )
        .unwrap(),
    );
    Setup { ctx, mem, pool }
}

impl Setup {
    /// A direct-mapped device; `mask` overrides the machine's mask.
    pub fn direct(
        &self,
        at: &str,
        mask: Option<u32>,
        cfg: DirectConfig,
    ) -> (Arc<DmaDevice>, Arc<DirectBackend>) {
        let (mut dev, mmio) = self.ctx.arch_device(bdf(at)).unwrap();
        if let Some(bits) = mask {
            dev.mask = DmaMask::new(bits).unwrap();
        }
        let b = Arc::new(DirectBackend::new(
            self.ctx.arch,
            dev,
            mmio,
            Some(self.pool.clone()),
            cfg,
        ));
        let d = Arc::new(DmaDevice::new(self.ctx.clone(), bdf(at), b.clone()).unwrap());
        (d, b)
    }

    pub fn write(&self, at: u64, data: &[u8]) {
        self.mem
            .write()
            .unwrap()
            .write(PhysAddr::new(at), data)
            .unwrap();
    }

    pub fn read(&self, at: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        self.mem
            .read()
            .unwrap()
            .read(PhysAddr::new(at), &mut b)
            .unwrap();
        b
    }
}
