//! Map/unmap 1 GiB in 4 KiB and in 2 MiB pages: our VT-d second-stage table
//! (in simulated RAM) side by side with the `x86_64` crate's
//! `MappedPageTable` over heap-backed frames. One `map`/`unmap` call per
//! page, as `dma_map_page`-style callers do; flush tokens are ignored on the
//! peer side and released immediately on ours.
//!
//! `unsafe` is needed only for the peer's `PageTableFrameMapping` /
//! `FrameAllocator` traits and `map_to`; the library itself stays safe.
#![allow(unsafe_code)]
#![allow(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dma_iommu::pgtable::{PageTable, Prot, VtdSs};
use dma_iommu::{Iova, PhysAddr};
use x86_64::structures::paging::mapper::{MappedPageTable, Mapper, PageTableFrameMapping};
use x86_64::structures::paging::{
    FrameAllocator, Page, PageTable as X86Table, PageTableFlags, PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr as XPhys, VirtAddr};

const GIB: u64 = 1 << 30;
const IOVA_BASE: u64 = 0x40_0000_0000;
const PA_BASE: u64 = 0x1_0000_0000;

// ---------------------------------------------------------------- ours

fn ours_new() -> PageTable<VtdSs> {
    PageTable::new(VtdSs::new(4).unwrap()).unwrap()
}

fn ours_map(pt: &mut PageTable<VtdSs>, page: u64) {
    let mut off = 0;
    while off < GIB {
        pt.map(
            Iova::new(IOVA_BASE + off),
            PhysAddr::new(PA_BASE + off),
            page,
            Prot::READ | Prot::WRITE,
        )
        .unwrap();
        off += page;
    }
}

fn ours_unmap(pt: &mut PageTable<VtdSs>, page: u64) {
    let mut off = 0;
    while off < GIB {
        let (n, g) = pt.unmap(Iova::new(IOVA_BASE + off), page);
        debug_assert_eq!(n, page);
        pt.release(g);
        off += page;
    }
}

// ---------------------------------------------------------------- x86_64 peer

/// Heap frames: frame `i` lives at physical `FRAME_BASE + i * 4096`.
const FRAME_BASE: u64 = 0x1000_0000;

#[derive(Clone, Default)]
struct Frames(Rc<RefCell<Vec<Box<X86Table>>>>);

// SAFETY: every frame handed out by `allocate_frame` is backed by a distinct,
// live, 4 KiB-aligned boxed `PageTable` in `Frames`, which outlives the
// mapper; boxes never move when the Vec grows, so the pointers stay valid.
unsafe impl PageTableFrameMapping for Frames {
    fn frame_to_pointer(&self, frame: PhysFrame) -> *mut X86Table {
        let idx = ((frame.start_address().as_u64() - FRAME_BASE) / 4096) as usize;
        let mut v = self.0.borrow_mut();
        &mut *v[idx] as *mut X86Table
    }
}

// SAFETY: returns frames that are not in use: each call appends a new one.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let mut v = self.0.borrow_mut();
        v.push(Box::new(X86Table::new()));
        let addr = FRAME_BASE + (v.len() as u64 - 1) * 4096;
        PhysFrame::from_start_address(XPhys::new(addr)).ok()
    }
}

struct Peer {
    frames: Frames,
    root: Box<X86Table>,
}

impl Peer {
    fn new() -> Self {
        Self {
            frames: Frames::default(),
            root: Box::new(X86Table::new()),
        }
    }

    fn mapper(&mut self) -> MappedPageTable<'_, Frames> {
        // SAFETY: `root` is a valid level-4 table and every frame referenced
        // from it is mapped by `frames` (see the trait impl above).
        unsafe { MappedPageTable::new(&mut self.root, self.frames.clone()) }
    }

    fn map_4k(&mut self) {
        let mut alloc = self.frames.clone();
        let mut m = self.mapper();
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            let frame = PhysFrame::<Size4KiB>::containing_address(XPhys::new(PA_BASE + off));
            // SAFETY: the "memory" is never dereferenced; only table entries change.
            unsafe { m.map_to(page, frame, flags, &mut alloc) }
                .unwrap()
                .ignore();
            off += 4096;
        }
    }

    fn unmap_4k(&mut self) {
        let mut m = self.mapper();
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            m.unmap(page).unwrap().1.ignore();
            off += 4096;
        }
    }

    fn map_2m(&mut self) {
        let mut alloc = self.frames.clone();
        let mut m = self.mapper();
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            let frame = PhysFrame::<Size2MiB>::containing_address(XPhys::new(PA_BASE + off));
            // SAFETY: as above.
            unsafe { m.map_to(page, frame, flags, &mut alloc) }
                .unwrap()
                .ignore();
            off += 1 << 21;
        }
    }

    fn unmap_2m(&mut self) {
        let mut m = self.mapper();
        let mut off = 0;
        while off < GIB {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(IOVA_BASE + off));
            m.unmap(page).unwrap().1.ignore();
            off += 1 << 21;
        }
    }
}

