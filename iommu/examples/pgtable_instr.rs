//! One workload of the `pgtable` bench (the per-page and batched unmaps,
//! the batched map, over 1 GiB), or the drop of 4096 empty tables, run once
//! for counting instructions rather than timing them (an instruction count
//! does not depend on the load of a shared machine):
//!
//! ```text
//! cargo build --profile bench -p dma-iommu --example pgtable_instr
//! valgrind --tool=callgrind --toggle-collect='pgtable_instr::op_*' \
//!     target/release/examples/pgtable_instr vtdss 2m each
//! ```
//!
//! Arguments: `vtdss|amdv1|arm|x86`, `4k|2m`, `each|pages|map_pages|drop`.
//! Only the `op_*` function is counted; its total divided by the pages (512
//! of 2 MiB, 262 144 of 4 KiB) or the 4096 tables is the cost of one. `x86`
//! is the x86_64 crate's `MappedPageTable` over heap frames, unmapping page
//! by page as in the bench.
//!
//! `unsafe` is needed only for the peer's `PageTableFrameMapping` /
//! `FrameAllocator` traits and `map_to`; the library itself stays safe.
#![allow(unsafe_code)]

use std::hint::black_box;

use dma_iommu::pgtable::{
    AmdV1, ArmLpae, ArmStage, Granule, PageTable, Prot, PtFormat, SharedTableMem, VtdSs,
};
use dma_iommu::{Iova, PhysAddr};
use x86_64::structures::paging::mapper::{MappedPageTable, Mapper};
use x86_64::structures::paging::{
    Page, PageSize, PageTable as X86Table, PageTableFlags, PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr as XPhys, VirtAddr};

#[path = "../benches/common/x86_frames.rs"]
mod x86_frames;
use x86_frames::Frames;

const GIB: u64 = 1 << 30;
const IOVA_BASE: u64 = 0x40_0000_0000;
const PA_BASE: u64 = 0x1_0000_0000;
const RW: Prot = Prot::READ.union(Prot::WRITE);

fn mapped<F: PtFormat>(fmt: F, page: u64) -> PageTable<F> {
    let mut pt = PageTable::new(fmt).expect("table");
    let mut mapped = 0;
    pt.map_pages(
        Iova::new(IOVA_BASE),
        PhysAddr::new(PA_BASE),
        page,
        GIB / page,
        RW,
        &mut mapped,
    )
    .expect("map_pages");
    assert_eq!(mapped, GIB);
    pt
}

#[inline(never)]
fn op_unmap_each<F: PtFormat>(pt: &mut PageTable<F>, page: u64) -> u64 {
    let mut done = 0;
    let mut off = 0;
    while off < GIB {
        let (n, g) = pt.unmap(Iova::new(IOVA_BASE + off), page);
        done += n;
        pt.release(g);
        off += page;
    }
    done
}

#[inline(never)]
fn op_map_pages<F: PtFormat>(pt: &mut PageTable<F>, page: u64) -> u64 {
    let mut mapped = 0;
    pt.map_pages(
        Iova::new(IOVA_BASE),
        PhysAddr::new(PA_BASE),
        page,
        GIB / page,
        RW,
        &mut mapped,
    )
    .expect("map_pages");
    mapped
}

#[inline(never)]
fn op_unmap_pages<F: PtFormat>(pt: &mut PageTable<F>, page: u64) -> u64 {
    let (n, g) = pt.unmap_pages(Iova::new(IOVA_BASE), page, GIB / page);
    pt.release(g);
    n
}

fn ours<F: PtFormat + Copy>(fmt: F, page: u64, mode: &str) {
    match mode {
        "each" => {
            let mut pt = mapped(fmt, page);
            assert_eq!(op_unmap_each(&mut pt, page), GIB);
            assert_eq!(pt.leaf_count(), 0);
        }
        "map_pages" => {
            let mut pt = PageTable::new(fmt).expect("table");
            assert_eq!(op_map_pages(&mut pt, page), GIB);
        }
        "pages" => {
            let mut pt = mapped(fmt, page);
            assert_eq!(op_unmap_pages(&mut pt, page), GIB);
            assert_eq!(pt.leaf_count(), 0);
        }
        _ => {
            let ram = SharedTableMem::fresh();
            let empty: Vec<_> = (0..4096)
                .map(|_| PageTable::with_mem(fmt, ram.clone()).expect("table"))
                .collect();
            op_drop_empty(empty);
        }
    }
}

#[inline(never)]
fn op_drop_empty<F: PtFormat>(tables: Vec<PageTable<F>>) {
    drop(black_box(tables));
}

// ---------------------------------------------------------------- x86_64 peer

fn peer_map<S: PageSize>(frames: &Frames, root: &mut X86Table)
where
    for<'a> MappedPageTable<'a, Frames>: Mapper<S>,
{
    let mut alloc = frames.clone();
    // SAFETY: `root` is a valid level-4 table and every frame referenced
    // from it is mapped by `frames`.
    let mut m = unsafe { MappedPageTable::new(root, frames.clone()) };
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
    let mut off = 0;
    while off < GIB {
        let page = Page::<S>::containing_address(VirtAddr::new(IOVA_BASE + off));
        let frame = PhysFrame::<S>::containing_address(XPhys::new(PA_BASE + off));
        // SAFETY: the "memory" is never dereferenced; only table entries change.
        match unsafe { m.map_to(page, frame, flags, &mut alloc) } {
            Ok(flush) => flush.ignore(),
            Err(_) => panic!("peer map at {off:#x}"),
        }
        off += S::SIZE;
    }
}

#[inline(never)]
fn op_x86_unmap_each<S: PageSize>(frames: &Frames, root: &mut X86Table)
where
    for<'a> MappedPageTable<'a, Frames>: Mapper<S>,
{
    // SAFETY: as in `peer_map`.
    let mut m = unsafe { MappedPageTable::new(root, frames.clone()) };
    let mut off = 0;
    while off < GIB {
        let page = Page::<S>::containing_address(VirtAddr::new(IOVA_BASE + off));
        match m.unmap(page) {
            Ok((_, flush)) => flush.ignore(),
            Err(_) => panic!("peer unmap at {off:#x}"),
        }
        off += S::SIZE;
    }
}

fn peer<S: PageSize>()
where
    for<'a> MappedPageTable<'a, Frames>: Mapper<S>,
{
    let frames = Frames::default();
    let mut root = Box::new(X86Table::new());
    peer_map::<S>(&frames, &mut root);
    op_x86_unmap_each::<S>(&frames, &mut root);
}

/// One workload, chosen by the arguments: `vtdss|amdv1|arm|x86 4k|2m
/// each|pages|map_pages|drop`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let page = if arg(1, "2m") == "4k" { 4096 } else { 1 << 21 };
    let mode = arg(2, "each");
    match arg(0, "vtdss").as_str() {
        "vtdss" => ours(VtdSs::new(4).expect("vtdss"), page, &mode),
        "amdv1" => ours(AmdV1::new(4).expect("amdv1"), page, &mode),
        "arm" => ours(
            ArmLpae::new(ArmStage::S1, Granule::G4K, 48, 48).expect("arm lpae"),
            page,
            &mode,
        ),
        "x86" if page == 4096 => peer::<Size4KiB>(),
        "x86" => peer::<Size2MiB>(),
        other => panic!("unknown workload {other}"),
    }
}
