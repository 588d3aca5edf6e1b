//! The block layer over the NVMe-like driver on the reference server, with
//! the model controller moving the bytes on the fabric:
//!
//! * a request whose *second* segment is peer memory is refused on a queue
//!   without the P2P feature, before anything is mapped (Linux decides from
//!   the first segment and would let it through);
//! * on a P2P queue a request mixing RAM and peer segments maps each by its
//!   own route — through one IOVA reservation under the IOMMU, per segment
//!   without — and the controller's reads land byte-exact in every segment;
//! * PRP lists checked by the controller model for 1 page, 2 pages, 33
//!   pages and 1 MiB at odd offsets, written and read back through the
//!   namespace;
//! * a request over the limits is a typed error with nothing mapped; split
//!   at the limits, its pieces map, execute and read back.

#[path = "block_common/mod.rs"]
mod common;

use common::*;
use dma_api::{DmaError, PhysAddr, SegmentRoute};
use dma_consumers::block::{split, BlockError, BlockRequest, LimitViolation, MapPath, Op};
use dma_consumers::nvme::{Namespace, Nvme, NvmeController, NvmeError};
use dma_sim::assembly::IommuMode;
use dma_sim::Assembly;

fn nvme(a: &Assembly) -> Nvme {
    Nvme::probe(a.find("nvme0").unwrap().device.clone()).unwrap()
}

/// Submits, executes on `ctrl`, completes; returns the list pages used.
fn run(
    a: &Assembly,
    n: &Nvme,
    q: &dma_consumers::block::BlockQueue,
    ctrl: &mut NvmeController,
    req: &BlockRequest,
) -> usize {
    let io = n.submit_block(q, req).unwrap();
    let cmd = *io.command();
    assert_eq!(cmd.len, req.len().unwrap());
    ctrl.execute(&FabricWire(a), &cmd).unwrap();
    io.complete().unwrap();
    cmd.list_pages
}

#[test]
fn a_peer_second_segment_on_a_queue_without_p2p_is_refused_before_mapping() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let n = nvme(&a);
        let before = n.device().context().ram_in_use();
        let q = n.queue(false).unwrap();
        let low = a.layout.scratch.0.raw();
        // First segment RAM: Linux's first-segment test says "not P2P".
        let req = BlockRequest::new(
            Op::Read,
            0,
            &[
                (PhysAddr::new(low), 0x1000),
                (PhysAddr::new(RDMA_P2PMEM), 0x1000),
            ],
        );
        match n.submit_block(&q, &req).unwrap_err() {
            NvmeError::Block(BlockError::PeerOnNonP2pQueue {
                index: 1,
                phys,
                len: 0x1000,
                ..
            }) => assert_eq!(phys.raw(), RDMA_P2PMEM),
            e => panic!("{mode:?}: {e}"),
        }
        assert_quiet(&a, n.device(), before);
        // Nothing reached the fabric either.
        assert_eq!(a.fabric.counters().bytes_written, 0);
    }
}

