//! What a physical range *is*, recorded once per segment.
//!
//! Linux infers this per page (`is_pci_p2pdma_page`, `zone_device_pages_have_same_pgmap`)
//! and the caller declares MMIO with `DMA_ATTR_MMIO`. Here the kind is fixed when
//! the segment is built and the mapping path decides with one test per segment.
//! Two pages merge into one segment only if they have the same [`SegKind`]
//! (kind *and* provider), which is Linux's same-pgmap rule.

use core::fmt;

/// Opaque identity of the device that owns a non-RAM range (a BAR's provider,
/// the owner of a stolen-RAM carve-out or of device-private memory). Assigned
/// by the machine model; stable for the lifetime of a topology generation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct ProviderId(u32);

impl ProviderId {
    /// Wraps a raw provider number.
    #[inline]
    pub const fn new(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw provider number.
    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider#{}", self.0)
    }
}

/// The kind of memory a segment covers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SegKind {
    /// Ordinary system RAM: cache-coherent or maintained by the arch.
    #[default]
    Ram,
    /// MMIO of a PCI device's BAR: peer-to-peer memory, never bounced, never
    /// cache-maintained.
    PeerBar(ProviderId),
    /// A range that looks like a device BAR (an APU's "VRAM") but is really a
    /// system-RAM carve-out owned by that device; mapped as coherent RAM once
    /// its owner redirects it.
    StolenRam(ProviderId),
    /// HMM device-private memory: neither CPU- nor peer-addressable.
    DevicePrivate(ProviderId),
}

impl SegKind {
    /// The owning provider, `None` for plain RAM.
    #[inline]
    pub const fn provider(self) -> Option<ProviderId> {
        match self {
            SegKind::Ram => None,
            SegKind::PeerBar(p) | SegKind::StolenRam(p) | SegKind::DevicePrivate(p) => Some(p),
        }
    }

    /// True for memory that must be mapped as MMIO (no cache maintenance, no
    /// bounce buffering).
    #[inline]
    pub const fn is_mmio(self) -> bool {
        matches!(self, SegKind::PeerBar(_))
    }

    /// Linux's `zone_device_pages_have_same_pgmap` generalised: pages of two
    /// kinds may share a segment only if this is true.
    #[inline]
    pub fn can_merge_with(self, other: SegKind) -> bool {
        self == other
    }
}

impl fmt::Display for SegKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegKind::Ram => f.write_str("ram"),
            SegKind::PeerBar(p) => write!(f, "peer-bar({p})"),
            SegKind::StolenRam(p) => write!(f, "stolen-ram({p})"),
            SegKind::DevicePrivate(p) => write!(f, "device-private({p})"),
        }
    }
}
