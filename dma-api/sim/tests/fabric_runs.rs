//! The fabric moves a transfer run by run (one route, one copy) and counts
//! it as its TLPs: every outcome here is checked against a per-TLP model
//! built from `route_of_len`, one call per TLP (MPS 256, never crossing a
//! page), so bytes, per-link counters, TLP totals and faults are exactly
//! what routing each TLP on its own gives.

use dma_api::memmap::{MemRange, MemoryMap, RangeKind};
use dma_api::sync::RwLock;
use dma_api::topology::{
    Bar, BarSpace, CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, PortType, Topology,
};
use dma_api::types::{DmaAddr, PhysAddr, PAGE_SIZE};
use dma_api::window::{AddrWindow, WindowMap};
use dma_api::{Bdf, Direction, DmaAttrs};
use dma_sim::fabric::{
    Dir, Fabric, FaultReason, Hop, LinkBytes, LinkId, RcFault, RcFaultReason, RootComplexIommu,
};
use dma_sim::machine::Machine;
use dma_sim::{Assembly, AssemblyOptions, IommuMode};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

fn b(s: &str) -> Bdf {
    s.parse().unwrap()
}

const MPS: u64 = 256;

/// The TLPs of `[addr, addr + len)`: at most MPS bytes, never crossing a page.
fn tlps(addr: u64, len: u64) -> Vec<(DmaAddr, u64)> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < len {
        let a = addr + off;
        let n = (len - off).min(MPS).min(PAGE_SIZE - a % PAGE_SIZE);
        v.push((DmaAddr::new(a), n));
        off += n;
    }
    v
}

/// Per-link bytes of writing `[addr, addr + len)` TLP by TLP, from the
/// routes alone (`route_of_len` counts nothing).
fn model_links(f: &Fabric, req: Bdf, addr: u64, len: u64) -> BTreeMap<LinkId, LinkBytes> {
    let mut m: BTreeMap<LinkId, LinkBytes> = BTreeMap::new();
    for (a, n) in tlps(addr, len) {
        for h in f.route_of_len(req, a, n, true).expect("routes") {
            if let Hop::Link { link, dir } = h {
                let e = m.entry(link).or_default();
                match dir {
                    Dir::Up => e.up += n,
                    Dir::Down => e.down += n,
                }
            }
        }
    }
    m
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) % 251) as u8)
        .collect()
}

#[test]
fn a_1mib_write_through_the_iommu_lands_and_counts_like_its_tlps() {
    let a = Assembly::build(
        Machine::reference().unwrap(),
        AssemblyOptions {
            iommu: IommuMode::Strict,
            ..Default::default()
        },
    )
    .unwrap();
    let nvme = a.find("nvme0").unwrap();
    // 1 MiB starting 0x234 into a page: 257 pages, every TLP split at page
    // edges, one IOTLB entry per page.
    let len = 1u64 << 20;
    let buf = PhysAddr::new(a.layout.scratch.0.raw() + 0x2_0234);
    let dma = nvme
        .device
        .map_phys(buf, len, Direction::Bidirectional, DmaAttrs::empty())
        .unwrap();
    assert_eq!(dma.page_offset(), 0x234);
    let data = pattern(len as usize, 7);
    let want = model_links(&a.fabric, nvme.bdf, dma.raw(), len);
    a.fabric.reset_counters();
    a.fabric.dma_write(nvme.bdf, dma, &data).unwrap();
    let mut got = vec![0u8; data.len()];
    a.fabric.cpu_read(buf, &mut got).unwrap();
    assert!(got == data, "every byte landed where the IOMMU maps it");
    // Nothing around the buffer was touched.
    let mut edge = [0xffu8; 0x234];
    a.fabric
        .cpu_read(PhysAddr::new(buf.raw() - 0x234), &mut edge)
        .unwrap();
    assert_eq!(edge, [0u8; 0x234]);
    let links: BTreeMap<_, _> = a.fabric.links().into_iter().collect();
    assert_eq!(links, want);
    assert_eq!(a.fabric.ram_bytes(), len);
    let c = a.fabric.counters();
    assert_eq!(c.tlps, tlps(dma.raw(), len).len() as u64);
    assert_eq!(c.tlps, 4096 + 1, "one TLP more: the page edges cut one");
    assert_eq!((c.bytes_written, c.bytes_read, c.faults), (len, 0, 0));

    // Read back through the device: the same bytes, counted as MRRS reads.
    let mut back = vec![0u8; data.len()];
    a.fabric.dma_read(nvme.bdf, dma, &mut back).unwrap();
    assert!(back == data);
    assert_eq!(a.fabric.counters().bytes_read, len);
    assert_eq!(a.fabric.ram_bytes(), 2 * len);
}