#[test]
fn a_mixed_request_maps_each_segment_by_its_route_and_reads_land() {
    for (mode, path) in [
        (IommuMode::Strict, MapPath::Iova),
        (IommuMode::Off, MapPath::PerSegment),
    ] {
        let a = assembly(mode);
        let n = nvme(&a);
        let before = n.device().context().ram_in_use();
        let q = n.queue(true).unwrap();
        let low = a.layout.scratch.0.raw();
        let segs = [
            (PhysAddr::new(low + 0x200), 0xe00),
            (PhysAddr::new(RDMA_P2PMEM + 0x1000), 0x2000),
            (PhysAddr::new(HIGH), 0x3000),
            (PhysAddr::new(low + 0x10_000), 0x600),
        ];
        let req = BlockRequest::new(Op::Read, 8, &segs);
        let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 20));
        // Put the media there first (a write from RAM).
        let media = pattern(0x6400, 7);
        let src = PhysAddr::new(HIGH + 0x10_0000);
        a.fabric.cpu_write(src, &media).unwrap();
        run(
            &a,
            &n,
            &q,
            &mut ctrl,
            &BlockRequest::new(Op::Write, 8, &[(src, 0x6400)]),
        );

        let io = n.submit_block(&q, &req).unwrap();
        let m = io.mapped().unwrap();
        assert_eq!(m.path(), path, "{mode:?}");
        let routes: Vec<_> = m.segments().iter().map(|s| s.route).collect();
        let peer: Vec<_> = m
            .segments()
            .iter()
            .filter(|s| s.route == SegmentRoute::PeerBus)
            .map(|s| (s.dma.raw(), s.len))
            .collect();
        assert_eq!(
            peer,
            [(RDMA_P2PMEM + 0x1000, 0x2000)],
            "{mode:?}: bus address"
        );
        assert!(routes.contains(&SegmentRoute::Ram));
        // Peer memory only: no IOVA space needed, the table path.
        let only_peer = BlockRequest::new(Op::Read, 0, &[(PhysAddr::new(RDMA_P2PMEM), 0x1000)]);
        let m = q.map(&only_peer).unwrap();
        assert_eq!(m.path(), MapPath::PerSegment);
        assert_eq!(m.segments()[0].dma.raw(), RDMA_P2PMEM);
        m.unmap().unwrap();
        if path == MapPath::Iova {
            // RAM before and after the peer: two linked runs, the peer between.
            assert_eq!(
                routes,
                [SegmentRoute::Ram, SegmentRoute::PeerBus, SegmentRoute::Ram]
            );
        }
        let cmd = *io.command();
        a.fabric.reset_counters();
        ctrl.execute(&FabricWire(&a), &cmd).unwrap();
        io.complete().unwrap();
        let mut at = 0usize;
        for (p, l) in segs {
            assert_eq!(
                cpu_read(&a, p, l),
                media[at..at + l as usize],
                "{mode:?} {p}"
            );
            at += l as usize;
        }
        // The peer segment crossed the switch only: RAM got exactly the rest.
        assert_eq!(a.fabric.ram_bytes(), 0x6400 - 0x2000 + 8 * 6, "{mode:?}");
        assert_quiet(&a, n.device(), before);
    }
}

#[test]
fn prp_lists_pass_the_controller_for_1_2_33_pages_and_1_mib_at_odd_offsets() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let n = nvme(&a);
        let before = n.device().context().ram_in_use();
        let q = n.queue(true).unwrap();
        let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 22));
        for (k, (len, off, lists)) in [
            (0x1000u64, 0x204u64, 0usize),
            (0x2000, 0xa04, 1),
            (33 * 0x1000, 0x3fc, 1),
            (1 << 20, 0x804, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let src = PhysAddr::new(HIGH + 0x40_0000 * k as u64 + off);
            let dst = PhysAddr::new(HIGH + 0x40_0000 * k as u64 + 0x20_0000 + off + 4);
            let data = pattern(len, k as u8);
            a.fabric.cpu_write(src, &data).unwrap();
            let sector = 0x1000 * k as u64;
            let w = run(
                &a,
                &n,
                &q,
                &mut ctrl,
                &BlockRequest::new(Op::Write, sector, &[(src, len)]),
            );
            let r = run(
                &a,
                &n,
                &q,
                &mut ctrl,
                &BlockRequest::new(Op::Read, sector, &[(dst, len)]),
            );
            assert_eq!(cpu_read(&a, dst, len), data, "{mode:?} {len:#x}");
            // One page at an odd offset spans two: PRP2 is a data page;
            // more: a list (1 MiB + offset = 257 pages, 256 entries, one list page).
            assert_eq!((w, r), (lists, lists), "{mode:?} {len:#x}");
        }
        assert_quiet(&a, n.device(), before);
    }
}

