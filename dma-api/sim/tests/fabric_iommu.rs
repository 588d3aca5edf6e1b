//! The fabric with an IOMMU at the root complex: a fake `RootComplexIommu`
//! (a page map per requester) shows translation, not-present and permission
//! faults, and that switches route before the IOMMU ever sees a TLP.

use dma_api::p2p::Access;
use dma_api::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use dma_api::Bdf;
use dma_sim::fabric::{Fabric, FaultReason, Hop, Target, Translation};
use dma_sim::fabric::{RcFault, RcFaultReason, RootComplexIommu};
use dma_sim::machine::Machine;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

#[derive(Clone, Copy)]
struct Pte {
    phys_page: u64,
    read: bool,
    write: bool,
}

/// Requester -> IOVA page -> PTE; passthrough requesters are untranslated.
#[derive(Default)]
struct FakeIommu {
    map: HashMap<(Bdf, u64), Pte>,
    passthrough: HashSet<Bdf>,
    calls: Mutex<Vec<(Bdf, DmaAddr, u64, bool)>>,
}

impl FakeIommu {
    fn map(&mut self, dev: Bdf, iova: u64, phys: u64, read: bool, write: bool) {
        self.map.insert(
            (dev, iova / PAGE_SIZE),
            Pte {
                phys_page: phys / PAGE_SIZE,
                read,
                write,
            },
        );
    }
}

impl RootComplexIommu for FakeIommu {
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        self.calls
            .lock()
            .unwrap()
            .push((requester, addr, len, write));
        if self.passthrough.contains(&requester) {
            return Ok(None);
        }
        let fault = |reason| RcFault {
            requester,
            addr,
            write,
            reason,
        };
        let pte = self
            .map
            .get(&(requester, addr.raw() / PAGE_SIZE))
            .ok_or(fault(RcFaultReason::NotPresent))?;
        if (write && !pte.write) || (!write && !pte.read) {
            return Err(fault(RcFaultReason::Permission));
        }
        Ok(Some(PhysAddr::new(
            pte.phys_page * PAGE_SIZE + addr.page_offset(),
        )))
    }
}

fn fabric(mmu: FakeIommu) -> (Fabric, Arc<FakeIommu>) {
    let mmu = Arc::new(mmu);
    let f = Fabric::from_machine(&Machine::reference().unwrap()).with_iommu(mmu.clone());
    (f, mmu)
}

#[test]
fn iova_pages_scatter_to_their_physical_pages() {
    let nvme1 = b("04:00.0");
    let mut m = FakeIommu::default();
    // Three contiguous IOVA pages onto scattered physical pages.
    m.map(nvme1, 0x10_0000, 0x3000_0000, true, true);
    m.map(nvme1, 0x10_1000, 0x1000_5000, true, true);
    m.map(nvme1, 0x10_2000, 0x2000_0000, true, true);
    let (f, mmu) = fabric(m);
    let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i / 7) as u8).collect();
    f.dma_write(nvme1, DmaAddr::new(0x10_0000), &data).unwrap();
    for (k, phys) in [(0usize, 0x3000_0000u64), (1, 0x1000_5000), (2, 0x2000_0000)] {
        let mut got = vec![0u8; 4096];
        f.cpu_read(PhysAddr::new(phys), &mut got).unwrap();
        assert_eq!(got, data[k * 4096..(k + 1) * 4096], "page {k}");
    }
    let mut back = vec![0u8; data.len()];
    f.dma_read(nvme1, DmaAddr::new(0x10_0000), &mut back)
        .unwrap();
    assert_eq!(back, data);
    // The IOMMU is asked per page, not per TLP (48 writes of 256 B, 24
    // reads of 512 B): each run asks its page and the next one, which ends
    // the run (not contiguous) and starts the next; every request within one
    // page. The TLPs are still counted one by one.
    {
        let calls = mmu.calls.lock().unwrap();
        let pages: Vec<u64> = calls.iter().map(|c| c.1.raw() / PAGE_SIZE).collect();
        let one_way = [0x100, 0x101, 0x101, 0x102, 0x102];
        assert_eq!(pages, [one_way, one_way].concat());
        assert!(calls
            .iter()
            .all(|(r, a, l, _)| *r == nvme1 && a.page_offset() + l <= PAGE_SIZE));
    }
    assert_eq!(f.counters().tlps, 48 + 24);
    assert_eq!(f.ram_bytes(), 2 * data.len() as u64);

    let hb = f.topology().read().host_bridge_ids().next().unwrap().0;
    let hops = f.route_of(nvme1, DmaAddr::new(0x10_1008), true).unwrap();
    assert!(hops.contains(&Hop::Translate {
        at: hb,
        by: Translation::Iommu,
        from: DmaAddr::new(0x10_1008),
        to: PhysAddr::new(0x1000_5008)
    }));
}

