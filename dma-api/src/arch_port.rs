//! The arch port: what the DMA layer asks of a CPU architecture.
//!
//! Linux spreads this over `phys_to_dma` (include/linux/dma-direct.h,
//! `translate_phys_to_dma` over `dev->dma_range_map` plus `__sme_set`),
//! `pci_bus_address` (host-bridge window offsets), `dev_is_dma_coherent`,
//! `arch_sync_dma_for_{device,cpu}` + `arch_sync_dma_flush` (7.x: per-range
//! maintenance, one completion barrier per batch) and
//! `dma_pci_p2pdma_supported`. Here it is one trait, [`ArchDma`], whose
//! arch-specific *facts* (cache-line size, default coherency, P2P support,
//! memory-encryption bit, which maintenance per direction) are data in one
//! [`ArchInfo`] per arch, and whose only required code is [`ArchDma::lower`]:
//! turning a [`CacheProgram`] into real machine code.
//!
//! Inputs are plain data ([`ArchDevice`], host-bridge [`WindowMap`]s, a
//! [`PeerRoute`]) so that a backend can be tested without a machine model.

use crate::attrs::DmaAttrs;
use crate::direction::Direction;
use crate::error::DmaError;
use crate::mask::DmaMask;
use crate::types::{BusAddr, PhysAddr, SegKind};
use crate::window::{AddrWindow, WindowError, WindowMap};
use alloc::vec::Vec;
use core::fmt;

/// What an arch backend needs to know about one device: plain data.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ArchDevice {
    /// How RAM appears to the device (`dma-ranges` / ACPI `_DMA`; Linux
    /// `dev->dma_range_map`). Outside every window RAM is not reachable.
    pub dma_ranges: WindowMap,
    /// The device snoops CPU caches (DT `dma-coherent`, ACPI `_CCA`).
    pub coherent: bool,
    /// The device's DMA mask (`min_not_zero(mask, bus_dma_limit)` already applied).
    pub mask: DmaMask,
    /// The platform runs with memory encryption (AMD SME/SEV style): RAM is
    /// private by default and the arch's encryption bit is set in bus
    /// addresses unless the mapping is shared ([`DmaAttrs::CC_SHARED`]).
    pub mem_encrypt: bool,
}

impl ArchDevice {
    /// A device with the given dma-ranges, coherency and mask; no memory encryption.
    pub fn new(dma_ranges: WindowMap, coherent: bool, mask: DmaMask) -> Self {
        Self {
            dma_ranges,
            coherent,
            mask,
            mem_encrypt: false,
        }
    }

    /// Builds the dma-ranges from raw windows; overlapping, empty or wrapping
    /// windows are rejected with the offending windows.
    pub fn from_windows(
        windows: impl IntoIterator<Item = AddrWindow>,
        coherent: bool,
        mask: DmaMask,
    ) -> Result<Self, WindowError> {
        Ok(Self::new(WindowMap::new(windows)?, coherent, mask))
    }

    /// The same device with memory encryption on or off.
    pub fn with_mem_encrypt(mut self, on: bool) -> Self {
        self.mem_encrypt = on;
        self
    }

    /// Linux `dma_capable` for the mask: every byte of `[bus, bus + len)` must
    /// be addressable, else a `Fallback` [`DmaError::MaskUnreachable`].
    pub fn check_reach(&self, bus: BusAddr, len: u64) -> Result<(), DmaError> {
        if self.mask.covers(bus, len) {
            Ok(())
        } else {
            Err(DmaError::MaskUnreachable {
                bus,
                len,
                mask: self.mask,
            })
        }
    }
}

/// Which peer-to-peer routes an architecture can carry at all (the P2P
/// oracle decides the route; the arch may still veto it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum P2pSupport {
    /// Whatever the oracle chose.
    Full,
    /// Only between devices below one host bridge (e.g. one POWER PHB).
    SameHostBridge {
        /// Why peers under different host bridges cannot talk.
        why: &'static str,
    },
    /// No peer-to-peer DMA at all.
    None {
        /// Why.
        why: &'static str,
    },
}