/// A BAR of 0x100 bytes that starts half-way through a RAM page (host
/// bridge without windows: bus == CPU addresses, so the switch decodes it
/// there). A run from the page's start routes to RAM as a whole; the TLP
/// at the BAR is claimed below and must land in the BAR.
fn bar_inside_a_page() -> Fabric {
    let mut h = HostBridgeRecord::new("hb", 0, 0);
    h.ident = Some((0x8086, 0x2030)); // allow-listed: peer traffic turns here
    h.dma_ranges = WindowMap::new([AddrWindow::identity(PhysAddr::new(0), 0x4000_0000)]).unwrap();
    let mut ep = DeviceRecord::new(b("01:00.0"), PortType::Endpoint, Some(b("00:01.0")));
    ep.bars = vec![Bar {
        index: 0,
        addr: PhysAddr::new(0x10_0800),
        size: 0x100,
        space: BarSpace::Mem,
        is_64: false,
        prefetchable: false,
    }];
    let t = Topology::build(
        CpuInfo {
            vendor: CpuVendor::Intel,
            family: 6,
            x86: true,
        },
        [h],
        [
            DeviceRecord::new(b("00:01.0"), PortType::RootPort, None),
            ep,
            DeviceRecord::new(b("00:02.0"), PortType::RootPort, None),
            DeviceRecord::new(b("02:00.0"), PortType::Endpoint, Some(b("00:02.0"))),
        ],
    )
    .unwrap();
    let mut m = MemoryMap::new();
    m.insert(MemRange {
        start: PhysAddr::new(0),
        size: 0x4000_0000,
        kind: RangeKind::Ram,
    })
    .unwrap();
    Fabric::new(
        Arc::new(RwLock::new(t)),
        m,
        Arc::new(std::sync::RwLock::new(dma_iommu::PhysMem::new())),
    )
}

#[test]
fn a_bar_starting_inside_a_run_gets_its_tlp() {
    let f = bar_inside_a_page();
    let req = b("02:00.0");
    let (addr, len) = (0x10_0000u64, 3 * PAGE_SIZE);
    let want = model_links(&f, req, addr, len);
    let data = pattern(len as usize, 11);
    f.dma_write(req, DmaAddr::new(addr), &data).unwrap();
    let links: BTreeMap<_, _> = f.links().into_iter().collect();
    assert_eq!(links, want);
    // The TLP at 0x800 went down to the BAR, the rest to RAM.
    assert_eq!(f.ram_bytes(), len - 0x100);
    assert_eq!(f.counters().tlps, 48);
    let mut bar = vec![0u8; 0x100];
    f.cpu_read(PhysAddr::new(0x10_0800), &mut bar).unwrap();
    assert_eq!(bar, data[0x800..0x900]);
    let mut ram = vec![0u8; 0x100];
    f.ram()
        .read()
        .unwrap()
        .read(PhysAddr::new(0x10_0800), &mut ram)
        .unwrap();
    assert_eq!(ram, vec![0u8; 0x100], "RAM under the BAR saw nothing");
    let mut rest = vec![0u8; (len - 0x900) as usize];
    f.cpu_read(PhysAddr::new(addr + 0x900), &mut rest).unwrap();
    assert!(rest == data[0x900..]);
}

/// Requester -> IOVA page -> physical page; records every translate.
#[derive(Default)]
struct PageIommu {
    map: HashMap<u64, u64>,
    calls: Mutex<Vec<(DmaAddr, u64)>>,
}

