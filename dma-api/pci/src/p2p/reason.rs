//! Structured reasons behind a P2P verdict, outermost cause first.

use crate::access::Access;
use crate::bdf::Bdf;
use crate::topology::Acs;
use alloc::string::String;
use core::fmt;

/// One step of the explanation of a verdict.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Reason {
    /// Provider and client are one function (distance 0).
    SameFunction,
    /// The nearest common upstream device.
    CommonUpstream {
        /// The common ancestor (a bridge, or the provider/client itself).
        bridge: Bdf,
    },
    /// A device on the path has ACS redirect (RR/CR/EC) enabled, so TLPs go
    /// up to the root complex.
    AcsRedirect {
        /// The device.
        bridge: Bdf,
        /// Its redirect bits that are set.
        bits: Acs,
    },
    /// No common upstream bridge: the path crosses the host bridge(s).
    NoCommonUpstream,
    /// Provider and client sit under different host bridges.
    DifferentHostBridges {
        /// The provider's host bridge.
        provider: String,
        /// The client's host bridge.
        client: String,
    },
    /// The CPU is AMD family >= 0x17 (Zen): host-bridge P2P is allowed.
    AmdZen {
        /// The CPU family.
        family: u32,
    },
    /// The host bridge is on the allow-list.
    HostBridgeAllowListed {
        /// The host bridge.
        bridge: String,
        /// Its vendor ID.
        vendor: u16,
        /// Its device ID.
        device: u16,
    },
    /// The host bridge is not on the allow-list.
    HostBridgeNotAllowListed {
        /// The host bridge.
        bridge: String,
        /// Its vendor ID.
        vendor: u16,
        /// Its device ID.
        device: u16,
    },
    /// The host bridge's entry is `REQ_SAME_HOST_BRIDGE` but the devices are
    /// under different host bridges.
    HostBridgeSameOnly {
        /// The host bridge.
        bridge: String,
        /// Its vendor ID.
        vendor: u16,
        /// Its device ID.
        device: u16,
    },
    /// No function identifies the host bridge (`pci_host_bridge_dev` found
    /// none), so it cannot match the allow-list.
    HostBridgeUnidentified {
        /// The host bridge.
        bridge: String,
    },
    /// Our extension: the host bridge does not forward this access P2P.
    AccessNotForwarded {
        /// The host bridge.
        bridge: String,
        /// The refused access.
        access: Access,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Reason::*;
        match self {
            SameFunction => f.write_str("provider and client are the same function"),
            CommonUpstream { bridge } => write!(f, "common upstream device {bridge}"),
            AcsRedirect { bridge, bits } => write!(
                f,
                "ACS redirect ({bits}) set on {bridge}: traffic goes through the root complex (pci=disable_acs_redir={bridge})"
            ),
            NoCommonUpstream => f.write_str("no common upstream bridge: path crosses the host bridge"),
            DifferentHostBridges { provider, client } => {
                write!(f, "different host bridges ({provider} vs {client})")
            }
            AmdZen { family } => write!(f, "AMD CPU family {family:#x} >= 0x17 supports P2PDMA"),
            HostBridgeAllowListed { bridge, vendor, device } => {
                write!(f, "host bridge {bridge} ({vendor:04x}:{device:04x}) is allow-listed")
            }
            HostBridgeNotAllowListed { bridge, vendor, device } => write!(
                f,
                "host bridge {bridge} ({vendor:04x}:{device:04x}) is not in the P2PDMA allow-list"
            ),
            HostBridgeSameOnly { bridge, vendor, device } => write!(
                f,
                "host bridge {bridge} ({vendor:04x}:{device:04x}) allows P2P only within itself"
            ),
            HostBridgeUnidentified { bridge } => write!(
                f,
                "host bridge {bridge} has no 00.0 or root-port function to identify it"
            ),
            AccessNotForwarded { bridge, access } => {
                write!(f, "host bridge {bridge} does not forward peer-to-peer {access}s")
            }
        }
    }
}
