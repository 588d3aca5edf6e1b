//! The x86_64 crate's `MappedPageTable` over heap frames: the peer the
//! `pgtable` bench times against and the `pgtable_instr` example counts
//! instructions of (one copy of its `unsafe` trait impls for both).

use std::cell::RefCell;
use std::rc::Rc;

use x86_64::structures::paging::mapper::PageTableFrameMapping;
use x86_64::structures::paging::{FrameAllocator, PageTable as X86Table, PhysFrame, Size4KiB};
use x86_64::PhysAddr as XPhys;

/// Heap frames: frame `i` lives at physical `FRAME_BASE + i * 4096`.
pub const FRAME_BASE: u64 = 0x1000_0000;

/// The frames of one peer table, shared by its mapper and its allocator.
#[derive(Clone, Default)]
pub struct Frames(pub Rc<RefCell<Vec<Box<X86Table>>>>);

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