#[test]
fn over_the_limits_is_typed_and_maps_nothing_then_split_pieces_work() {
    let a = assembly(IommuMode::Strict);
    let n = nvme(&a);
    let before = n.device().context().ram_in_use();
    let q = n.queue(true).unwrap();
    // 9 MiB: past NVME_MAX_KB_SZ.
    let src = PhysAddr::new(HIGH);
    let len = 9u64 << 20;
    let big = BlockRequest::new(Op::Write, 0, &[(src, len)]);
    match n.submit_block(&q, &big).unwrap_err() {
        NvmeError::Block(BlockError::OverLimits {
            index: Some(0),
            violation: LimitViolation::TooLarge { max_hw_bytes },
        }) => assert_eq!(max_hw_bytes, 8 << 20),
        e => panic!("{e}"),
    }
    // 129 page segments that are not contiguous: over NVME_MAX_SEGS.
    let many: Vec<_> = (0..129u64)
        .map(|i| (PhysAddr::new(HIGH + i * 0x2000), 0x1000))
        .collect();
    let req = BlockRequest::new(Op::Write, 0, &many);
    assert!(matches!(
        n.submit_block(&q, &req).unwrap_err(),
        NvmeError::Block(BlockError::OverLimits {
            index: Some(128),
            violation: LimitViolation::TooManySegments { max_segments: 128 }
        })
    ));
    // A gap against the virt boundary, and an unaligned segment.
    let gap = BlockRequest::new(
        Op::Write,
        0,
        &[(src, 0x800), (PhysAddr::new(HIGH + 0x4000), 0x1000)],
    );
    assert!(matches!(
        n.submit_block(&q, &gap).unwrap_err(),
        NvmeError::Block(BlockError::OverLimits {
            index: Some(1),
            violation: LimitViolation::VirtGap { .. }
        })
    ));
    let odd = BlockRequest::new(Op::Write, 0, &[(PhysAddr::new(HIGH + 2), 0x200)]);
    assert!(matches!(
        n.submit_block(&q, &odd).unwrap_err(),
        NvmeError::Block(BlockError::OverLimits {
            index: Some(0),
            violation: LimitViolation::Unaligned { dma_alignment: 3 }
        })
    ));
    // Memory the machine does not have: the DMA layer's typed error.
    let nowhere = BlockRequest::new(Op::Read, 0, &[(PhysAddr::new(0x80_0000_0000_0000), 0x1000)]);
    assert!(matches!(
        n.submit_block(&q, &nowhere).unwrap_err(),
        NvmeError::Dma(DmaError::UnknownMemory { .. })
    ));
    assert_quiet(&a, n.device(), before);
    assert_eq!(a.fabric.counters().bytes_read, 0);

    // Split: every piece fits, and the data goes through and back.
    let data = pattern(len, 3);
    a.fabric.cpu_write(src, &data).unwrap();
    let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 20));
    let pieces = split(&big, q.limits()).unwrap();
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[1].sector, (8 << 20) / 512);
    for p in &pieces {
        q.limits().check(p).unwrap();
        run(&a, &n, &q, &mut ctrl, p);
    }
    let dst = PhysAddr::new(HIGH + 0x100_0000);
    let back = BlockRequest::new(Op::Read, 0, &[(dst, len)]);
    for p in split(&back, q.limits()).unwrap() {
        run(&a, &n, &q, &mut ctrl, &p);
    }
    assert_eq!(cpu_read(&a, dst, len), data);
    // The gapped request splits at the gap into two valid pieces... of
    // whole sectors only: 0x800 then 0x1000.
    let g = split(&gap, q.limits()).unwrap();
    assert_eq!(
        g.iter().map(|r| r.len().unwrap()).collect::<Vec<_>>(),
        [0x800, 0x1000]
    );
    assert_eq!(g[1].sector, 4);
    assert_quiet(&a, n.device(), before);
}

#[test]
fn prp_lists_chain_for_4_mib_and_the_controller_follows_the_chain() {
    let a = assembly(IommuMode::Strict);
    let n = nvme(&a);
    let q = n.queue(true).unwrap();
    let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 20));
    let len = 4u64 << 20;
    let src = PhysAddr::new(HIGH + 0x104);
    let dst = PhysAddr::new(HIGH + 0x80_0000 + 0x104);
    let data = pattern(len, 12);
    a.fabric.cpu_write(src, &data).unwrap();
    // 1025 pages: 1024 entries after PRP1, 511 + 511 + 2 over three chained pages.
    assert_eq!(
        run(
            &a,
            &n,
            &q,
            &mut ctrl,
            &BlockRequest::new(Op::Write, 0, &[(src, len)])
        ),
        3
    );
    assert_eq!(
        run(
            &a,
            &n,
            &q,
            &mut ctrl,
            &BlockRequest::new(Op::Read, 0, &[(dst, len)])
        ),
        3
    );
    assert_eq!(cpu_read(&a, dst, len), data);
}