impl RootComplexIommu for PageIommu {
    fn translate(
        &self,
        requester: Bdf,
        addr: DmaAddr,
        len: u64,
        write: bool,
    ) -> Result<Option<PhysAddr>, RcFault> {
        self.calls.lock().unwrap().push((addr, len));
        match self.map.get(&(addr.raw() / PAGE_SIZE)) {
            Some(p) => Ok(Some(PhysAddr::new(p * PAGE_SIZE + addr.page_offset()))),
            None => Err(RcFault {
                requester,
                addr,
                write,
                reason: RcFaultReason::NotPresent,
            }),
        }
    }
}

#[test]
fn a_fault_in_the_middle_stops_at_its_tlp_with_everything_before_landed() {
    let nvme1 = b("04:00.0");
    let mut mmu = PageIommu::default();
    // IOVA pages 0x100..0x104: 0 and 1 contiguous, 2 unmapped, 3 mapped.
    mmu.map.insert(0x100, 0x3_0000);
    mmu.map.insert(0x101, 0x3_0001);
    mmu.map.insert(0x103, 0x3_0003);
    let mmu = Arc::new(mmu);
    let f = Fabric::from_machine(&Machine::reference().unwrap()).with_iommu(mmu.clone());
    let start = 0x10_0100u64;
    let fault_at = 0x10_2000u64;
    let len = 0x10_4000 - start;
    let data = pattern(len as usize, 5);
    let e = f.dma_write(nvme1, DmaAddr::new(start), &data).unwrap_err();
    assert_eq!(e.addr, DmaAddr::new(fault_at), "the first TLP of page 2");
    assert!(matches!(
        e.reason,
        FaultReason::IommuFault(RcFault {
            reason: RcFaultReason::NotPresent,
            ..
        })
    ));
    assert_eq!(f.faults(), vec![e.clone()]);
    let before = fault_at - start;
    let c = f.counters();
    assert_eq!(c.tlps, tlps(start, before).len() as u64);
    assert_eq!((c.bytes_written, c.faults), (before, 1));
    assert_eq!(f.ram_bytes(), before);
    let mut got = vec![0u8; before as usize];
    f.cpu_read(PhysAddr::new(0x3000_0100), &mut got).unwrap();
    assert!(got == data[..before as usize], "pages 0 and 1 landed");
    let mut page3 = vec![0xffu8; PAGE_SIZE as usize];
    f.cpu_read(PhysAddr::new(0x3000_3000), &mut page3).unwrap();
    assert_eq!(
        page3,
        vec![0u8; PAGE_SIZE as usize],
        "nothing after it moved"
    );
    // The IOMMU was asked once per page (the contiguous pair as one run),
    // never about page 3, never for a range crossing a page.
    let calls = f_calls(&mmu);
    assert!(calls.iter().all(|(a, l)| a.page_offset() + l <= PAGE_SIZE));
    assert!(calls.iter().all(|(a, _)| a.raw() < 0x10_3000));
    assert_eq!(
        calls
            .iter()
            .map(|c| c.0.raw() / PAGE_SIZE)
            .collect::<Vec<_>>(),
        vec![0x100, 0x101, 0x102, 0x102]
    );
}

fn f_calls(mmu: &PageIommu) -> Vec<(DmaAddr, u64)> {
    mmu.calls.lock().unwrap().clone()
}

#[test]
fn bar_starting_in_finds_only_bars_that_begin_inside_the_range() {
    let f = bar_inside_a_page();
    let t = f.topology().read();
    let ep = t.lookup(b("01:00.0")).unwrap();
    let at = |p: u64, len: u64| t.bar_starting_in(PhysAddr::new(p), len);
    assert_eq!(at(0x10_0000, PAGE_SIZE), Some((ep, 0)));
    assert_eq!(at(0x10_0800, 1), Some((ep, 0)));
    assert_eq!(at(0x10_0000, 0x800), None, "ends just before it");
    assert_eq!(at(0x10_0801, 0x800), None, "starts inside it, not before");
    assert_eq!(at(0x10_0800, 0), None);
    assert_eq!(at(u64::MAX - 1, 16), None, "clipped at the top, no wrap");
}
