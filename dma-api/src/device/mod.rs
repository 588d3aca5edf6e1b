//! The per-device DMA interface: dispatcher, raw (C-style) layer, typed
//! layer, owned coherent allocations ([`CoherentAllocation`]) and the
//! device's DMA constraints ([`DmaConstraints`]: masks, segment limits,
//! virt boundary).
//!
//! A [`DmaDevice`] is built from a shared [`DmaContext`] (topology, memory
//! map, P2P route cache, provider policies, arch, simulated RAM), the
//! device's address and its [`DmaBackend`](crate::port::DmaBackend). Every
//! range or table entry is classified by its kind once and dispatched
//! (RAM / peer BAR / stolen RAM / device-private, see [`dispatch`]); the
//! backend then maps. [`DmaDevice::explain_map`] returns the [`Decision`]
//! trace `unidma map` prints.

mod classified;
mod coherent;
mod constraints;
mod context;
mod decision;
pub mod dispatch;
mod dma_set;
mod mapped_table;
mod p2pmem;
mod ram_alloc;
mod raw;
mod segments;
mod typed;
mod verify;
#[cfg(test)]
mod verify_tests;

pub use classified::ClassifiedTable;
pub use coherent::CoherentAllocation;
pub use constraints::{
    ConstraintViolation, DmaConstraints, EntryAddr, DEFAULT_MAX_SEG_SIZE, DEFAULT_SEG_BOUNDARY_MASK,
};
pub(crate) use context::mem_error as context_mem_error;
pub use context::DmaContext;
pub use decision::{ArchStep, Decision, RouteStep};
pub use mapped_table::MappedTable;
pub use p2pmem::P2pMemRegistration;
pub use ram_alloc::RamAllocator;
pub use raw::{DmaDevice, IovaLink};
pub use segments::{segments, Segment, SegmentRoute, Segments};
pub use typed::{
    Bidirectional, CpuBuffer, CpuView, DeviceMapping, DirMarker, FromDevice, MappedSgTable,
    ToDevice,
};

#[cfg(test)]
mod classified_tests;
#[cfg(test)]
mod constraints_tests;
#[cfg(test)]
mod tests;
