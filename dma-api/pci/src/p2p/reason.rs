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
    /// Hardware oracle: ACS P2P Request Redirect on the ingress port (the
    /// client-side port of the common node) sends the client's request up
    /// to the root complex.
    IngressRedirect {
        /// The ingress port (or the requesting function itself).
        port: Bdf,
        /// The request's access.
        access: Access,
    },
    /// Hardware oracle: ACS P2P Egress Control without RR on the ingress
    /// port blocks the client's request (an ACS violation).
    EgressBlocked {
        /// The ingress port (or the requesting function itself).
        port: Bdf,
        /// The request's access.
        access: Access,
    },
    /// Hardware oracle: ACS P2P Completion Redirect on the provider's
    /// port sends the read completion up to the root complex and back down.
    CompletionRedirect {
        /// The provider-side port.
        port: Bdf,
    },
    /// Hardware oracle: a redirected TLP would have to leave a port through
    /// the link it came in on; without ACS Upstream Forwarding the port
    /// refuses it.
    UpstreamForwardingOff {
        /// The refusing port.
        port: Bdf,
        /// The access.
        access: Access,
        /// The TLP is the read's completion, not the request.
        completion: bool,
    },
    /// Hardware oracle: no redirect on the ingress port, so the request
    /// crosses the common bridge's internal bus directly.
    DirectAcross {
        /// The ingress port.
        port: Bdf,
        /// The common bridge.
        bridge: Bdf,
        /// The request's access.
        access: Access,
    },
    /// Hardware oracle: client and provider are functions of one device
    /// below a port; without redirect the device delivers internally.
    InsideDevice {
        /// The requesting function.
        from: Bdf,
        /// The provider's function.
        to: Bdf,
        /// The access.
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
            IngressRedirect { port, access } => write!(
                f,
                "{access} request: ACS RR on ingress port {port} redirects it upstream to the root complex"
            ),
            EgressBlocked { port, access } => write!(
                f,
                "{access} request: ACS EC without RR on ingress port {port} blocks it (ACS violation)"
            ),
            CompletionRedirect { port } => write!(
                f,
                "read completion: ACS CR on provider port {port} redirects it up through the root complex"
            ),
            UpstreamForwardingOff { port, access, completion } => write!(
                f,
                "{access} {}: ACS UF off on {port}, which cannot send it back upstream",
                if *completion { "completion" } else { "request" }
            ),
            DirectAcross { port, bridge, access } => write!(
                f,
                "{access} request: no ACS redirect on ingress port {port}, crosses {bridge} directly"
            ),
            InsideDevice { from, to, access } => write!(
                f,
                "{access} request: delivered inside the device from {from} to {to}"
            ),
        }
    }
}
