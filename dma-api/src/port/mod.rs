//! The ports of the mapping path: traits that backends and drivers implement.
//!
//! * [`DmaBackend`] — what the dispatcher hands a segment to once the route is
//!   decided (direct/arch, IOMMU, and decorators such as dma-debug).
//! * [`ProviderPolicy`] — the exporting driver's say over peer access to its
//!   memory (allow, refuse, redirect).
//! * [`CpuMemory`](crate::mem::CpuMemory) — how the layer reads and writes
//!   CPU physical memory (in [`crate::mem`]).
//!
//! The arch port ([`crate::arch_port::ArchDma`]) sits beside these.

pub mod backend;
pub mod per_entry;
pub mod policy;

pub use backend::{
    Bounce, BounceCause, CoherentRequest, ConstraintsRequest, DmaBackend, IovaOps, IovaState,
    MapRequest, SegPlan, SegTarget,
};
pub use per_entry::{
    map_sg_per_entry, map_sg_per_entry_within, map_sg_ram_per_entry, unmap_sg_per_entry,
    unmap_sg_ram_per_entry, SegmentRules,
};
pub use policy::{AllowAll, PolicyDecision, ProviderPolicy};