// ---------------------------------------------------------------- benches

fn bench(c: &mut Criterion) {
    for (label, page) in [("4K", 4096u64), ("2M", 1u64 << 21)] {
        let pages = GIB / page;
        let mut g = c.benchmark_group(format!("map_1GiB_{label}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(pages));
        g.bench_function("unidma_vtdss", |b| {
            b.iter_batched(
                ours_new,
                |mut pt| {
                    ours_map(&mut pt, page);
                    pt
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("x86_64_mapped", |b| {
            b.iter_batched(
                Peer::new,
                |mut p| {
                    if page == 4096 {
                        p.map_4k()
                    } else {
                        p.map_2m()
                    }
                    p
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("unmap_1GiB_{label}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(pages));
        g.bench_function("unidma_vtdss", |b| {
            b.iter_batched(
                || {
                    let mut pt = ours_new();
                    ours_map(&mut pt, page);
                    pt
                },
                |mut pt| {
                    ours_unmap(&mut pt, page);
                    pt
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("x86_64_mapped", |b| {
            b.iter_batched(
                || {
                    let mut p = Peer::new();
                    if page == 4096 {
                        p.map_4k()
                    } else {
                        p.map_2m()
                    }
                    p
                },
                |mut p| {
                    if page == 4096 {
                        p.unmap_4k()
                    } else {
                        p.unmap_2m()
                    }
                    p
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

/// 64k random 4K-page lookups in a fully mapped 1 GiB (4K pages): the
/// writer's `iova_to_phys`, the hardware walker, and the peer's
/// `translate_addr`.
fn bench_translate(c: &mut Criterion) {
    let mut pt = ours_new();
    ours_map(&mut pt, 4096);
    let mut peer = Peer::new();
    peer.map_4k();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let probes: Vec<u64> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IOVA_BASE + (x % GIB)
        })
        .collect();
    let mut g = c.benchmark_group("translate_64k_random");
    g.sample_size(10);
    g.throughput(Throughput::Elements(probes.len() as u64));
    g.bench_function("unidma_iova_to_phys", |b| {
        b.iter(|| {
            probes
                .iter()
                .map(|&p| pt.iova_to_phys(Iova::new(p)).map_or(0, |a| a.raw()))
                .fold(0u64, u64::wrapping_add)
        })
    });
    let regs = pt.hw_regs();
    g.bench_function("unidma_hw_walker", |b| {
        let m = pt.mem().read().unwrap();
        b.iter(|| {
            probes
                .iter()
                .map(|&p| {
                    dma_iommu::walker::walk(&regs, &m, Iova::new(p)).map_or(0, |w| w.pa.raw())
                })
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.bench_function("x86_64_translate_addr", |b| {
        let m = peer.mapper();
        b.iter(|| {
            use x86_64::structures::paging::mapper::Translate;
            probes
                .iter()
                .map(|&p| m.translate_addr(VirtAddr::new(p)).map_or(0, |a| a.as_u64()))
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.finish();
    eprintln!(
        "table frames for 1 GiB in 4K pages: unidma {} (x {} B), x86_64 {} (+ root)",
        pt.table_frames(),
        4096,
        peer.frames.0.borrow().len()
    );
}

/// One `map` call for the whole 1 GiB with a 4K-aligned (not 2M-aligned)
/// physical base, so the engine itself walks out 262144 4K leaves.
fn bench_range_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_1GiB_4K_one_call");
    g.sample_size(10);
    g.throughput(Throughput::Elements(GIB / 4096));
    g.bench_function("unidma_vtdss", |b| {
        b.iter_batched(
            ours_new,
            |mut pt| {
                pt.map(
                    Iova::new(IOVA_BASE),
                    PhysAddr::new(PA_BASE + 4096),
                    GIB,
                    Prot::READ | Prot::WRITE,
                )
                .unwrap();
                pt
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench, bench_translate, bench_range_map);
criterion_main!(benches);
