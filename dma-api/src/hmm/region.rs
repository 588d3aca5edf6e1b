//! Reserving a free physical range for device-private pages (Linux:
//! kernel/resource.c `devm_request_free_mem_region`, then
//! mm/memremap.c `memremap_pages` with `MEMORY_DEVICE_PRIVATE`): the range
//! is recorded in the memory map as device-private memory of its owner, so
//! every later kind lookup (the dispatcher's, the registry's) sees it.

use super::error::HmmError;
use crate::bdf::Bdf;
use crate::device::DmaContext;
use crate::memmap::{MemRange, RangeKind};
use crate::types::{PhysAddr, PAGE_SIZE};
use alloc::string::ToString;

/// Where free ranges are aligned (Linux aligns to the memory section,
/// `PA_SECTION_SIZE`, 128 MiB on x86-64).
const SECTION: u64 = 128 << 20;

/// Reserves `len` bytes (whole pages) of physical address space above
/// everything the memory map describes and records it as device-private
/// memory of `owner`. Returns its start.
pub fn request_free_region(ctx: &DmaContext, owner: Bdf, len: u64) -> Result<PhysAddr, HmmError> {
    if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
        return Err(HmmError::Unaligned {
            phys: PhysAddr::new(0),
            len,
        });
    }
    let provider = ctx.provider_of(owner).map_err(|e| HmmError::NoRegion {
        len,
        why: e.to_string(),
    })?;
    let mut map = ctx.memmap.write();
    let top = map
        .ranges()
        .iter()
        .filter_map(|r| r.start.raw().checked_add(r.size))
        .max()
        .unwrap_or(0);
    let start = top
        .checked_add(SECTION - 1)
        .map(|t| t & !(SECTION - 1))
        .filter(|s| s.checked_add(len).is_some())
        .ok_or(HmmError::NoRegion {
            len,
            why: "the physical address space is exhausted".into(),
        })?;
    let start = PhysAddr::new(start);
    map.insert(MemRange {
        start,
        size: len,
        kind: RangeKind::DevicePrivate { owner: provider },
    })
    .map_err(|e| HmmError::NoRegion {
        len,
        why: e.to_string(),
    })?;
    Ok(start)
}

/// Gives back a range of [`request_free_region`] (Linux
/// `devm_release_mem_region`): the memory map no longer describes it. The
/// range must be exactly one device-private range of `owner` starting at
/// `start` ([`HmmError::NotDevicePrivate`] otherwise). The caller must have
/// unregistered nothing in it: a registry that still holds the range keeps
/// its registration but every kind lookup now misses.
pub fn release_region(ctx: &DmaContext, owner: Bdf, start: PhysAddr) -> Result<(), HmmError> {
    let provider = ctx
        .provider_of(owner)
        .map_err(|_| HmmError::NotDevicePrivate {
            owner,
            phys: start,
            len: 0,
        })?;
    let target = RangeKind::DevicePrivate { owner: provider };
    let mut map = ctx.memmap.write();
    // Which of the owner's device-private ranges (in address order) it is:
    // `remove_where` sees kinds only, and visits the ranges in order.
    let nth = map
        .ranges()
        .iter()
        .filter(|r| r.kind == target)
        .position(|r| r.start == start)
        .ok_or(HmmError::NotDevicePrivate {
            owner,
            phys: start,
            len: 0,
        })?;
    let mut seen = 0usize;
    map.remove_where(|k| {
        if *k != target {
            return false;
        }
        seen += 1;
        seen == nth + 1
    });
    Ok(())
}