#[test]
fn sgls_carry_the_same_requests_checked_by_the_controller() {
    use dma_consumers::nvme::{sgl::SGL_TYPE_LAST_SEGMENT, Psdt};
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let n = nvme(&a);
        let before = n.device().context().ram_in_use();
        let q = n.queue(true).unwrap();
        let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 22));
        let low = a.layout.scratch.0.raw();
        let cases: Vec<Vec<(PhysAddr, u64)>> = vec![
            vec![(PhysAddr::new(HIGH + 0x204), 0x1000)],
            vec![(PhysAddr::new(HIGH + 0x40_0000 + 0x3fc), 33 * 0x1000)],
            vec![(PhysAddr::new(HIGH + 0x80_0000 + 0x804), 1 << 20)],
            vec![
                (PhysAddr::new(low + 0x200), 0xe00),
                (PhysAddr::new(RDMA_P2PMEM + 0x1000), 0x2000),
                (PhysAddr::new(HIGH + 0x100_0000), 0x1200),
            ],
        ];
        for (k, segs) in cases.iter().enumerate() {
            let len: u64 = segs.iter().map(|s| s.1).sum();
            let data = pattern(len, 40 + k as u8);
            let src = PhysAddr::new(HIGH + 0x200_0000);
            a.fabric.cpu_write(src, &data).unwrap();
            let sector = 0x1_0000 * k as u64;
            run(
                &a,
                &n,
                &q,
                &mut ctrl,
                &BlockRequest::new(Op::Write, sector, &[(src, len)]),
            );
            let req = BlockRequest::new(Op::Read, sector, segs);
            let io = n.submit_block_sgl(&q, &req).unwrap();
            let cmd = *io.command();
            assert_eq!(cmd.psdt, Psdt::Sgl);
            let dma_segs = io.mapped().unwrap().segments().len();
            let head = cmd.sgl.unwrap();
            if dma_segs == 1 {
                assert_eq!((head.kind, cmd.list_pages), (0, 0), "{mode:?} case {k}");
            } else {
                assert_eq!(head.kind, SGL_TYPE_LAST_SEGMENT);
                assert_eq!(head.len as usize, 16 * dma_segs);
            }
            ctrl.execute(&FabricWire(&a), &cmd).unwrap();
            io.complete().unwrap();
            let mut at = 0usize;
            for &(p, l) in segs {
                assert_eq!(
                    cpu_read(&a, p, l),
                    data[at..at + l as usize],
                    "{mode:?} case {k}"
                );
                at += l as usize;
            }
        }
        assert_quiet(&a, n.device(), before);
    }
}

#[test]
fn the_controller_refuses_a_broken_sgl() {
    use dma_consumers::nvme::{sgl::SglDescriptor, ControllerError, Psdt};
    let a = assembly(IommuMode::Off);
    let n = nvme(&a);
    let q = n.queue(true).unwrap();
    let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 10));
    let req = BlockRequest::new(Op::Read, 0, &[(PhysAddr::new(HIGH), 0x1000)]);
    let io = n.submit_block_sgl(&q, &req).unwrap();
    let mut cmd = *io.command();
    assert_eq!(cmd.psdt, Psdt::Sgl);
    cmd.len += 0x200;
    assert_eq!(
        ctrl.execute(&FabricWire(&a), &cmd).unwrap_err(),
        ControllerError::SglLength {
            described: 0x1000,
            len: 0x1200
        }
    );
    cmd.sgl = Some(SglDescriptor {
        addr: HIGH + 4,
        len: 0x10,
        kind: 3,
    });
    assert!(matches!(
        ctrl.execute(&FabricWire(&a), &cmd).unwrap_err(),
        ControllerError::SglListInvalid { .. }
    ));
    io.complete().unwrap();
}

#[test]
fn the_controller_fetches_commands_from_the_submission_queue() {
    let a = assembly(IommuMode::Strict);
    let n = nvme(&a);
    let before = n.device().context().ram_in_use();
    let q = n.queue(true).unwrap();
    let mut sq = n.create_sq(4).unwrap();
    let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 16));
    let len = 33 * 0x1000;
    let src = PhysAddr::new(HIGH + 0x3fc);
    let dst = PhysAddr::new(HIGH + 0x10_0000 + 0x804);
    let data = pattern(len, 21);
    a.fabric.cpu_write(src, &data).unwrap();
    // Six commands through a four-entry ring: the tail wraps.
    for k in 0..6u64 {
        let (op, at) = if k % 2 == 0 {
            (Op::Write, src)
        } else {
            (Op::Read, dst)
        };
        let io = n
            .submit_block(&q, &BlockRequest::new(op, 0, &[(at, len)]))
            .unwrap();
        let slot = sq.submit(io.command()).unwrap();
        assert_eq!(u64::from(slot), k % 4);
        let fetched = ctrl.fetch(&FabricWire(&a), sq.base(), slot).unwrap();
        assert_eq!(
            fetched,
            dma_consumers::nvme::Command {
                list_pages: 0,
                ..*io.command()
            }
        );
        ctrl.fetch_and_execute(&FabricWire(&a), sq.base(), slot)
            .unwrap();
        io.complete().unwrap();
    }
    assert_eq!(cpu_read(&a, dst, len), data);
    sq.delete().unwrap();
    assert_quiet(&a, n.device(), before);
}