/// The route the P2P oracle chose (Linux `enum pci_p2pdma_map_type`,
/// drivers/pci/p2pdma.c, minus the "not supported" verdict, which never
/// reaches the arch).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PeerRoute {
    /// Through a switch below the host bridge (`PCI_P2PDMA_MAP_BUS_ADDR`).
    BusAddr,
    /// Through the root complex (`PCI_P2PDMA_MAP_THRU_HOST_BRIDGE`).
    HostBridge,
}

/// When a sync happens (ownership hand-over, include/linux/dma-mapping.h).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SyncPoint {
    /// `dma_sync_*_for_device` / map: the CPU hands the buffer to the device.
    ForDevice,
    /// `dma_sync_*_for_cpu` / unmap: the device hands the buffer back.
    ForCpu,
}

/// One kind of CPU cache maintenance.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SyncOp {
    /// Write dirty lines back to the point of coherency (sync for device).
    Clean,
    /// Discard lines so the CPU re-reads what the device wrote (sync for CPU).
    Invalidate,
    /// Both (bidirectional buffers).
    CleanInvalidate,
}

impl fmt::Display for SyncOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncOp::Clean => "clean",
            SyncOp::Invalidate => "invalidate",
            SyncOp::CleanInvalidate => "clean+invalidate",
        })
    }
}

/// Which maintenance an arch does at each sync point, per direction
/// (indexed by [`Direction::as_raw`]: bidirectional, to-device, from-device).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SyncRules {
    /// At [`SyncPoint::ForDevice`].
    pub for_device: [Option<SyncOp>; 3],
    /// At [`SyncPoint::ForCpu`].
    pub for_cpu: [Option<SyncOp>; 3],
}

impl SyncRules {
    /// No maintenance ever (always-coherent arches).
    pub const NONE: Self = Self {
        for_device: [None; 3],
        for_cpu: [None; 3],
    };

    /// The common non-coherent pattern (arch/arm64/mm/dma-mapping.c,
    /// arch/riscv/mm/dma-noncoherent.c): clean for the device in every
    /// direction, invalidate for the CPU unless the device only read.
    pub const CLEAN_THEN_INVALIDATE: Self = Self {
        for_device: [Some(SyncOp::Clean); 3],
        for_cpu: [Some(SyncOp::Invalidate), None, Some(SyncOp::Invalidate)],
    };

    /// The maintenance for `point` and `dir`, `None` if nothing is needed.
    pub fn op(&self, point: SyncPoint, dir: Direction) -> Option<SyncOp> {
        let row = match point {
            SyncPoint::ForDevice => &self.for_device,
            SyncPoint::ForCpu => &self.for_cpu,
        };
        row.get(dir.as_raw() as usize).copied().flatten()
    }
}

/// How an invalidation treats cache lines only partly inside the range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EdgePolicy {
    /// Invalidate every touched line, partial or not (Linux riscv
    /// `ALT_CMO_OP(INVAL, ...)`, which relies on `ARCH_DMA_MINALIGN` buffers).
    Plain,
    /// Clean+invalidate the partial first/last lines so CPU data sharing them
    /// is not lost; invalidate the rest (arch/arm64/mm/cache.S
    /// `dcache_inval_poc`).
    CleanInvalidateEdges,
    /// If either end is unaligned, clean+invalidate the whole range
    /// (arch/powerpc/mm/dma-noncoherent.c `__dma_sync`, `DMA_FROM_DEVICE`).
    CleanInvalidateAllIfUnaligned,
}

