//! The one error taxonomy of the DMA layer.
//!
//! Linux collapses single-map failures to `DMA_MAPPING_ERROR` and sg failures
//! to `-EINVAL` / `-ENOMEM` / `-EIO` / `-EREMOTEIO` with no reason
//! (kernel/dma/mapping.c `dma_map_sgtable`). Here every failure is a variant
//! carrying the offending values, and [`DmaError::kind`] gives the class a caller
//! acts on:
//!
//! * [`ErrorKind::Invalid`] — a caller bug, permanent (`-EINVAL`);
//! * [`ErrorKind::NoResources`] — retry later (`-ENOMEM`);
//! * [`ErrorKind::Fallback`] — this memory cannot be reached this way; use
//!   system memory (`-EREMOTEIO`, and the cases Linux reports as `-EIO`/`-EPERM`
//!   such as MMIO that would need bouncing).

use crate::bdf::Bdf;
use crate::device::{ConstraintViolation, EntryAddr};
use crate::mask::{DmaMask, MaskError};
use crate::p2p::{P2pMemError, Route};
use crate::topology::{BarAddrError, DeviceId, TopologyError};
use crate::types::{BusAddr, DmaAddr, Iova, PhysAddr, SegKind};
use crate::window::TranslateError;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use scatterlist::SgError;

/// What a caller should do about an error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ErrorKind {
    /// Caller bug; retrying cannot help (Linux `-EINVAL`).
    Invalid,
    /// Transient shortage (IOVA space, bounce slots, memory); retry later
    /// (Linux `-ENOMEM`).
    NoResources,
    /// The mapping is impossible on this path; use system memory instead
    /// (Linux `-EREMOTEIO` for P2P, `-EPERM`/`-EIO` for unbounceable MMIO).
    Fallback,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NoResources => "no-resources",
            ErrorKind::Fallback => "fallback",
        })
    }
}