#[test]
fn a_peer_refused_in_the_middle_of_the_iova_links_leaves_nothing_linked() {
    use dma_sim::machine::{Machine, REFERENCE_NAME, REFERENCE_TOML};
    // Host bridge off the P2P allowlist: nvme2 (other root port) cannot
    // reach rdma0's p2pmem.
    let src = REFERENCE_TOML.replace("device = 0x2020", "device = 0x1234");
    let a = build(
        Machine::from_toml_str(REFERENCE_NAME, &src).unwrap(),
        IommuMode::Strict,
    );
    let n = Nvme::probe(a.find("nvme2").unwrap().device.clone()).unwrap();
    let before = n.device().context().ram_in_use();
    let q = n.queue(true).unwrap();
    let who = n.device().bdf();
    let ram = (PhysAddr::new(HIGH), 0x2000);
    // The IOVA a three-page RAM request gets (the size of the failing one
    // below), then released.
    let probe = BlockRequest::new(Op::Write, 0, &[ram, (PhysAddr::new(HIGH + 0x4000), 0x1000)]);
    let m = q.map(&probe).unwrap();
    assert_eq!(m.path(), MapPath::Iova);
    let iova = m.segments()[0].dma;
    a.fabric.dma_read(who, iova, &mut [0; 8]).unwrap();
    m.unmap().unwrap();
    // RAM first (linked), then the unreachable peer: the dispatcher refuses
    // at the second link.
    let req = BlockRequest::new(Op::Write, 0, &[ram, (PhysAddr::new(RDMA_P2PMEM), 0x1000)]);
    match q.map(&req).unwrap_err() {
        BlockError::Dma(DmaError::P2pUnreachable {
            provider, client, ..
        }) => assert_eq!((provider, client), (a.find("rdma0").unwrap().bdf, who)),
        e => panic!("{e}"),
    }
    // The RAM piece's link is gone (the reservation reuses the same IOVA,
    // so a leaked link would be there)...
    a.fabric.take_faults();
    assert!(
        a.fabric.dma_read(who, iova, &mut [0; 8]).is_err(),
        "a link was left behind"
    );
    // ...and the reservation was given back: the next request gets it again.
    let m = q.map(&probe).unwrap();
    assert_eq!(m.segments()[0].dma, iova);
    m.unmap().unwrap();
    assert_quiet(&a, n.device(), before);
}

#[test]
fn the_controller_refuses_prps_that_break_the_rules() {
    use dma_consumers::nvme::ControllerError;
    // IOMMU off: the list page's DMA address is its physical address, so
    // the test can corrupt it as a buggy driver would have written it.
    let a = assembly(IommuMode::Off);
    let n = nvme(&a);
    let q = n.queue(true).unwrap();
    let mut ctrl = NvmeController::new(n.device().bdf(), Namespace::new(1 << 16));
    let len = 33 * 0x1000;
    let data = pattern(len, 30);
    let src = PhysAddr::new(HIGH + 0x100_0000);
    a.fabric.cpu_write(src, &data).unwrap();
    run(
        &a,
        &n,
        &q,
        &mut ctrl,
        &BlockRequest::new(Op::Write, 0, &[(src, len)]),
    );
    let dst = PhysAddr::new(HIGH + 0x204);
    let req = BlockRequest::new(Op::Read, 0, &[(dst, len)]);
    let io = n.submit_block(&q, &req).unwrap();
    let cmd = *io.command();
    assert_eq!(cmd.list_pages, 1);
    let wire = FabricWire(&a);
    // PRP1 off a dword.
    let bad = dma_consumers::nvme::Command {
        prp1: cmd.prp1 + 2,
        ..cmd
    };
    assert_eq!(
        ctrl.execute(&wire, &bad).unwrap_err(),
        ControllerError::Prp1Unaligned { prp1: cmd.prp1 + 2 }
    );
    // The second list entry not page aligned.
    let entry = PhysAddr::new(cmd.prp2 + 8);
    let good = cpu_read(&a, entry, 8);
    let mut off = good.clone();
    off[0] |= 0x10;
    a.fabric.cpu_write(entry, &off).unwrap();
    match ctrl.execute(&wire, &cmd).unwrap_err() {
        ControllerError::EntryUnaligned { page: 1, entry } => assert_eq!(entry & 0xfff, 0x10),
        e => panic!("{e}"),
    }
    // The rules are checked before any data moves.
    assert!(
        cpu_read(&a, dst, len).iter().all(|&b| b == 0),
        "nothing moved"
    );
    a.fabric.cpu_write(entry, &good).unwrap();
    ctrl.execute(&wire, &cmd).unwrap();
    io.complete().unwrap();
    assert_eq!(cpu_read(&a, dst, len), data);
}