/// The facts about one architecture. Every backend's behaviour that is not
/// machine code derives from this table row.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ArchInfo {
    /// The name used by machine files and `by_name` (`x86_64`, `arm64`, ...).
    pub name: &'static str,
    /// Cache-line (maintenance granule) size in bytes; a power of two.
    pub cache_line_size: u64,
    /// Coherency of a device that says nothing (`ARCH_DMA_DEFAULT_COHERENT`).
    pub default_coherent: bool,
    /// DMA is coherent whatever the device says; no cache maintenance exists.
    pub always_coherent: bool,
    /// Which P2P routes the arch can carry.
    pub p2p: P2pSupport,
    /// Bit set in bus addresses of private (encrypted) memory when the platform
    /// runs encrypted (x86 SME/SEV C-bit, `__sme_set`); `None` if the arch has
    /// no such bit (its confidential guests bounce through shared memory).
    pub mem_encrypt_bit: Option<u8>,
    /// Maintenance per sync point and direction.
    pub sync: SyncRules,
    /// Partial-line handling for [`SyncOp::Invalidate`].
    pub invalidate_edges: EdgePolicy,
    /// The ISA has a per-line invalidate without write-back usable here; if
    /// false, invalidation is lowered as clean+invalidate (x86 has no such
    /// instruction, POWER Book III-S has no `dcbi`).
    pub line_invalidate: bool,
    /// A full barrier is needed *before* the line operations too (x86
    /// `clflush_cache_range`: `mb()` before and after).
    pub fence_before: bool,
}

/// One cache-maintenance instruction's worth of work.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LineOp {
    /// What to do.
    pub op: SyncOp,
    /// The line-aligned address it applies to.
    pub line: PhysAddr,
}

/// What lowered code does, in order; decoders reproduce this from bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CacheEvent {
    /// A full / completion barrier (x86 `MFENCE`, arm64 `DSB SY`, riscv
    /// `FENCE`, POWER `sync`).
    Barrier,
    /// One line operation.
    Line(LineOp),
}

/// The most lines one program may hold (64 MiB at 64-byte lines); larger
/// syncs are split by the caller. Bounds memory and code size.
pub const MAX_PROGRAM_LINES: u64 = 1 << 20;

/// Cache maintenance for a batch of ranges: line operations over line-aligned
/// addresses, then one completion barrier (Linux 7.x: per-range
/// `arch_sync_dma_for_*`, one `arch_sync_dma_flush` per batch).
///
/// An empty program lowers to no code at all, not even a barrier.
/// Addresses are the CPU addresses the instructions take; the model has an
/// identity linear map (a kernel with a linear-map offset adds it to the range
/// before building the program).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CacheProgram {
    info: &'static ArchInfo,
    ops: Vec<LineOp>,
}

impl CacheProgram {
    /// An empty batch for `info`'s arch.
    pub fn new(info: &'static ArchInfo) -> Self {
        Self {
            info,
            ops: Vec::new(),
        }
    }

    /// A program for one range; see [`CacheProgram::push_range`].
    pub fn build(
        info: &'static ArchInfo,
        start: PhysAddr,
        len: u64,
        kind: SegKind,
        op: SyncOp,
    ) -> Result<Self, DmaError> {
        let mut p = Self::new(info);
        p.push_range(start, len, kind, op)?;
        Ok(p)
    }

