//! The driver-facing DMA mapping API.
//!
//! A driver maps CPU memory for its device through a [`DmaDevice`]: single
//! ranges, scatter-gather tables, coherent allocations and the two-step IOVA
//! API, in a raw C-style layer (named after the Linux calls) and a typed
//! layer whose ownership phases are types. Every segment is dispatched by
//! what it is (RAM, a peer's BAR, stolen RAM, device-private memory): the P2P
//! oracle and the owner's policy decide peer access per direction, then a
//! [`DmaBackend`](port::DmaBackend) maps it — the direct backend here (with
//! swiotlb), the IOMMU backend in `dma-iommu`, or a decorator around either
//! (dma-debug, tracing, fault injection).
//!
//! Who depends on it: drivers (`dma-consumers`), the arch backends
//! (`dma-arch`, through [`arch_port::ArchDma`]), the IOMMU (`dma-iommu`) and
//! the simulator. It depends on `scatterlist` and the PCI model `dma-pci`
//! (re-exported where a driver needs it) and nothing else of the project:
//! no simulator, no serde, no toml. It is `no_std + alloc`; `std` only
//! switches the locks (see [`sync`]) and a per-thread cache of plan vectors.
//! CPU memory is reached through one port, [`CpuMemory`]: the simulator's
//! RAM implements it, and so does a kernel's own accessor.
//!
//! # Example: a driver maps a table, the device writes, the driver unmaps
//!
//! ```
//! # use dma_api::arch_port::{ArchDma, ArchInfo, CacheProgram, EdgePolicy, P2pSupport, SyncRules};
//! # use dma_api::direct::DirectConfig;
//! # use dma_api::memmap::{MemRange, MemoryMap, RangeKind};
//! # use dma_api::topology::{CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, PortType, Topology};
//! # use dma_api::mem::MemError;
//! # use dma_api::{Bdf, CpuMem, CpuMemory, DmaContext};
//! # use std::collections::BTreeMap;
//! # use std::sync::Mutex;
//! # static INFO: ArchInfo = ArchInfo { name: "doc", cache_line_size: 64, default_coherent: true,
//! #     always_coherent: true, p2p: P2pSupport::Full, mem_encrypt_bit: None,
//! #     sync: SyncRules::NONE, invalidate_edges: EdgePolicy::Plain, line_invalidate: false,
//! #     fence_before: false };
//! # struct Coherent;
//! # impl ArchDma for Coherent {
//! #     fn info(&self) -> &'static ArchInfo { &INFO }
//! #     fn lower(&self, _: &CacheProgram) -> Result<Vec<u8>, dma_api::DmaError> { Ok(Vec::new()) }
//! # }
//! # static ARCH: Coherent = Coherent;
//! # /// A kernel's view of RAM, here a byte map.
//! # #[derive(Default)]
//! # struct Ram(Mutex<BTreeMap<u64, u8>>);
//! # impl CpuMemory for Ram {
//! #     fn read(&self, at: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
//! #         let m = self.0.lock().unwrap();
//! #         for (i, b) in buf.iter_mut().enumerate() { *b = *m.get(&(at.raw() + i as u64)).unwrap_or(&0); }
//! #         Ok(())
//! #     }
//! #     fn write(&self, at: PhysAddr, data: &[u8]) -> Result<(), MemError> {
//! #         let mut m = self.0.lock().unwrap();
//! #         for (i, b) in data.iter().enumerate() { m.insert(at.raw() + i as u64, *b); }
//! #         Ok(())
//! #     }
//! # }
//! # let nic: Bdf = "01:00.0".parse().unwrap();
//! # let rp = DeviceRecord::new("00:01.0".parse().unwrap(), PortType::RootPort, None);
//! # let ep = DeviceRecord::new(nic, PortType::Endpoint, Some("00:01.0".parse().unwrap()));
//! # let cpu = CpuInfo { vendor: CpuVendor::Intel, family: 6, x86: true };
//! # let topo = Topology::build(cpu, [HostBridgeRecord::new("hb0", 0, 0)], [rp, ep]).unwrap();
//! # let mut memmap = MemoryMap::new();
//! # memmap.insert(MemRange { start: dma_api::PhysAddr::new(0), size: 1 << 32, kind: RangeKind::Ram }).unwrap();
//! # let ram = Arc::new(Ram::default());
//! # let port: CpuMem = ram.clone();
//! # let ctx = DmaContext::new(topo, memmap, &ARCH, port, (PhysAddr::new(0x100_0000), 0x10_0000)).unwrap();
//! # let backend = Arc::new(ctx.direct_backend(nic, None, DirectConfig::default()).unwrap());
//! use dma_api::prelude::*;
//! use std::sync::Arc;
//!
//! /// A NIC's receive path, written only against `dma_api`.
//! struct Rx {
//!     dev: Arc<DmaDevice>,
//!     /// Descriptor ring shared with the device: `(dma, len)` pairs.
//!     ring: CoherentAllocation,
//! }
//!
//! impl Rx {
//!     fn new(dev: Arc<DmaDevice>) -> Result<Self, DmaError> {
//!         let ring = dev.alloc_coherent_buf(4096)?; // coherent in every mode
//!         Ok(Self { dev, ring })
//!     }
//!
//!     /// Posts buffers: the memory map says what they are, the device maps
//!     /// them, the ring tells the device where they are.
//!     fn post(&self, bufs: &[(PhysAddr, u64)]) -> Result<MappedTable, DmaError> {
//!         let table = self.dev.table_from_ranges(bufs, 0x10_000)?;
//!         let rx = MappedTable::map(&self.dev, table, Direction::FromDevice, DmaAttrs::empty())
//!             .map_err(|(_, e)| e)?;
//!         for (i, s) in rx.segments().enumerate() {
//!             let at = i as u64 * 16;
//!             self.ring.write(at, &s.dma.raw().to_le_bytes())?;
//!             self.ring.write(at + 8, &s.len.to_le_bytes())?;
//!         }
//!         Ok(rx)
//!     }
//! }
//!
//! let rx = Rx::new(Arc::new(DmaDevice::new(ctx, nic, backend)?))?;
//! let bufs = [(PhysAddr::new(0x20_0000), 0x1000), (PhysAddr::new(0x40_0000), 0x800)];
//! let posted = rx.post(&bufs)?;
//!
//! // The device reads descriptor 0 from the ring and writes a packet there.
//! let mut desc = [0u8; 8];
//! ram.read(PhysAddr::new(rx.ring.dma_handle().raw()), &mut desc)?; // identity dma-ranges
//! ram.write(PhysAddr::new(u64::from_le_bytes(desc)), b"packet")?;
//!
//! posted.sync_range_for_cpu(0, 6)?;
//! posted.unmap()?;
//! let mut got = [0u8; 6];
//! ram.read(bufs[0].0, &mut got)?;
//! assert_eq!(&got, b"packet");
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod arch_port;
pub mod attrs;
pub mod debug;
pub mod device;
pub mod direct;
pub mod direction;
pub mod error;
pub mod fallback;
pub mod hmm;
pub mod mem;
pub mod middleware;
pub mod port;
pub mod share;
pub mod swiotlb;
pub mod sync;
pub mod types;
pub mod xdomain;

