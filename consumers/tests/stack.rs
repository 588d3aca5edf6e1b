//! Stacked devices over one member that reaches a peer's p2pmem (nvme0,
//! behind the NIC's switch) and one that does not (nvme2, behind the other
//! root port of a host bridge that is not on the P2P allowlist):
//!
//! * the stack's P2P capability is per peer and per member;
//! * a striped request that touches only the reachable member goes P2P
//!   and the controller's read lands in the peer's BAR;
//! * one that spans both is refused before anything is mapped (the caller
//!   re-issues it from system memory), and from RAM it splits, each part
//!   mapped and executed by its own member, byte-exact back;
//! * a mirror writes peer memory only if every member reaches it and reads
//!   it from a member that does.

#[path = "block_common/mod.rs"]
mod common;

use common::*;
use dma_api::{Direction, PhysAddr, SegmentRoute};
use dma_consumers::block::{BlockQueue, BlockRequest, Op};
use dma_consumers::nvme::{Namespace, Nvme, NvmeController};
use dma_consumers::stack::{Mirrored, StackError, Striped};
use dma_sim::assembly::IommuMode;
use dma_sim::machine::{Machine, REFERENCE_NAME, REFERENCE_TOML};
use dma_sim::Assembly;

fn machine() -> Machine {
    let src = REFERENCE_TOML.replace("device = 0x2020", "device = 0x1234");
    Machine::from_toml_str(REFERENCE_NAME, &src).unwrap()
}

struct Member {
    nvme: Nvme,
    q: BlockQueue,
    ctrl: NvmeController,
}

fn members(a: &Assembly) -> Vec<Member> {
    ["nvme0", "nvme2"]
        .iter()
        .map(|n| {
            let nvme = Nvme::probe(a.find(n).unwrap().device.clone()).unwrap();
            let q = nvme.queue(true).unwrap();
            let ctrl = NvmeController::new(nvme.device().bdf(), Namespace::new(1 << 16));
            Member { nvme, q, ctrl }
        })
        .collect()
}

fn run_parts(a: &Assembly, m: &mut [Member], s: &Striped, req: &BlockRequest) -> Vec<usize> {
    let mut used = Vec::new();
    for p in s.plan(req).unwrap() {
        let mm = &mut m[p.member];
        let io = mm.nvme.submit_block(&mm.q, &p.request).unwrap();
        mm.ctrl.execute(&FabricWire(a), io.command()).unwrap();
        io.complete().unwrap();
        used.push(p.member);
    }
    used
}

#[test]
fn a_stripe_goes_p2p_where_its_members_reach_the_peer_and_refuses_where_not() {
    let a = build(machine(), IommuMode::Strict);
    let mut m = members(&a);
    let before = a.ctx.ram_in_use();
    let s = Striped::new(m.iter().map(|x| x.q.clone()).collect(), 8).unwrap();
    let peer = PhysAddr::new(RDMA_P2PMEM);
    for dir in [Direction::FromDevice, Direction::ToDevice] {
        let cap = s.p2p_capability(peer, 0x2000, dir);
        assert_eq!(cap.members, [true, false], "{dir:?}");
        assert!(cap.any() && !cap.all());
    }
    // RAM data over both members: split per chunk, each part its own member.
    let src = PhysAddr::new(HIGH);
    let data = pattern(0x4000, 1);
    a.fabric.cpu_write(src, &data).unwrap();
    let w = BlockRequest::new(Op::Write, 0, &[(src, 0x4000)]);
    assert_eq!(run_parts(&a, &mut m, &s, &w), [0, 1, 0, 1]);
    let mapped = s.map(&w).unwrap();
    for (p, mr) in &mapped {
        assert_eq!(mr.device().bdf(), m[p.member].nvme.device().bdf());
    }
    drop(mapped);
    assert_eq!(m[0].ctrl.namespace().stored_blocks(), 16);
    assert_eq!(m[1].ctrl.namespace().stored_blocks(), 16);

    // Sector 0..8 is member 0 only: read straight into the peer's BAR.
    a.fabric.reset_counters();
    let r = BlockRequest::new(Op::Read, 0, &[(peer, 0x1000)]);
    let parts = s.plan(&r).unwrap();
    assert_eq!(parts.len(), 1);
    let io = m[0].nvme.submit_block(&m[0].q, &parts[0].request).unwrap();
    assert_eq!(
        io.mapped().unwrap().segments()[0].route,
        SegmentRoute::PeerBus
    );
    m[0].ctrl.execute(&FabricWire(&a), io.command()).unwrap();
    io.complete().unwrap();
    assert_eq!(cpu_read(&a, peer, 0x1000), data[..0x1000]);
    assert_eq!(
        (a.fabric.ram_bytes(), a.fabric.root_complex_bytes()),
        (0, 0)
    );

    // Sectors 0..16 span both: refused, nothing mapped on either member.
    let span = BlockRequest::new(Op::Read, 0, &[(peer, 0x2000)]);
    assert_eq!(
        s.map(&span).unwrap_err(),
        StackError::MemberCannotReach {
            member: 1,
            phys: PhysAddr::new(RDMA_P2PMEM + 0x1000),
            len: 0x1000
        }
    );
    for x in &m {
        assert_quiet(&a, x.nvme.device(), before);
    }
    // Re-issued from system memory it works, byte-exact.
    let dst = PhysAddr::new(HIGH + 0x10_0000);
    run_parts(
        &a,
        &mut m,
        &s,
        &BlockRequest::new(Op::Read, 0, &[(dst, 0x4000)]),
    );
    assert_eq!(cpu_read(&a, dst, 0x4000), data);
}

#[test]
fn a_mirror_writes_peer_memory_only_if_every_member_reaches_it() {
    let a = build(machine(), IommuMode::Off);
    let mut m = members(&a);
    let mir = Mirrored::new(m.iter().map(|x| x.q.clone()).collect()).unwrap();
    let peer = PhysAddr::new(RDMA_P2PMEM + 0x4000);
    let data = pattern(0x1000, 2);
    a.fabric.cpu_write(peer, &data).unwrap();
    let w = BlockRequest::new(Op::Write, 0, &[(peer, 0x1000)]);
    assert_eq!(
        mir.plan(&w).unwrap_err(),
        StackError::MemberCannotReach {
            member: 1,
            phys: peer,
            len: 0x1000
        }
    );
    // From RAM both members get it; a read into the peer goes to member 0.
    let src = PhysAddr::new(HIGH);
    a.fabric.cpu_write(src, &data).unwrap();
    for p in mir
        .plan(&BlockRequest::new(Op::Write, 0, &[(src, 0x1000)]))
        .unwrap()
    {
        let mm = &mut m[p.member];
        let io = mm.nvme.submit_block(&mm.q, &p.request).unwrap();
        mm.ctrl.execute(&FabricWire(&a), io.command()).unwrap();
        io.complete().unwrap();
    }
    let dst = PhysAddr::new(RDMA_P2PMEM + 0x8000);
    let parts = mir
        .plan(&BlockRequest::new(Op::Read, 0, &[(dst, 0x1000)]))
        .unwrap();
    assert_eq!(parts.iter().map(|p| p.member).collect::<Vec<_>>(), [0]);
    let io = m[0].nvme.submit_block(&m[0].q, &parts[0].request).unwrap();
    m[0].ctrl.execute(&FabricWire(&a), io.command()).unwrap();
    io.complete().unwrap();
    assert_eq!(cpu_read(&a, dst, 0x1000), data);
    assert!(matches!(
        Mirrored::new(vec![m[0].q.clone()]),
        Err(StackError::BadGeometry { .. })
    ));
}
