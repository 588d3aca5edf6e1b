//! The NVMe-like driver on the reference server, with the IOMMU strict and
//! off, dma-debug on. A model controller (`nvme_controller`) fetches the
//! PRPs through the fabric as hardware does and moves the data:
//!
//! * a read lands byte-exact in every buffer (low RAM, RAM above 4 GiB and
//!   rdma0's registered p2pmem, reached by bus address across the switch),
//!   a write gives the controller exactly the buffers' bytes; PRP2 as data
//!   page, as PRP list, and as a chained list of two pages;
//! * a request with a gap in the middle is refused when it is mapped (the
//!   virt boundary the driver set), one whose bounce breaks the PRP rules
//!   (min-align mask cleared) is refused by the driver before submission,
//!   and with the driver's min-align mask the same bounced request works;
//! * afterwards nothing is mapped, the coherent pool is back where it was,
//!   and dma-debug reports nothing.

#[path = "nvme_controller/mod.rs"]
mod controller;

use dma_api::device::{ConstraintViolation, DmaConstraints};
use dma_api::{DmaError, DmaMask, PhysAddr, SegmentRoute};
use dma_consumers::nvme::{Command, Nvme, NvmeError, Op, Opcode, PrpRule, Request};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use dma_sim::Assembly;

/// RAM above 4 GiB.
const HIGH: u64 = 0x1_0020_0000;
/// rdma0's BAR 0, registered p2pmem (examples/machines/reference-server.toml).
const RDMA_P2PMEM: u64 = 0x40_0400_0000;

fn assembly(iommu: IommuMode) -> Assembly {
    let opts = AssemblyOptions {
        iommu,
        debug: true,
        ..AssemblyOptions::default()
    };
    Assembly::build(Machine::reference().unwrap(), opts).unwrap()
}

fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn cpu_read(a: &Assembly, phys: PhysAddr, len: u64) -> Vec<u8> {
    let mut b = vec![0; len as usize];
    a.fabric.cpu_read(phys, &mut b).unwrap();
    b
}

/// Runs `req` end to end: submit, the controller executes, complete.
/// Returns what the controller received (writes) and the command.
fn run(a: &Assembly, nvme: &Nvme, req: &Request, media: &[u8]) -> (Vec<u8>, Command) {
    let who = nvme.device().bdf();
    let io = nvme.submit(req).unwrap();
    let cmd = *io.command();
    let got = controller::execute(a, who, &cmd, media);
    io.complete().unwrap();
    (got, cmd)
}

/// Reads `media` into `bufs` and checks every buffer got its slice.
fn read_into(a: &Assembly, nvme: &Nvme, bufs: &[(PhysAddr, u64)], seed: u8) -> Command {
    let total = bufs.iter().map(|b| b.1).sum();
    let media = pattern(total, seed);
    let (_, cmd) = run(a, nvme, &Request::new(Op::Read, bufs), &media);
    assert_eq!((cmd.opcode, cmd.len), (Opcode::Read, total));
    let mut at = 0;
    for &(p, l) in bufs {
        assert_eq!(
            cpu_read(a, p, l),
            media[at as usize..(at + l) as usize],
            "buffer {p}"
        );
        at += l;
    }
    cmd
}

fn assert_quiet(a: &Assembly, nvme: &Nvme, ram_before: u64) {
    let dev = nvme.device();
    assert_eq!(dev.live_tables(), 0);
    assert_eq!(dev.live_singles(), 0);
    assert_eq!(dev.live_coherent(), 0);
    assert_eq!(dev.context().ram_in_use(), ram_before);
    assert!(dev.context().take_drop_errors().is_empty());
    let e = a.endpoint(dev.bdf()).unwrap();
    let debug = e.debug.as_ref().expect("assembled with dma-debug");
    assert!(debug.reports().is_empty(), "{:?}", debug.reports());
    assert_eq!(debug.active_count(), 0);
    assert_eq!(a.swiotlb.live_mappings(), 0);
}

fn probe(a: &Assembly) -> Nvme {
    let nvme = Nvme::probe(a.find("nvme0").unwrap().device.clone()).unwrap();
    assert_eq!(
        nvme.device().constraints(),
        DmaConstraints {
            dma_mask: DmaMask::BITS_64,
            coherent_mask: DmaMask::BITS_64,
            min_align_mask: 0xfff,
            max_seg_size: u32::MAX,
            seg_boundary_mask: 0xffff_ffff,
            virt_boundary_mask: 0xfff,
        }
    );
    nvme
}