/// Every failure of the DMA layer, with the values that caused it.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DmaError {
    // ---- Invalid ----
    /// A scatterlist was built or used wrongly.
    Sg(SgError),
    /// A mask width outside 1..=64.
    InvalidMask {
        /// The width given.
        bits: u32,
    },
    /// A mask value that is not a run of low ones.
    InvalidMaskValue {
        /// The value given.
        value: u64,
    },
    /// A direction value outside 0..=2.
    InvalidDirection {
        /// The raw value given.
        raw: u32,
    },
    /// A zero-length mapping or sync.
    ZeroLength {
        /// Where it started.
        phys: PhysAddr,
    },
    /// A physical range that wraps the address space.
    PhysOverflow {
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A physical range that no translation window covers.
    NotTranslatable {
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A bus range that no translation window covers (reverse translation).
    BusNotTranslatable {
        /// Start of the range.
        bus: BusAddr,
        /// Its length.
        len: u64,
    },
    /// A device or provider that the machine does not know.
    UnknownDevice {
        /// Its address.
        bdf: Bdf,
    },
    /// A device id (a memory owner, a provider) that is not in the topology
    /// (never present, or hot-removed): named by the id asked for, as there
    /// is no address to name.
    UnknownDeviceId {
        /// The id asked for.
        id: DeviceId,
    },
    /// A device has no BAR with this index.
    NoSuchBar {
        /// The device.
        bdf: Bdf,
        /// The BAR index asked for.
        bar: u8,
    },
    /// Any other topology failure, as the topology reported it.
    Topology(TopologyError),
    /// CPU cache maintenance was asked for memory that never gets any
    /// (MMIO / peer BARs, device-private memory).
    NotCacheMaintainable {
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// What the range is.
        kind: SegKind,
    },
    /// An arch backend could not lower a cache-maintenance program to code.
    ArchLowering {
        /// The architecture.
        arch: &'static str,
        /// What went wrong.
        why: String,
    },
    /// An IOMMU mapping over an IOVA that is already mapped (Linux
    /// `-EADDRINUSE` from generic_pt).
    IovaInUse {
        /// The first IOVA that collided.
        iova: Iova,
    },
    /// An IOVA range the IOMMU page table cannot map (misaligned, beyond
    /// the input or output address size, or without access rights).
    IovaRangeInvalid {
        /// Start of the range.
        iova: Iova,
        /// Its length.
        len: u64,
    },
    /// An IOVA granule that is not a power of two of at least 4 KiB
    /// (drivers/iommu/iova.c `init_iova_domain` BUG()s instead).
    InvalidIovaGranule {
        /// The granule given, in bytes.
        granule: u64,
    },
    /// An IOVA allocation of zero pages, or of more pages than the space has.
    IovaBadSize {
        /// Pages asked for.
        pages: u64,
        /// The most pages the IOVA space can hold.
        max_pages: u64,
    },
    /// An IOVA range whose first address is above its last.
    IovaBadRange {
        /// First address given.
        first: Iova,
        /// Last address given.
        last: Iova,
    },
    /// A free of an IOVA that no allocated range contains (never allocated,
    /// already freed, or reserved).
    IovaNotAllocated {
        /// The IOVA given.
        iova: Iova,
    },
    /// A two-step IOVA link other than the first whose physical start is not
    /// granule aligned (Linux `dma_iova_link` `-EIO`: only the first link may
    /// start inside a granule).
    IovaLinkUnaligned {
        /// Physical start of the link.
        phys: PhysAddr,
        /// Its offset inside the reservation.
        offset: u64,
        /// The IOVA granule.
        granule: u64,
    },
    /// A two-step IOVA link, sync or unlink outside its reservation.
    IovaLinkOutOfRange {
        /// Offset inside the reservation.
        offset: u64,
        /// Length asked for.
        size: u64,
        /// Bytes the reservation holds.
        reserved: u64,
    },
    /// An IOMMU domain the DMA layer cannot use (unknown, or not translating).
    IommuDomain {
        /// The domain number.
        domain: u32,
        /// Why.
        reason: String,
    },

    /// A single mapping longer than the backend's `max_mapping_size` (e.g.
    /// more than `IO_TLB_SEGSIZE` bounce slots); retrying cannot help.
    MappingTooLarge {
        /// Bytes asked for.
        len: u64,
        /// The largest mapping possible.
        max: u64,
    },
    /// An unmap or sync of a DMA range that is not (wholly) inside a live
    /// mapping (Linux WARNs and clips or ignores).
    NotMapped {
        /// Start of the range given.
        dma: DmaAddr,
        /// Its length.
        len: u64,
    },
    /// A table that is already DMA-mapped was mapped again (Linux: "a list
    /// cannot be mapped twice").
    AlreadyMapped {
        /// Its CPU entries.
        orig_nents: usize,
    },
    /// A table's mapping plan does not have one entry per CPU entry.
    PlanMismatch {
        /// Plan entries given.
        plan: usize,
        /// `orig_nents` of the table.
        nents: usize,
    },
    /// A physical range the memory map does not classify as one kind
    /// (outside every range, or spanning two).
    UnknownMemory {
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A CPU access to an owned DMA buffer (e.g. a
    /// [`CoherentAllocation`](crate::device::CoherentAllocation)) that does
    /// not lie inside it.
    OutOfBounds {
        /// Offset of the access inside the buffer.
        offset: u64,
        /// Bytes accessed.
        len: u64,
        /// Size of the buffer.
        size: u64,
    },
    /// A provider policy redirected to a range that is not system RAM.
    BadRedirect {
        /// The provider whose policy answered.
        provider: Bdf,
        /// Where it redirected to.
        to: PhysAddr,
        /// The length.
        len: u64,
    },
    /// A provider's redirect to several ranges whose lengths do not add up
    /// to the range asked for.
    RedirectLength {
        /// The provider whose policy answered.
        provider: Bdf,
        /// The length asked for.
        asked: u64,
        /// The sum of the ranges' lengths (`None`: it overflows).
        total: Option<u64>,
    },
    /// A single mapping (`map_phys`) of a range its provider redirected to
    /// several RAM ranges that are not adjacent: there is no one DMA address
    /// for it. Map it in a table (one segment per range) or link it through
    /// the two-step IOVA API.
    RedirectScattered {
        /// The provider whose policy answered.
        provider: Bdf,
        /// The RAM ranges `(start, length)` the bytes are in, in order.
        pieces: Vec<(PhysAddr, u64)>,
    },

    // ---- NoResources ----
    /// Not enough memory for bookkeeping or an allocation.
    OutOfMemory {
        /// Bytes asked for.
        bytes: u64,
    },
    /// No free IOVA range of `pages` granules (suitably aligned) lies below
    /// `limit` (drivers/iommu/iova.c `alloc_iova` returning NULL).
    IovaExhausted {
        /// Granules asked for.
        pages: u64,
        /// The highest IOVA the range could have ended at.
        limit: Iova,
    },
    /// The bounce-buffer pool has no run of free slots for this mapping
    /// (kernel/dma/swiotlb.c "swiotlb buffer is full").
    SwiotlbFull {
        /// Bytes asked for.
        len: u64,
        /// Contiguous 2 KiB slots needed.
        slots: u64,
    },

    // ---- Fallback ----
    /// The address the device would have to emit is beyond its mask.
    MaskUnreachable {
        /// The bus address that is out of reach.
        bus: BusAddr,
        /// The length of the range.
        len: u64,
        /// The device's effective mask.
        mask: DmaMask,
    },
    /// A coherent allocation (`dma_alloc_coherent`) the device cannot
    /// address as it is: beyond its mask or outside its dma-ranges. Coherent
    /// memory is never bounced (a bounce slot is a copy), so the allocation
    /// fails, like Linux `dma_direct_alloc` when `dma_coherent_ok` is false.
    /// The cure is a pool within the device's reach (Linux `ZONE_DMA32`) or
    /// streaming mappings with syncs.
    CoherentUnreachable {
        /// The device the allocation was for.
        device: Bdf,
        /// Start of the allocation.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// The device's effective mask.
        mask: DmaMask,
        /// The bus address the device would have to emit; `None` if no
        /// dma-range of the device covers the allocation.
        bus: Option<BusAddr>,
    },
    /// MMIO / peer memory that would have to be bounced, which is impossible.
    MmioNotBounceable {
        /// The MMIO range start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// `DMA_ATTR_REQUIRE_COHERENT` on a path that would need bouncing or
    /// cache maintenance (Linux `-EOPNOTSUPP` / `-EPERM` from `dma_iova_link`).
    CoherenceRequired {
        /// Range start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// Peer-to-peer between provider and client is not possible; `reasons` is
    /// the chain from the P2P oracle, outermost first.
    P2pUnreachable {
        /// The device that owns the memory.
        provider: Bdf,
        /// The device that would access it.
        client: Bdf,
        /// Why, outermost first (e.g. the host bridge not on the allow-list).
        reasons: Vec<String>,
    },
    /// The CPU architecture cannot carry this peer-to-peer route.
    ArchNoP2p {
        /// The architecture (e.g. `s390x`).
        arch: &'static str,
        /// Why (e.g. zPCI has no peer routing between functions).
        why: &'static str,
    },
    /// The memory's owner refused this mapping (its `ProviderPolicy`).
    ProviderRefused {
        /// The owner of the memory.
        provider: Bdf,
        /// The device that asked.
        client: Bdf,
        /// The owner's reason.
        reason: String,
    },
    /// HMM device-private memory: no device (not even its owner) can DMA to
    /// it by address; migrate it to system RAM first (mm/hmm.c).
    DevicePrivate {
        /// The owner of the memory.
        owner: Bdf,
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// `DMA_ATTR_REQUIRE_COHERENT` on a mapping that would need bouncing or
    /// cache maintenance.
    RequireCoherent {
        /// Start of the range.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// An unmap whose length does not match the mapping at that address
    /// (Linux trusts the caller and would unmap a neighbour too).
    UnmapLengthMismatch {
        /// The DMA address given.
        dma: DmaAddr,
        /// The length given.
        len: u64,
        /// The length the mapping at `dma` has room for.
        mapped: u64,
    },
    /// A BAR range that its owner never registered as peer memory (Linux:
    /// only `pci_p2pdma_add_resource` ranges are P2P pages; anything else,
    /// another device's registers included, is not DMA-able memory).
    NotPeerMemory {
        /// The owner of the BAR.
        provider: Bdf,
        /// The BAR index, if the range lies in one.
        bar: Option<u8>,
        /// Range start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// A table entry claims a kind the memory map does not give its range
    /// (kinds come from the memory map, never from the caller).
    KindMismatch {
        /// The entry's index among the table's CPU entries.
        index: usize,
        /// Its start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// The kind the entry carries.
        claimed: SegKind,
        /// The kind the memory map gives the range, `None` if no single
        /// range of the map holds it.
        actual: Option<SegKind>,
    },
    /// One entry of a table could not be mapped; `cause` says why and
    /// decides [`DmaError::kind`].
    TableEntry {
        /// The entry's index among the table's CPU entries.
        index: usize,
        /// Its start.
        phys: PhysAddr,
        /// Its length.
        len: u64,
        /// Its kind.
        seg: SegKind,
        /// What went wrong with it.
        cause: Box<DmaError>,
    },
    /// A p2pmem registry operation failed (`pci_p2pdma_add_resource`,
    /// `pci_alloc_p2pmem`, ...).
    P2pMem(P2pMemError),
    /// An operation failed (`error`, which decides [`DmaError::kind`]) and
    /// undoing what it had done failed too (`cleanup`, in order): the
    /// cleanup failures are reported with the error, not dropped. See
    /// [`DmaError::with_cleanup`].
    CleanupFailed {
        /// The operation's own failure.
        error: Box<DmaError>,
        /// What failed while undoing it.
        cleanup: Vec<DmaError>,
    },

    // ---- Device constraints (all Invalid) ----
    /// `dma_set_mask` / `dma_set_coherent_mask` refused, Linux `-EIO` from
    /// `dma_supported` (kernel/dma/mapping.c): the mask cannot reach memory
    /// the device must reach. The old mask stays.
    MaskNotSupported {
        /// The device.
        device: Bdf,
        /// The mask asked for.
        mask: DmaMask,
        /// The coherent mask (else the streaming one).
        coherent: bool,
        /// The address (bus or IOVA) the mask would have to cover.
        needs: u64,
        /// What lies there ("the swiotlb bounce pool", "the coherent pool", ...).
        what: &'static str,
    },
    /// A constraint value the device cannot have (a boundary that is not
    /// `2^n - 1`, a segment size below a page, ...).
    InvalidConstraint {
        /// The device.
        device: Bdf,
        /// The field (`seg_boundary_mask`, `max_seg_size`, ...).
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The device's backend cannot change its constraints at run time
    /// (`DmaBackend::set_constraints` not implemented).
    ConstraintsFixed {
        /// The device.
        device: Bdf,
        /// The backend's name.
        backend: String,
    },
    /// Constraints cannot change while the device has live mappings (unmap
    /// would no longer undo what map did).
    ConstraintsBusy {
        /// The device.
        device: Bdf,
        /// Live single mappings.
        singles: usize,
        /// Live table mappings.
        tables: usize,
        /// Live coherent allocations.
        coherent: usize,
    },
    /// A table breaks the device's constraints (max segment size, segment
    /// boundary, virt boundary); nothing stays mapped.
    ConstraintViolated {
        /// The device.
        device: Bdf,
        /// The entry's index among the CPU entries, or the DMA segment's.
        index: usize,
        /// Where it is.
        at: EntryAddr,
        /// Its length.
        len: u64,
        /// The rule it breaks.
        violation: ConstraintViolation,
    },
}

impl DmaError {
    /// The class a caller acts on.
    pub fn kind(&self) -> ErrorKind {
        use DmaError::*;
        match self {
            Sg(_)
            | InvalidMask { .. }
            | InvalidMaskValue { .. }
            | InvalidDirection { .. }
            | ZeroLength { .. }
            | PhysOverflow { .. }
            | NotTranslatable { .. }
            | BusNotTranslatable { .. }
            | UnknownDevice { .. }
            | UnknownDeviceId { .. }
            | NoSuchBar { .. }
            | Topology(_)
            | NotCacheMaintainable { .. }
            | ArchLowering { .. }
            | IovaInUse { .. }
            | IovaRangeInvalid { .. }
            | InvalidIovaGranule { .. }
            | IovaBadSize { .. }
            | IovaBadRange { .. }
            | IovaNotAllocated { .. }
            | IovaLinkUnaligned { .. }
            | IovaLinkOutOfRange { .. }
            | IommuDomain { .. }
            | MappingTooLarge { .. }
            | NotMapped { .. }
            | PlanMismatch { .. }
            | AlreadyMapped { .. }
            | UnknownMemory { .. }
            | OutOfBounds { .. }
            | BadRedirect { .. }
            | RedirectLength { .. }
            | RedirectScattered { .. }
            | NotPeerMemory { .. }
            | UnmapLengthMismatch { .. }
            | KindMismatch { .. }
            | MaskNotSupported { .. }
            | InvalidConstraint { .. }
            | ConstraintsFixed { .. }
            | ConstraintsBusy { .. }
            | ConstraintViolated { .. } => ErrorKind::Invalid,
            TableEntry { cause, .. } => cause.kind(),
            CleanupFailed { error, .. } => error.kind(),
            P2pMem(P2pMemError::OutOfMemory { .. }) => ErrorKind::NoResources,
            P2pMem(_) => ErrorKind::Invalid,
            OutOfMemory { .. } | IovaExhausted { .. } | SwiotlbFull { .. } => {
                ErrorKind::NoResources
            }
            MaskUnreachable { .. }
            | CoherentUnreachable { .. }
            | MmioNotBounceable { .. }
            | CoherenceRequired { .. }
            | P2pUnreachable { .. }
            | ArchNoP2p { .. }
            | ProviderRefused { .. }
            | DevicePrivate { .. }
            | RequireCoherent { .. } => ErrorKind::Fallback,
        }
    }

    /// The closest Linux errno (negative), for ports that must return one.
    pub fn errno(&self) -> i32 {
        match self.kind() {
            ErrorKind::Invalid => -22,     // EINVAL
            ErrorKind::NoResources => -12, // ENOMEM
            ErrorKind::Fallback => -121,   // EREMOTEIO
        }
    }
}

impl From<MaskError> for DmaError {
    fn from(e: MaskError) -> Self {
        match e {
            MaskError::InvalidMask { bits } => DmaError::InvalidMask { bits },
            MaskError::InvalidMaskValue { value } => DmaError::InvalidMaskValue { value },
        }
    }
}

impl From<TranslateError> for DmaError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::ZeroLength { phys } => DmaError::ZeroLength { phys },
            TranslateError::PhysOverflow { phys, len } => DmaError::PhysOverflow { phys, len },
            TranslateError::NotTranslatable { phys, len } => {
                DmaError::NotTranslatable { phys, len }
            }
            TranslateError::BusNotTranslatable { bus, len } => {
                DmaError::BusNotTranslatable { bus, len }
            }
        }
    }
}

impl From<BarAddrError> for DmaError {
    fn from(e: BarAddrError) -> Self {
        match e {
            BarAddrError::UnknownId { id } => DmaError::UnknownDeviceId { id },
            BarAddrError::NoSuchBar { bdf, bar } => DmaError::NoSuchBar { bdf, bar },
            BarAddrError::NoHostBridge { bdf } => {
                DmaError::Topology(TopologyError::NoHostBridge { bdf })
            }
            BarAddrError::Translate(t) => t.into(),
        }
    }
}

impl From<TopologyError> for DmaError {
    /// An unknown address or id stays that; every other topology failure is
    /// [`DmaError::Topology`], carrying what the topology said (not a guess
    /// at an unknown device).
    fn from(e: TopologyError) -> Self {
        match e {
            TopologyError::UnknownDevice { bdf } => DmaError::UnknownDevice { bdf },
            TopologyError::UnknownId { id } => DmaError::UnknownDeviceId { id },
            e => DmaError::Topology(e),
        }
    }
}

impl DmaError {
    /// `cause` as the failure of CPU entry `index` of a table (`seg` is the
    /// entry's kind). An error that already names its entry is kept.
    pub fn at_entry(index: usize, phys: PhysAddr, len: u64, seg: SegKind, cause: DmaError) -> Self {
        match cause {
            e @ (DmaError::TableEntry { .. } | DmaError::KindMismatch { .. }) => e,
            cause => DmaError::TableEntry {
                index,
                phys,
                len,
                seg,
                cause: Box::new(cause),
            },
        }
    }

    /// For a [`DmaError::TableEntry`], the error of the entry itself; for a
    /// [`DmaError::CleanupFailed`], the operation's own failure; else `self`.
    pub fn root_cause(&self) -> &DmaError {
        match self {
            DmaError::TableEntry { cause, .. } => cause.root_cause(),
            DmaError::CleanupFailed { error, .. } => error.root_cause(),
            e => e,
        }
    }

    /// `self` (the failure of an operation) with the failures of undoing it:
    /// unchanged when there are none, else [`DmaError::CleanupFailed`]
    /// keeping `self` first (its kind stays the error's kind).
    pub fn with_cleanup(self, cleanup: impl IntoIterator<Item = DmaError>) -> DmaError {
        let mut more: Vec<DmaError> = cleanup.into_iter().collect();
        if more.is_empty() {
            return self;
        }
        match self {
            DmaError::CleanupFailed { error, mut cleanup } => {
                cleanup.append(&mut more);
                DmaError::CleanupFailed { error, cleanup }
            }
            e => DmaError::CleanupFailed {
                error: Box::new(e),
                cleanup: more,
            },
        }
    }

    /// The `Fallback` error for a route the oracle refuses: provider, client
    /// and the reason chain, outermost first.
    pub fn p2p_unreachable(route: &Route) -> Self {
        DmaError::P2pUnreachable {
            provider: route.provider,
            client: route.client,
            reasons: route
                .reasons
                .iter()
                .map(alloc::string::ToString::to_string)
                .collect(),
        }
    }
}

impl From<SgError> for DmaError {
    fn from(e: SgError) -> Self {
        DmaError::Sg(e)
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DmaError::*;
        write!(f, "[{}] ", self.kind())?;
        match self {
            Sg(e) => write!(f, "scatterlist: {e}"),
            InvalidMask { bits } => write!(f, "DMA mask of {bits} bits is not in 1..=64"),
            InvalidMaskValue { value } => {
                write!(f, "DMA mask value {value:#x} is not a run of low ones")
            }
            InvalidDirection { raw } => write!(f, "DMA direction {raw} is not 0, 1 or 2"),
            ZeroLength { phys } => write!(f, "zero-length range at {phys}"),
            PhysOverflow { phys, len } => {
                write!(
                    f,
                    "physical range {phys} + {len:#x} wraps the address space"
                )
            }
            NotTranslatable { phys, len } => write!(
                f,
                "physical range {phys} + {len:#x} is outside every translation window"
            ),
            BusNotTranslatable { bus, len } => write!(
                f,
                "bus range {bus} + {len:#x} is outside every translation window"
            ),
            UnknownDevice { bdf } => write!(f, "no device {bdf} in this machine"),
            UnknownDeviceId { id } => write!(
                f,
                "no device with id {id} in this machine (it owns memory or a registration but is not in the topology)"
            ),
            NoSuchBar { bdf, bar } => write!(f, "device {bdf} has no BAR {bar}"),
            Topology(e) => write!(f, "topology: {e}"),
            NotCacheMaintainable { phys, len, kind } => write!(
                f,
                "{kind} range {phys} + {len:#x} never gets CPU cache maintenance"
            ),
            ArchLowering { arch, why } => {
                write!(f, "{arch}: cannot lower cache maintenance to code: {why}")
            }
            IovaInUse { iova } => write!(f, "IOVA {iova} is already mapped"),
            IovaRangeInvalid { iova, len } => {
                write!(
                    f,
                    "IOVA range {iova}+{len:#x} cannot be mapped by the IOMMU page table"
                )
            }
            InvalidIovaGranule { granule } => write!(
                f,
                "IOVA granule {granule:#x} is not a power of two of at least 4 KiB"
            ),
            IovaBadSize { pages, max_pages } => {
                write!(f, "IOVA size of {pages} granules is not in 1..={max_pages}")
            }
            IovaBadRange { first, last } => {
                write!(
                    f,
                    "IOVA range {first}..={last} has its first above its last"
                )
            }
            IovaNotAllocated { iova } => write!(f, "no allocated IOVA range contains {iova}"),
            IovaLinkUnaligned {
                phys,
                offset,
                granule,
            } => write!(
                f,
                "IOVA link of {phys} at offset {offset:#x} is not aligned to the {granule:#x} granule (only the first link may be)"
            ),
            IovaLinkOutOfRange {
                offset,
                size,
                reserved,
            } => write!(
                f,
                "IOVA range at offset {offset:#x} + {size:#x} exceeds the {reserved:#x}-byte reservation"
            ),
            IommuDomain { domain, reason } => {
                write!(f, "IOMMU domain {domain} cannot be used for DMA: {reason}")
            }
            OutOfMemory { bytes } => write!(f, "out of memory allocating {bytes:#x} bytes"),
            IovaExhausted { pages, limit } => write!(
                f,
                "no free IOVA range of {pages} granules at or below {limit}"
            ),
            MappingTooLarge { len, max } => write!(
                f,
                "mapping of {len:#x} bytes exceeds the maximum mapping size {max:#x}"
            ),
            NotMapped { dma, len } => {
                write!(f, "DMA range {dma} + {len:#x} is not inside a live mapping")
            }
            AlreadyMapped { orig_nents } => write!(
                f,
                "table of {orig_nents} entries is already DMA-mapped; unmap it first"
            ),
            PlanMismatch { plan, nents } => write!(
                f,
                "mapping plan has {plan} entries but the table has {nents} CPU entries"
            ),
            UnknownMemory { phys, len } => write!(
                f,
                "physical range {phys} + {len:#x} is not one kind of memory in the memory map"
            ),
            OutOfBounds { offset, len, size } => write!(
                f,
                "access at offset {offset:#x} + {len:#x} is outside the {size:#x}-byte buffer"
            ),
            BadRedirect { provider, to, len } => write!(
                f,
                "policy of {provider} redirected to {to} + {len:#x}, which is not system RAM"
            ),
            RedirectLength {
                provider,
                asked,
                total,
            } => match total {
                Some(t) => write!(
                    f,
                    "policy of {provider} redirected {asked:#x} bytes to ranges of {t:#x} bytes in all"
                ),
                None => write!(
                    f,
                    "policy of {provider} redirected {asked:#x} bytes to ranges whose lengths overflow"
                ),
            },
            RedirectScattered { provider, pieces } => write!(
                f,
                "policy of {provider} redirected the range to {} separate RAM ranges (first {} + {:#x}): \
                 no single DMA address; map it in a table or through the IOVA API",
                pieces.len(),
                pieces.first().map_or(PhysAddr::new(0), |p| p.0),
                pieces.first().map_or(0, |p| p.1)
            ),
            SwiotlbFull { len, slots } => write!(
                f,
                "swiotlb buffer is full: no {slots} contiguous free slots for {len:#x} bytes"
            ),
            MaskUnreachable { bus, len, mask } => write!(
                f,
                "bus range {bus} + {len:#x} is beyond the device's {mask} DMA mask"
            ),
            CoherentUnreachable {
                device,
                phys,
                len,
                mask,
                bus,
            } => {
                write!(
                    f,
                    "coherent allocation {phys} + {len:#x} for {device} is out of the device's reach: "
                )?;
                match bus {
                    Some(bus) => write!(f, "bus range {bus} + {len:#x} is beyond its {mask} DMA mask")?,
                    None => write!(f, "outside every dma-range of the device (mask {mask})")?,
                }
                f.write_str("; coherent memory is never bounced")
            }
            MmioNotBounceable { phys, len } => write!(
                f,
                "MMIO range {phys} + {len:#x} would need bouncing, which MMIO cannot be"
            ),
            CoherenceRequired { phys, len } => write!(
                f,
                "range {phys} + {len:#x} requires coherent DMA but would need bouncing or cache maintenance"
            ),
            P2pUnreachable {
                provider,
                client,
                reasons,
            } => {
                write!(
                    f,
                    "P2P from {client} to memory of {provider} is not possible"
                )?;
                for r in reasons {
                    write!(f, ": {r}")?;
                }
                Ok(())
            }
            ArchNoP2p { arch, why } => {
                write!(f, "peer-to-peer DMA is not possible on {arch}: {why}")
            }
            ProviderRefused {
                provider,
                client,
                reason,
            } => write!(
                f,
                "{provider} refused mapping of its memory by {client}: {reason}"
            ),
            DevicePrivate { owner, phys, len } => write!(
                f,
                "range {phys} + {len:#x} is device-private memory of {owner}: migrate it to RAM first"
            ),
            UnmapLengthMismatch { dma, len, mapped } => write!(
                f,
                "unmap of {dma} + {len:#x} does not match the mapping there ({mapped:#x} bytes)"
            ),
            NotPeerMemory {
                provider,
                bar,
                phys,
                len,
            } => match bar {
                Some(b) => write!(
                    f,
                    "{phys} + {len:#x} in BAR {b} of {provider} is not registered peer memory"
                ),
                None => write!(
                    f,
                    "{phys} + {len:#x} of {provider} is not registered peer memory"
                ),
            },
            KindMismatch {
                index,
                phys,
                len,
                claimed,
                actual,
            } => match actual {
                Some(a) => write!(
                    f,
                    "entry {index} ({phys} + {len:#x}) claims {claimed} but the memory map says {a}"
                ),
                None => write!(
                    f,
                    "entry {index} ({phys} + {len:#x}) claims {claimed} but is not one range of the memory map"
                ),
            },
            TableEntry {
                index,
                phys,
                len,
                seg,
                cause,
            } => {
                write!(f, "entry {index} ({seg} {phys} + {len:#x}): ")?;
                // The cause prints its own class; drop the duplicate prefix.
                let inner = alloc::format!("{cause}");
                f.write_str(inner.split_once("] ").map_or(inner.as_str(), |(_, r)| r))
            }
            P2pMem(e) => write!(f, "p2pmem: {e}"),
            CleanupFailed { error, cleanup } => {
                write!(f, "{error}; undoing it failed too:")?;
                for (i, c) in cleanup.iter().enumerate() {
                    write!(f, "{} {c}", if i == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
            RequireCoherent { phys, len } => write!(
                f,
                "range {phys} + {len:#x} cannot be mapped coherently (DMA_ATTR_REQUIRE_COHERENT)"
            ),
            MaskNotSupported {
                device,
                mask,
                coherent,
                needs,
                what,
            } => write!(
                f,
                "{device}: {} DMA mask {mask} ({:#x}) cannot reach {what} at {needs:#x}",
                if *coherent { "coherent" } else { "streaming" },
                mask.value()
            ),
            InvalidConstraint {
                device,
                what,
                value,
                rule,
            } => write!(f, "{device}: {what} {value:#x} is not valid: {rule}"),
            ConstraintsFixed { device, backend } => write!(
                f,
                "{device}: backend {backend} cannot change DMA constraints at run time"
            ),
            ConstraintsBusy {
                device,
                singles,
                tables,
                coherent,
            } => write!(
                f,
                "{device}: DMA constraints cannot change while mappings are live \
                 ({singles} single, {tables} table, {coherent} coherent)"
            ),
            ConstraintViolated {
                device,
                index,
                at,
                len,
                violation,
            } => write!(f, "{device}: entry {index} ({at} + {len:#x}) {violation}"),
        }
    }
}

impl core::error::Error for DmaError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn kinds_and_errnos() {
        let inv = DmaError::from(SgError::ZeroPages);
        assert_eq!(inv.kind(), ErrorKind::Invalid);
        assert_eq!(inv.errno(), -22);
        let nores = DmaError::OutOfMemory { bytes: 4096 };
        assert_eq!(nores.kind(), ErrorKind::NoResources);
        let fb = DmaError::P2pUnreachable {
            provider: "01:00.0".parse().unwrap(),
            client: "02:00.0".parse().unwrap(),
            reasons: vec!["host bridge 0000:00:00.0 is not on the allow-list".to_string()],
        };
        assert_eq!(fb.kind(), ErrorKind::Fallback);
        assert_eq!(fb.errno(), -121);
        let msg = fb.to_string();
        assert!(
            msg.contains("0000:02:00.0") && msg.contains("allow-list"),
            "{msg}"
        );
    }

    /// Bug: every topology error became "unknown device" with a BDF nobody
    /// asked about. Each converts to what it says.
    #[test]
    fn topology_errors_keep_what_was_asked() {
        let id = DeviceId::from_provider(crate::types::ProviderId::new(7));
        let e = DmaError::from(TopologyError::UnknownId { id });
        assert_eq!(e, DmaError::UnknownDeviceId { id });
        let msg = e.to_string();
        assert!(
            msg.contains("dev#7") && !msg.contains("0000:00:00.0"),
            "{msg}"
        );
        let bdf: Bdf = "03:00.0".parse().unwrap();
        assert_eq!(
            DmaError::from(TopologyError::UnknownDevice { bdf }),
            DmaError::UnknownDevice { bdf }
        );
        let other = TopologyError::NoAcsCapability { bdf };
        let e = DmaError::from(other.clone());
        assert_eq!(e, DmaError::Topology(other));
        assert!(e.to_string().contains("no ACS capability"), "{e}");
        assert_eq!(
            DmaError::from(BarAddrError::NoSuchBar { bdf, bar: 3 }),
            DmaError::NoSuchBar { bdf, bar: 3 }
        );
        assert_eq!(
            DmaError::from(BarAddrError::UnknownId { id }),
            DmaError::UnknownDeviceId { id }
        );
    }
}
