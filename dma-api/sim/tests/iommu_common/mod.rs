//! Shared rig for the IOMMU DMA backend suites: memory, an IOMMU with one
//! DMA domain, one device backend and the root-complex view.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, RwLock};

use dma_api::{Bdf, DmaAddr, PhysAddr};
use dma_iommu::dma::{DmaDomain, IommuDevice, IommuDmaBackend, SharedIommu};
use dma_iommu::pgtable::{AnyFormat, ArmLpae, ArmStage, Granule, VtdSs};
use dma_iommu::SharedMem;
use dma_iommu::{DomainId, DomainType, GroupId, Iommu, PhysMem, SimClock};
use dma_sim::fabric::{RcFault, RootComplexIommu};
use dma_sim::RcIommu;

pub const G: GroupId = GroupId(3);

pub fn bdf() -> Bdf {
    "0000:03:00.0".parse().unwrap()
}

pub fn vtd() -> AnyFormat {
    AnyFormat::VtdSs(VtdSs::new(4).unwrap())
}

pub fn arm_s1() -> AnyFormat {
    AnyFormat::ArmLpae(ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).unwrap())
}

pub struct Rig {
    pub mem: SharedMem,
    pub clock: SimClock,
    pub iommu: SharedIommu,
    pub d: DomainId,
    pub dom: Arc<DmaDomain>,
    pub dev: IommuDmaBackend,
    pub rc: RcIommu,
}

pub fn rig(ty: DomainType, fmt: AnyFormat, tweak: impl FnOnce(&mut IommuDevice)) -> Rig {
    let mem: SharedMem = Arc::new(RwLock::new(PhysMem::new()));
    let clock = SimClock::new();
    let mut io = Iommu::with_mem(Arc::clone(&mem), clock.clone());
    let d = io.alloc_domain(ty, fmt).unwrap();
    let mut devp = IommuDevice::pci(bdf(), G);
    tweak(&mut devp);
    io.attach_group(G, devp.trusted, d).unwrap();
    let iommu: SharedIommu = Arc::new(Mutex::new(io));
    let dom = DmaDomain::new(Arc::clone(&iommu), d, 2).unwrap();
    let dev = IommuDmaBackend::new(Arc::clone(&dom), devp).unwrap();
    let rc = RcIommu::new(Arc::clone(&iommu));
    rc.add_requester(bdf(), G);
    Rig {
        mem,
        clock,
        iommu,
        d,
        dom,
        dev,
        rc,
    }
}

impl Rig {
    /// Device access of one byte-range through the root complex, page by
    /// page: the physical address of every byte's page start.
    pub fn translate(&self, dma: DmaAddr, write: bool) -> Result<Option<PhysAddr>, RcFault> {
        self.rc.translate(bdf(), dma, 1, write)
    }

    /// Reads `len` bytes at `dma` as the device would (translation per page).
    pub fn dev_read(&self, dma: DmaAddr, len: u64) -> Result<Vec<u8>, RcFault> {
        let mut out = Vec::new();
        let mut a = dma.raw();
        let end = a + len;
        while a < end {
            let n = (0x1000 - (a & 0xfff)).min(end - a);
            let pa = self
                .rc
                .translate(bdf(), DmaAddr::new(a), n, false)?
                .unwrap();
            let mut buf = vec![0u8; n as usize];
            self.mem.read().unwrap().read(pa, &mut buf).unwrap();
            out.extend_from_slice(&buf);
            a += n;
        }
        Ok(out)
    }

    /// Writes `data` at `dma` as the device would.
    pub fn dev_write(&self, dma: DmaAddr, data: &[u8]) -> Result<(), RcFault> {
        let mut a = dma.raw();
        let mut done = 0usize;
        while done < data.len() {
            let n = (0x1000 - (a & 0xfff)).min((data.len() - done) as u64);
            let pa = self.rc.translate(bdf(), DmaAddr::new(a), n, true)?.unwrap();
            self.mem
                .write()
                .unwrap()
                .write(pa, &data[done..done + n as usize])
                .unwrap();
            a += n;
            done += n as usize;
        }
        Ok(())
    }

    pub fn cpu_write(&self, phys: PhysAddr, data: &[u8]) {
        self.mem.write().unwrap().write(phys, data).unwrap();
    }

    pub fn cpu_read(&self, phys: PhysAddr, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.mem.read().unwrap().read(phys, &mut b).unwrap();
        b
    }

    pub fn released(&self) -> Vec<(dma_iommu::Iova, u64)> {
        self.iommu.lock().unwrap().released_iovas(self.d).to_vec()
    }

    pub fn poll(&self) -> usize {
        self.iommu.lock().unwrap().poll().unwrap()
    }
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        // Never a zero byte: a write that never happened over zeroed memory
        // cannot pass for the pattern.
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) % 255 + 1)
        .collect()
}