    /// Adds maintenance for `[start, start + len)`: exactly the lines the
    /// range touches (first rounded down, last rounded up), with the arch's
    /// partial-line policy for invalidation. A zero length adds nothing; an
    /// always-coherent arch adds nothing; MMIO / peer and device-private
    /// memory is refused ([`DmaError::NotCacheMaintainable`]), a wrapping range
    /// is [`DmaError::PhysOverflow`], a range over [`MAX_PROGRAM_LINES`] in
    /// total is [`DmaError::OutOfMemory`]. On error the program is unchanged.
    pub fn push_range(
        &mut self,
        start: PhysAddr,
        len: u64,
        kind: SegKind,
        op: SyncOp,
    ) -> Result<(), DmaError> {
        if matches!(kind, SegKind::PeerBar(_) | SegKind::DevicePrivate(_)) {
            return Err(DmaError::NotCacheMaintainable {
                phys: start,
                len,
                kind,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let last = start
            .last_of(len)
            .ok_or(DmaError::PhysOverflow { phys: start, len })?;
        if self.info.always_coherent {
            return Ok(());
        }
        let size = self.info.cache_line_size;
        let (Some(first_line), Some(last_line)) = (start.align_down(size), last.align_down(size))
        else {
            return Err(DmaError::ArchLowering {
                arch: self.info.name,
                why: alloc::format!("cache line size {size} is not a power of two"),
            });
        };
        // Both are multiples of `size` and first <= last: no wrap possible.
        let count = (last_line.raw() - first_line.raw()) / size + 1;
        let total = count.saturating_add(self.ops.len() as u64);
        if total > MAX_PROGRAM_LINES {
            return Err(DmaError::OutOfMemory {
                bytes: total.saturating_mul(core::mem::size_of::<LineOp>() as u64),
            });
        }
        let head_partial = !start.is_aligned(size);
        let tail_partial = last.raw() % size != size - 1;
        let per_line = |line: PhysAddr| -> SyncOp {
            let op = match (op, self.info.invalidate_edges) {
                (SyncOp::Invalidate, EdgePolicy::CleanInvalidateEdges)
                    if (line == first_line && head_partial)
                        || (line == last_line && tail_partial) =>
                {
                    SyncOp::CleanInvalidate
                }
                (SyncOp::Invalidate, EdgePolicy::CleanInvalidateAllIfUnaligned)
                    if head_partial || tail_partial =>
                {
                    SyncOp::CleanInvalidate
                }
                (op, _) => op,
            };
            if op == SyncOp::Invalidate && !self.info.line_invalidate {
                SyncOp::CleanInvalidate
            } else {
                op
            }
        };
        self.ops.reserve(count as usize);
        for i in 0..count {
            let line = PhysAddr::new(first_line.raw() + i * size);
            self.ops.push(LineOp {
                op: per_line(line),
                line,
            });
        }
        Ok(())
    }

    /// The arch this program was built for.
    pub fn info(&self) -> &'static ArchInfo {
        self.info
    }

    /// The line operations, in order.
    pub fn ops(&self) -> &[LineOp] {
        &self.ops
    }

    /// The cache-line size the program was built with.
    pub fn line_size(&self) -> u64 {
        self.info.cache_line_size
    }

    /// True if the program does nothing (and lowers to no code).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// What lowered code must do, in order: an optional leading barrier (if
    /// the arch needs one), the line operations, one completion barrier.
    /// Empty for an empty program.
    pub fn events(&self) -> Vec<CacheEvent> {
        if self.ops.is_empty() {
            return Vec::new();
        }
        let mut ev = Vec::with_capacity(self.ops.len() + 2);
        if self.info.fence_before {
            ev.push(CacheEvent::Barrier);
        }
        ev.extend(self.ops.iter().copied().map(CacheEvent::Line));
        ev.push(CacheEvent::Barrier);
        ev
    }
}

/// A CPU architecture's DMA backend.
///
/// Only [`ArchDma::info`] and [`ArchDma::lower`] are required; everything else
/// derives from the [`ArchInfo`] row and has the Linux semantics named on each
/// method. A backend overrides a default only for behaviour the table cannot
/// express (and says why).
pub trait ArchDma: Send + Sync {
    /// The arch's table row.
    fn info(&self) -> &'static ArchInfo;

    /// Lowers `program` to machine code for this arch: address materialisation,
    /// one instruction per line op, the barriers of [`CacheProgram::events`].
    /// An empty program lowers to an empty vector.
    fn lower(&self, program: &CacheProgram) -> Result<Vec<u8>, DmaError>;

    /// The arch name (`x86_64`, `arm64`, `powerpc64`, `riscv64`, `s390x`).
    fn name(&self) -> &'static str {
        self.info().name
    }

    /// The cache-maintenance granule in bytes.
    fn cache_line_size(&self) -> u64 {
        self.info().cache_line_size
    }

    /// RAM → bus address for `dev` (include/linux/dma-direct.h `phys_to_dma`):
    /// through the device's dma-ranges (`translate_phys_to_dma`; the whole
    /// range must lie in one region, outside every region is
    /// [`DmaError::NotTranslatable`]), then the memory-encryption bit for
    /// private memory (`__sme_set`; not for [`DmaAttrs::CC_SHARED`], which is
    /// `phys_to_dma_unencrypted`), then the mask check (`dma_capable`,
    /// [`DmaError::MaskUnreachable`], a `Fallback`: bounce instead).
    fn ram_to_bus(
        &self,
        dev: &ArchDevice,
        phys: PhysAddr,
        len: u64,
        attrs: DmaAttrs,
    ) -> Result<BusAddr, DmaError> {
        let bus = dev.dma_ranges.phys_to_bus(phys, len)?;
        let bus = match self.info().mem_encrypt_bit {
            Some(bit) if dev.mem_encrypt && !attrs.contains(DmaAttrs::CC_SHARED) => {
                let c = 1u64.checked_shl(u32::from(bit)).unwrap_or(0);
                // The range must lie wholly below the bit, or setting it would
                // alias another address.
                match bus.last_of(len) {
                    Some(l) if c != 0 && l.raw() < c => BusAddr::new(bus.raw() | c),
                    _ => return Err(DmaError::NotTranslatable { phys, len }),
                }
            }
            _ => bus,
        };
        dev.check_reach(bus, len)?;
        Ok(bus)
    }

    /// Bus → RAM address for `dev` (`dma_to_phys`: `__sme_clr`, then
    /// `translate_dma_to_phys`). The inverse of [`ArchDma::ram_to_bus`].
    fn bus_to_ram(&self, dev: &ArchDevice, bus: BusAddr, len: u64) -> Result<PhysAddr, DmaError> {
        let bus = match self.info().mem_encrypt_bit {
            Some(bit) if dev.mem_encrypt => {
                BusAddr::new(bus.raw() & !1u64.checked_shl(u32::from(bit)).unwrap_or(0))
            }
            _ => bus,
        };
        Ok(dev.dma_ranges.bus_to_phys(bus, len)?)
    }

    /// A BAR's CPU physical range → bus address through its host bridge's MMIO
    /// windows (`pcibios_resource_to_bus` / `pci_bus_address`,
    /// drivers/pci/host-bridge.c). Exact at window edges; a range crossing a
    /// window edge is [`DmaError::NotTranslatable`].
    fn bar_to_bus(
        &self,
        host_bridge_windows: &WindowMap,
        phys: PhysAddr,
        len: u64,
    ) -> Result<BusAddr, DmaError> {
        Ok(host_bridge_windows.phys_to_bus(phys, len)?)
    }

    /// The inverse of [`ArchDma::bar_to_bus`] (`pcibios_bus_to_resource`).
    fn bus_to_bar(
        &self,
        host_bridge_windows: &WindowMap,
        bus: BusAddr,
        len: u64,
    ) -> Result<PhysAddr, DmaError> {
        Ok(host_bridge_windows.bus_to_phys(bus, len)?)
    }

    /// `dev_is_dma_coherent`: the device's flag, or always on arches whose DMA
    /// is always coherent.
    fn coherent(&self, dev: &ArchDevice) -> bool {
        self.info().always_coherent || dev.coherent
    }

    /// A device description with this arch's default coherency.
    fn default_device(&self, dma_ranges: WindowMap, mask: DmaMask) -> ArchDevice {
        ArchDevice::new(dma_ranges, self.info().default_coherent, mask)
    }

    /// Which P2P routes the arch can carry.
    fn p2p_support(&self) -> P2pSupport {
        self.info().p2p
    }

    /// Vetoes a route the P2P oracle chose, with a `Fallback`
    /// [`DmaError::ArchNoP2p`] naming the arch and why. A bus-address route
    /// never leaves the switch, so it passes `SameHostBridge`.
    fn check_p2p(&self, route: PeerRoute, same_host_bridge: bool) -> Result<(), DmaError> {
        let arch = self.name();
        match self.p2p_support() {
            P2pSupport::Full => Ok(()),
            P2pSupport::SameHostBridge { .. }
                if same_host_bridge || route == PeerRoute::BusAddr =>
            {
                Ok(())
            }
            P2pSupport::SameHostBridge { why } | P2pSupport::None { why } => {
                Err(DmaError::ArchNoP2p { arch, why })
            }
        }
    }

    /// The maintenance a sync needs (`arch_sync_dma_for_{device,cpu}`), or
    /// `None`. The caller skips coherent devices, MMIO and `SKIP_CPU_SYNC`.
    fn sync_op(&self, point: SyncPoint, dir: Direction) -> Option<SyncOp> {
        self.info().sync.op(point, dir)
    }

    /// The program for one range; see [`CacheProgram::push_range`].
    fn cache_program(
        &self,
        start: PhysAddr,
        len: u64,
        kind: SegKind,
        op: SyncOp,
    ) -> Result<CacheProgram, DmaError> {
        CacheProgram::build(self.info(), start, len, kind, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_ARCH: ArchInfo = ArchInfo {
        name: "test",
        cache_line_size: 64,
        default_coherent: false,
        always_coherent: false,
        p2p: P2pSupport::SameHostBridge { why: "test" },
        mem_encrypt_bit: Some(47),
        sync: SyncRules::CLEAN_THEN_INVALIDATE,
        invalidate_edges: EdgePolicy::CleanInvalidateEdges,
        line_invalidate: true,
        fence_before: false,
    };

    struct Test;
    impl ArchDma for Test {
        fn info(&self) -> &'static ArchInfo {
            &TEST_ARCH
        }
        fn lower(&self, _: &CacheProgram) -> Result<Vec<u8>, DmaError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn edges_get_clean_invalidate() {
        let p = Test
            .cache_program(
                PhysAddr::new(0x1010),
                0x80,
                SegKind::Ram,
                SyncOp::Invalidate,
            )
            .unwrap();
        let ops: Vec<_> = p.ops().iter().map(|o| (o.op, o.line.raw())).collect();
        assert_eq!(
            ops,
            [
                (SyncOp::CleanInvalidate, 0x1000),
                (SyncOp::Invalidate, 0x1040),
                (SyncOp::CleanInvalidate, 0x1080)
            ]
        );
        assert_eq!(p.events().len(), 4);
    }

    #[test]
    fn zero_length_and_mmio() {
        let p = Test
            .cache_program(PhysAddr::new(0x1010), 0, SegKind::Ram, SyncOp::Clean)
            .unwrap();
        assert!(p.is_empty() && p.events().is_empty());
        let bar = SegKind::PeerBar(crate::types::ProviderId::new(3));
        assert_eq!(
            Test.cache_program(PhysAddr::new(0x1000), 64, bar, SyncOp::Clean),
            Err(DmaError::NotCacheMaintainable {
                phys: PhysAddr::new(0x1000),
                len: 64,
                kind: bar
            })
        );
    }

    #[test]
    fn encryption_bit_and_shared() {
        let dev = ArchDevice::new(WindowMap::identity_all(), true, DmaMask::BITS_64)
            .with_mem_encrypt(true);
        let p = PhysAddr::new(0x1000);
        let enc = Test.ram_to_bus(&dev, p, 8, DmaAttrs::empty()).unwrap();
        assert_eq!(enc.raw(), 0x1000 | 1 << 47);
        assert_eq!(Test.bus_to_ram(&dev, enc, 8), Ok(p));
        let shared = Test.ram_to_bus(&dev, p, 8, DmaAttrs::CC_SHARED).unwrap();
        assert_eq!(shared.raw(), 0x1000);
        let narrow = ArchDevice {
            mask: DmaMask::BITS_32,
            ..dev
        };
        assert!(matches!(
            Test.ram_to_bus(&narrow, p, 8, DmaAttrs::empty()),
            Err(DmaError::MaskUnreachable { .. })
        ));
    }

    #[test]
    fn same_host_bridge_veto() {
        assert_eq!(Test.check_p2p(PeerRoute::HostBridge, true), Ok(()));
        assert_eq!(Test.check_p2p(PeerRoute::BusAddr, false), Ok(()));
        assert_eq!(
            Test.check_p2p(PeerRoute::HostBridge, false),
            Err(DmaError::ArchNoP2p {
                arch: "test",
                why: "test"
            })
        );
    }
}
