//! The host-bridge allow-list: the entries of drivers/pci/p2pdma.c
//! `pci_p2pdma_whitelist[]` (7.x-era pci tree) with its
//! `REQ_SAME_HOST_BRIDGE` flag, and the lookup rule of
//! `__host_bridge_whitelist` (first vendor/device match decides).

/// Intel's PCI vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// AMD's PCI vendor ID.
pub const VENDOR_AMD: u16 = 0x1022;
/// Google's PCI vendor ID.
pub const VENDOR_GOOGLE: u16 = 0x1ae0;
/// NVIDIA's PCI vendor ID.
pub const VENDOR_NVIDIA: u16 = 0x10de;
/// Zhaoxin's PCI vendor ID.
pub const VENDOR_ZHAOXIN: u16 = 0x1d17;

/// One allow-list entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AllowEntry {
    /// Vendor ID of the host bridge's representative function.
    pub vendor: u16,
    /// Device ID, `None` = `PCI_ANY_ID`.
    pub device: Option<u16>,
    /// `REQ_SAME_HOST_BRIDGE`: only P2P within this one host bridge.
    pub req_same_host_bridge: bool,
}

const fn e(vendor: u16, device: u16, same: bool) -> AllowEntry {
    AllowEntry {
        vendor,
        device: Some(device),
        req_same_host_bridge: same,
    }
}

/// The kernel's table, in its order.
pub const P2PDMA_ALLOW_LIST: &[AllowEntry] = &[
    // Intel Xeon E5 / Core i7
    e(VENDOR_INTEL, 0x3c00, true),
    e(VENDOR_INTEL, 0x3c01, true),
    // Intel Xeon E7 v3 / E5 v3 / Core i7
    e(VENDOR_INTEL, 0x2f00, true),
    e(VENDOR_INTEL, 0x2f01, true),
    // Intel Skylake-E (root ports)
    e(VENDOR_INTEL, 0x2030, false),
    e(VENDOR_INTEL, 0x2031, false),
    e(VENDOR_INTEL, 0x2032, false),
    e(VENDOR_INTEL, 0x2033, false),
    e(VENDOR_INTEL, 0x2020, false),
    e(VENDOR_INTEL, 0x09a2, false),
    // Intel accelerators on the root bus: DSA SPR0, IAX SPR0, DSA GNRD,
    // DSA DMR, IAA DMR, QAT 4xxx/401xx/402xx/420xx/6xxx
    e(VENDOR_INTEL, 0x0b25, false),
    e(VENDOR_INTEL, 0x0cfe, false),
    e(VENDOR_INTEL, 0x11fb, false),
    e(VENDOR_INTEL, 0x1212, false),
    e(VENDOR_INTEL, 0x1216, false),
    e(VENDOR_INTEL, 0x4940, false),
    e(VENDOR_INTEL, 0x4942, false),
    e(VENDOR_INTEL, 0x4944, false),
    e(VENDOR_INTEL, 0x4946, false),
    e(VENDOR_INTEL, 0x4948, false),
    // Google SoCs (PCI_ANY_ID)
    AllowEntry {
        vendor: VENDOR_GOOGLE,
        device: None,
        req_same_host_bridge: false,
    },
    // NVIDIA CPUs (Grace)
    e(VENDOR_NVIDIA, 0x2f95, false),
    e(VENDOR_NVIDIA, 0x2f96, false),
    e(VENDOR_NVIDIA, 0x2f97, false),
    e(VENDOR_NVIDIA, 0x2f98, false),
    // Zhaoxin KX-6000/KH-40000/KX-6000G/KX-7000, KH-50000
    e(VENDOR_ZHAOXIN, 0x1003, true),
    e(VENDOR_ZHAOXIN, 0x1005, true),
    e(VENDOR_ZHAOXIN, 0x1006, true),
    e(VENDOR_ZHAOXIN, 0x1007, true),
    e(VENDOR_ZHAOXIN, 0x1008, false),
];

/// The first entry matching `vendor:device`, like `__host_bridge_whitelist`.
pub fn lookup(vendor: u16, device: u16) -> Option<&'static AllowEntry> {
    P2PDMA_ALLOW_LIST
        .iter()
        .find(|en| en.vendor == vendor && en.device.is_none_or(|d| d == device))
}

/// `__host_bridge_whitelist(host, same_host_bridge)` for an identity.
pub fn allows(vendor: u16, device: u16, same_host_bridge: bool) -> bool {
    lookup(vendor, device).is_some_and(|en| same_host_bridge || !en.req_same_host_bridge)
}
