//! What the fabric records when a device's request cannot complete.
//!
//! A fault names the requester, the DMA address it emitted, the access and a
//! structured reason, like an IOMMU fault record or a PCIe AER log entry
//! (Unsupported Request / Completer Abort / ACS Violation). Faults are both
//! returned to the caller and kept in the fabric's bounded fault log.

use crate::fabric::RcFault;
use dma_pci::bdf::Bdf;
use dma_pci::p2p::{Access, Reason};
use dma_pci::topology::Acs;
use dma_pci::types::{BusAddr, DmaAddr, PhysAddr, ProviderId};
use std::fmt;

/// Why a request faulted.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum FaultReason {
    /// The requester is not (or no longer) in the topology.
    UnknownRequester,
    /// `[addr, addr + len)` wraps past the top of the 64-bit address space.
    AddressOverflow {
        /// Length of the whole transfer.
        len: u64,
    },
    /// `route_of_len` was asked about a TLP of zero bytes or one crossing a
    /// 4 KiB boundary (PCIe requests never do).
    BadTlpLength {
        /// The length asked for.
        len: u64,
    },
    /// The IOMMU at the root complex refused the request.
    IommuFault(RcFault),
    /// The root complex has no window for the (untranslated) bus address:
    /// neither an MMIO window nor a dma-range covers it (PCIe Unsupported
    /// Request).
    Unroutable {
        /// The bus address.
        bus: BusAddr,
        /// The host bridge that received it.
        host_bridge: String,
    },
    /// The physical address is neither RAM nor a present memory BAR.
    NoMemory {
        /// The physical address.
        phys: PhysAddr,
        /// Bytes of the TLP.
        len: u64,
    },
    /// HMM device-private memory: not addressable by any DMA master.
    DevicePrivate {
        /// The physical address.
        phys: PhysAddr,
        /// The owning device.
        owner: ProviderId,
    },
    /// The TLP starts inside a BAR but runs past its end.
    StraddlesBar {
        /// The BAR's owner.
        device: Bdf,
        /// The BAR index.
        bar: u8,
    },
    /// The request reached the root complex but the host bridge(s) do not
    /// forward this peer-to-peer access (allow-list, AMD rule, or our
    /// per-access `p2p_read` / `p2p_write` capability).
    HostBridgeP2pRefused {
        /// The BAR's owner.
        provider: Bdf,
        /// The host bridge that refused.
        host_bridge: String,
        /// The refused access.
        access: Access,
        /// The oracle's explanation of the host-bridge check.
        reasons: Vec<Reason>,
    },
    /// ACS P2P Egress Control on the ingress port blocks the peer request
    /// (ACS Violation). The egress control vector is not modelled: EC
    /// blocks every peer.
    AcsBlocked {
        /// The ingress port (or function).
        port: Bdf,
        /// The ACS control bits that blocked it.
        bits: Acs,
    },
    /// A redirected request reached a port whose downstream side holds the
    /// target, and the port does not forward it upstream (ACS Upstream
    /// Forwarding off): a port never sends a TLP back out of its ingress
    /// link.
    LoopbackRefused {
        /// The port.
        port: Bdf,
    },
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultReason::UnknownRequester => f.write_str("requester not in the topology"),
            FaultReason::AddressOverflow { len } => {
                write!(f, "transfer of {len:#x} bytes wraps the address space")
            }
            FaultReason::BadTlpLength { len } => {
                write!(
                    f,
                    "a TLP of {len:#x} bytes is empty or crosses a 4 KiB boundary"
                )
            }
            FaultReason::IommuFault(e) => write!(f, "{e}"),
            FaultReason::Unroutable { bus, host_bridge } => write!(
                f,
                "bus address {bus} matches no MMIO window or dma-range of host bridge {host_bridge}"
            ),
            FaultReason::NoMemory { phys, len } => {
                write!(f, "no RAM or BAR at phys {phys} (+{len:#x})")
            }
            FaultReason::DevicePrivate { phys, owner } => {
                write!(f, "phys {phys} is device-private memory of {owner}")
            }
            FaultReason::StraddlesBar { device, bar } => {
                write!(f, "request runs past the end of BAR{bar} of {device}")
            }
            FaultReason::HostBridgeP2pRefused {
                provider,
                host_bridge,
                access,
                ..
            } => write!(
                f,
                "host bridge {host_bridge} does not forward peer-to-peer {access}s to {provider}"
            ),
            FaultReason::AcsBlocked { port, bits } => {
                write!(f, "ACS ({bits}) on {port} blocks the peer-to-peer request")
            }
            FaultReason::LoopbackRefused { port } => write!(
                f,
                "{port} would send a redirected request back out of its ingress link (ACS UF off)"
            ),
        }
    }
}

/// One faulted request, as recorded in the fault log.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FabricFault {
    /// The device that issued the request.
    pub requester: Bdf,
    /// The DMA address of the faulting TLP (not of the whole transfer).
    pub addr: DmaAddr,
    /// A write (posted) or a read (non-posted) request.
    pub write: bool,
    /// Why.
    pub reason: FaultReason,
}

impl fmt::Display for FabricFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} DMA {} at {}: {}",
            self.requester,
            if self.write { "write" } else { "read" },
            self.addr,
            self.reason
        )
    }
}

impl core::error::Error for FabricFault {}

/// Why a CPU access (MMIO or RAM) through the fabric's backing failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CpuAccessError {
    /// The range wraps past the top of the address space.
    Overflow {
        /// Start.
        phys: PhysAddr,
        /// Length.
        len: u64,
    },
    /// No RAM, stolen RAM or present memory BAR holds this byte.
    NotBacked {
        /// The first unbacked byte.
        phys: PhysAddr,
    },
    /// Device-private memory is not CPU addressable.
    DevicePrivate {
        /// The address.
        phys: PhysAddr,
    },
}

impl fmt::Display for CpuAccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuAccessError::Overflow { phys, len } => {
                write!(f, "CPU access of {len:#x} bytes at {phys} wraps")
            }
            CpuAccessError::NotBacked { phys } => {
                write!(f, "no RAM or memory BAR at phys {phys}")
            }
            CpuAccessError::DevicePrivate { phys } => {
                write!(f, "phys {phys} is device-private memory")
            }
        }
    }
}

impl core::error::Error for CpuAccessError {}