#[test]
fn not_present_and_permission_faults_are_recorded_with_requester_and_address() {
    let nvme1 = b("04:00.0");
    let mut m = FakeIommu::default();
    m.map(nvme1, 0x20_0000, 0x3000_0000, true, false); // read-only
    let (f, _) = fabric(m);
    f.cpu_write(PhysAddr::new(0x3000_0000), &[0x5a; 16])
        .unwrap();

    // Not mapped.
    let e = f
        .dma_write(nvme1, DmaAddr::new(0x40_5000), &[1; 8])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::IommuFault(RcFault {
            requester: nvme1,
            addr: DmaAddr::new(0x40_5000),
            write: true,
            reason: RcFaultReason::NotPresent
        })
    );
    assert_eq!(e.requester, nvme1);
    assert_eq!(e.addr, DmaAddr::new(0x40_5000));

    // Read-only page: the read works, the write faults and changes nothing.
    let mut r = [0u8; 16];
    f.dma_read(nvme1, DmaAddr::new(0x20_0000), &mut r).unwrap();
    assert_eq!(r, [0x5a; 16]);
    let e = f
        .dma_write(nvme1, DmaAddr::new(0x20_0004), &[1; 4])
        .unwrap_err();
    assert_eq!(
        e.reason,
        FaultReason::IommuFault(RcFault {
            requester: nvme1,
            addr: DmaAddr::new(0x20_0004),
            write: true,
            reason: RcFaultReason::Permission
        })
    );
    f.cpu_read(PhysAddr::new(0x3000_0000), &mut r).unwrap();
    assert_eq!(r, [0x5a; 16]);

    // Another requester has no mapping at that IOVA.
    let e = f
        .dma_read(b("07:00.0"), DmaAddr::new(0x20_0000), &mut r)
        .unwrap_err();
    assert!(matches!(
        e.reason,
        FaultReason::IommuFault(RcFault {
            reason: RcFaultReason::NotPresent,
            ..
        })
    ));
    let log = f.faults();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter()
            .map(|x| (x.requester, x.addr, x.write))
            .collect::<Vec<_>>(),
        vec![
            (nvme1, DmaAddr::new(0x40_5000), true),
            (nvme1, DmaAddr::new(0x20_0004), true),
            (b("07:00.0"), DmaAddr::new(0x20_0000), false),
        ]
    );
    // Only the successful read moved bytes: 16 down from RAM.
    assert_eq!(f.ram_bytes(), 16);
    assert_eq!(f.counters().tlps, 1);
}

#[test]
fn iova_mapped_to_a_peer_bar_goes_through_the_host_bridge() {
    let gpu = b("06:00.0");
    let mut m = FakeIommu::default();
    m.map(gpu, 0x8000_0000, 0x40_0000_0000, true, true);
    let (f, _) = fabric(m);
    f.dma_write(gpu, DmaAddr::new(0x8000_0010), &[3; 32])
        .unwrap();
    let mut bar = [0u8; 32];
    f.cpu_read(PhysAddr::new(0x40_0000_0010), &mut bar).unwrap();
    assert_eq!(bar, [3; 32]);
    assert_eq!(f.root_complex_bytes(), 64);
    assert_eq!(f.ram_bytes(), 0);
    // The IOMMU allows the read; the host bridge still refuses P2P reads.
    let e = f
        .dma_read(gpu, DmaAddr::new(0x8000_0010), &mut bar)
        .unwrap_err();
    assert!(matches!(
        e.reason,
        FaultReason::HostBridgeP2pRefused {
            access: Access::Read,
            ..
        }
    ));
}

#[test]
fn switch_routes_an_iova_that_hits_a_sibling_bar_before_the_iommu_sees_it() {
    // nvme1 is mapped at IOVA == nvme0's BAR bus address (what reserving PCI
    // windows in the IOVA space prevents): the switch claims the TLP.
    let nvme1 = b("04:00.0");
    let mut m = FakeIommu::default();
    m.map(nvme1, 0x40_0000_0000, 0x3000_0000, true, true);
    let (f, mmu) = fabric(m);
    f.dma_write(nvme1, DmaAddr::new(0x40_0000_0000), &[1; 64])
        .unwrap();
    assert!(mmu.calls.lock().unwrap().is_empty());
    let mut ram = [0u8; 64];
    f.cpu_read(PhysAddr::new(0x3000_0000), &mut ram).unwrap();
    assert_eq!(ram, [0; 64], "RAM untouched");
    f.cpu_read(PhysAddr::new(0x40_0000_0000), &mut ram).unwrap();
    assert_eq!(ram, [1; 64], "landed in the sibling's BAR");
    let hops = f
        .route_of(nvme1, DmaAddr::new(0x40_0000_0000), true)
        .unwrap();
    assert!(matches!(
        hops.last(),
        Some(Hop::Deliver(Target::Bar { bar: 2, .. }))
    ));
}

#[test]
fn passthrough_requesters_use_bus_addresses() {
    let nvme2 = b("07:00.0");
    let mut m = FakeIommu::default();
    m.passthrough.insert(nvme2);
    let (f, _) = fabric(m);
    f.dma_write(nvme2, DmaAddr::new(0x1234_5000), &[8; 8])
        .unwrap();
    let mut r = [0u8; 8];
    f.cpu_read(PhysAddr::new(0x1234_5000), &mut r).unwrap();
    assert_eq!(r, [8; 8]);
    // Not passthrough: the same address faults.
    let e = f
        .dma_write(b("04:00.0"), DmaAddr::new(0x1234_5000), &[8; 8])
        .unwrap_err();
    assert!(matches!(e.reason, FaultReason::IommuFault(_)));
}