fn reads_and_writes_land(mode: IommuMode) {
    let a = assembly(mode);
    let nvme = probe(&a);
    let before = nvme.device().context().ram_in_use();
    let low = a.layout.scratch.0.raw();
    // First buffer starts inside a page, the last ends inside one; a peer's
    // p2pmem in the middle.
    let bufs = [
        (PhysAddr::new(low + 0x200), 0xe00),
        (PhysAddr::new(HIGH), 0x3000),
        (PhysAddr::new(RDMA_P2PMEM + 0x1000), 0x2000),
        (PhysAddr::new(low + 0x10_000), 0x600),
    ];

    // The peer range is a bus-address segment across the switch.
    let io = nvme.submit(&Request::new(Op::Read, bufs)).unwrap();
    let peer: Vec<_> = dma_api::segments(io.table())
        .filter(|s| s.route == SegmentRoute::PeerBus)
        .map(|s| (s.dma.raw(), s.len))
        .collect();
    assert_eq!(peer, [(RDMA_P2PMEM + 0x1000, 0x2000)]);
    assert_eq!(io.command().list_pages, 1, "6 entries after PRP1: a list");
    drop(io); // an aborted request unmaps and frees on drop
    assert_eq!(nvme.device().live_tables(), 0);

    let cmd = read_into(&a, &nvme, &bufs, 1);
    assert_eq!(cmd.list_pages, 1);

    // A write: the controller receives exactly the buffers' bytes.
    let mut sent = Vec::new();
    for (i, &(p, l)) in bufs.iter().enumerate() {
        let d = pattern(l, 100 + i as u8);
        a.fabric.cpu_write(p, &d).unwrap();
        sent.extend_from_slice(&d);
    }
    let (got, cmd) = run(&a, &nvme, &Request::new(Op::Write, bufs), &[]);
    assert_eq!(cmd.opcode, Opcode::Write);
    assert_eq!(got, sent);

    // Within one page: PRP2 = 0. Two pages: PRP2 is the data page.
    let cmd = read_into(&a, &nvme, &[(PhysAddr::new(HIGH + 0x100), 0x200)], 2);
    assert_eq!((cmd.prp2, cmd.list_pages), (0, 0));
    let cmd = read_into(&a, &nvme, &[(PhysAddr::new(HIGH + 0x800), 0x1000)], 3);
    assert_eq!(cmd.list_pages, 0);
    assert_ne!(cmd.prp2, 0);
    // 600 pages: 599 entries after PRP1, two chained list pages.
    let cmd = read_into(
        &a,
        &nvme,
        &[(PhysAddr::new(HIGH + 0x100_0000), 600 * 0x1000)],
        4,
    );
    assert_eq!(cmd.list_pages, 2);

    assert_quiet(&a, &nvme, before);
}

#[test]
fn reads_and_writes_land_through_prps_with_the_iommu_strict() {
    reads_and_writes_land(IommuMode::Strict);
}

#[test]
fn reads_and_writes_land_through_prps_with_the_iommu_off() {
    reads_and_writes_land(IommuMode::Off);
}

#[test]
fn a_gap_in_the_middle_is_refused_when_the_request_is_mapped() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let nvme = probe(&a);
        let before = nvme.device().context().ram_in_use();
        let low = a.layout.scratch.0.raw();
        let gap = PhysAddr::new(low + 0x5200);
        let req = Request::new(Op::Write, [(PhysAddr::new(low), 0x1000), (gap, 0x800)]);
        match nvme.submit(&req).unwrap_err() {
            NvmeError::Dma(DmaError::ConstraintViolated {
                index: 1,
                len: 0x800,
                violation:
                    ConstraintViolation::VirtGapBefore {
                        virt_boundary_mask: 0xfff,
                    },
                ..
            }) => {}
            e => panic!("{mode:?}: {e}"),
        }
        assert_quiet(&a, &nvme, before);
    }
}

#[test]
fn a_bounce_that_breaks_the_prp_rules_is_refused_before_submission() {
    let a = assembly(IommuMode::Off);
    let nvme = probe(&a);
    let dev = nvme.device();
    let before = dev.context().ram_in_use();
    let (tlb, size) = a.layout.swiotlb;
    // A platform that limits the device to 32 bits: RAM above 4 GiB bounces.
    dev.set_dma_mask(DmaMask::BITS_32).unwrap();
    // The first buffer ends on a page boundary, the second is a whole page:
    // valid PRPs as long as the bounce keeps the offsets.
    let bufs = [
        (PhysAddr::new(HIGH + 0x800), 0x800),
        (PhysAddr::new(HIGH + 0x2000), 0x1000),
    ];
    let req = Request::new(Op::Read, bufs);

    // Without the min-align mask (NVMe before "nvme-pci: set
    // min_align_mask") swiotlb puts the first buffer at the start of a slot
    // page: it now ends inside a page.
    dev.set_min_align_mask(0).unwrap();
    match nvme.submit(&req).unwrap_err() {
        NvmeError::PrpInvalid {
            segment: 0,
            dma,
            len: 0x800,
            rule: PrpRule::EndsInsidePage,
        } => assert!((tlb.raw()..tlb.raw() + size).contains(&dma.raw())),
        e => panic!("{e}"),
    }
    assert_quiet(&a, &nvme, before);

    // With the driver's min-align mask the bounce keeps the offset.
    dev.set_min_align_mask(0xfff).unwrap();
    read_into(&a, &nvme, &bufs, 9);
    assert_quiet(&a, &nvme, before);
}

#[test]
fn bad_requests_are_typed_and_map_nothing() {
    let a = assembly(IommuMode::Strict);
    let nvme = probe(&a);
    let before = nvme.device().context().ram_in_use();
    let low = a.layout.scratch.0;
    assert_eq!(
        nvme.submit(&Request::new(Op::Read, [])).unwrap_err(),
        NvmeError::EmptyRequest
    );
    let odd = PhysAddr::new(low.raw() + 2);
    assert_eq!(
        nvme.submit(&Request::new(Op::Read, [(low, 0x1000), (odd, 0x10)]))
            .unwrap_err(),
        NvmeError::Unaligned {
            index: 1,
            phys: odd,
            len: 0x10
        }
    );
    assert!(matches!(
        nvme.submit(&Request::new(Op::Write, [(low, 9 << 20)])),
        Err(NvmeError::TooLarge { .. })
    ));
    assert!(matches!(
        nvme.submit(&Request::new(Op::Write, [(low, u64::MAX - 3), (low, 4)])),
        Err(NvmeError::TooLarge { len: None, .. })
    ));
    // Memory the machine does not have: the DMA layer's typed error.
    assert!(matches!(
        nvme.submit(&Request::new(
            Op::Read,
            [(PhysAddr::new(0x80_0000_0000_0000), 0x1000)]
        )),
        Err(NvmeError::Dma(DmaError::UnknownMemory { .. }))
    ));
    assert_quiet(&a, &nvme, before);
}