/// What a driver needs in scope: `use dma_api::prelude::*;`.
pub mod prelude {
    pub use crate::{
        segments, Bdf, ClassifiedTable, CoherentAllocation, CpuBuffer, DeviceMapping, Direction,
        DmaAddr, DmaAttrs, DmaDevice, DmaError, DmaMask, ErrorKind, MappedSgTable, MappedTable,
        PhysAddr, Segment, SegmentRoute,
    };
}

#[cfg(test)]
mod test_support;

/// The PCI model a driver reasons with, re-exported from `dma-pci`: the
/// memory map, the topology, the P2P oracle's verdicts, BDFs, masks and
/// translation windows.
pub use dma_pci::{bdf, mask, memmap, p2p, topology, window};

pub use arch_port::{
    ArchDevice, ArchDma, ArchInfo, CacheEvent, CacheProgram, EdgePolicy, LineOp, P2pSupport,
    PeerRoute, SyncOp, SyncPoint, SyncRules,
};
pub use attrs::DmaAttrs;
pub use device::{
    segments, Bidirectional, ClassifiedTable, CoherentAllocation, CpuBuffer, CpuView,
    DeviceMapping, DmaContext, DmaDevice, FromDevice, IovaLink, MappedSgTable, MappedTable,
    P2pMemRegistration, Segment, SegmentRoute, ToDevice,
};
pub use direction::Direction;
pub use dma_pci::{
    Access, AddrWindow, Bdf, BdfParseError, DmaMask, MaskError, TranslateError, WindowError,
    WindowMap,
};
pub use error::{DmaError, ErrorKind};
pub use fallback::{map_or_fallback, map_sgtable_or_fallback};
pub use mem::{CpuMem, CpuMemory};
pub use types::*;
