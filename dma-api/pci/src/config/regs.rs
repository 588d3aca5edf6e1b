//! Config-space register offsets and bit values.
//!
//! The numbers are the PCI / PCI Express specification values, named as in
//! Linux `include/uapi/linux/pci_regs.h` so readers can cross-check them.

/// Size of the standard header every function has (`PCI_STD_HEADER_SIZEOF`).
pub const STD_HEADER_SIZE: usize = 64;
/// Size of conventional PCI config space (`PCI_CFG_SPACE_SIZE`).
pub const CFG_SPACE_SIZE: usize = 256;
/// Size of PCI Express config space (`PCI_CFG_SPACE_EXP_SIZE`).
pub const CFG_SPACE_EXP_SIZE: usize = 4096;

/// Vendor ID, 16 bits.
pub const VENDOR_ID: usize = 0x00;
/// Device ID, 16 bits.
pub const DEVICE_ID: usize = 0x02;
/// Command register, 16 bits.
pub const COMMAND: usize = 0x04;
/// Status register, 16 bits.
pub const STATUS: usize = 0x06;
/// Status bit: the function has a capability list (`PCI_STATUS_CAP_LIST`).
pub const STATUS_CAP_LIST: u16 = 0x10;
/// Class code (high 24 bits) and revision (low 8 bits), 32 bits.
pub const CLASS_REVISION: usize = 0x08;
/// Header type, 8 bits; bit 7 is the multi-function flag.
pub const HEADER_TYPE: usize = 0x0e;
/// Header-type layout mask (`PCI_HEADER_TYPE_MASK`).
pub const HEADER_TYPE_MASK: u8 = 0x7f;
/// Header-type multi-function bit (`PCI_HEADER_TYPE_MFD`).
pub const HEADER_TYPE_MFD: u8 = 0x80;
/// First base address register.
pub const BASE_ADDRESS_0: usize = 0x10;
/// BAR bit 0: 1 = I/O space.
pub const BAR_SPACE_IO: u32 = 0x01;
/// Memory BAR type field, bits 2:1.
pub const BAR_MEM_TYPE_MASK: u32 = 0x06;
/// Memory BAR type: 32-bit.
pub const BAR_MEM_TYPE_32: u32 = 0x00;
/// Memory BAR type: below 1 MiB (obsolete).
pub const BAR_MEM_TYPE_1M: u32 = 0x02;
/// Memory BAR type: 64-bit (uses the next BAR slot for the high half).
pub const BAR_MEM_TYPE_64: u32 = 0x04;
/// Memory BAR prefetchable bit.
pub const BAR_MEM_PREFETCH: u32 = 0x08;
/// Address bits of a memory BAR.
pub const BAR_MEM_MASK: u32 = !0x0f;
/// Address bits of an I/O BAR.
pub const BAR_IO_MASK: u32 = !0x03;
/// Type 1 header: primary bus number.
pub const PRIMARY_BUS: usize = 0x18;
/// Type 1 header: secondary bus number.
pub const SECONDARY_BUS: usize = 0x19;
/// Type 1 header: subordinate (highest) bus number.
pub const SUBORDINATE_BUS: usize = 0x1a;
/// Capability pointer for header types 0 and 1 (`PCI_CAPABILITY_LIST`).
pub const CAPABILITY_LIST: usize = 0x34;
/// Capability pointer for header type 2, CardBus (`PCI_CB_CAPABILITY_LIST`).
pub const CB_CAPABILITY_LIST: usize = 0x14;

/// Bound on the standard capability walk (`PCI_FIND_CAP_TTL` in
/// drivers/pci/pci.c): (256 - 64) / 4 dword slots.
pub const FIND_CAP_TTL: usize = 48;
/// Capability ID of PCI Express (`PCI_CAP_ID_EXP`).
pub const CAP_ID_EXP: u8 = 0x10;
/// PCI Express capabilities register, 16 bits at cap + 2 (`PCI_EXP_FLAGS`).
pub const EXP_FLAGS: usize = 2;
/// Capability version field of `PCI_EXP_FLAGS`.
pub const EXP_FLAGS_VERS: u16 = 0x000f;
/// Device/port type field of `PCI_EXP_FLAGS`, bits 7:4.
pub const EXP_FLAGS_TYPE: u16 = 0x00f0;

/// Extended capabilities start here.
pub const EXT_CAP_START: usize = 0x100;
/// Bound on the extended walk, as drivers/pci/pci.c computes it:
/// (4096 - 256) / 8 capabilities of at least 8 bytes.
pub const EXT_CAP_TTL: usize = (CFG_SPACE_EXP_SIZE - CFG_SPACE_SIZE) / 8;
/// Extended capability ID of ACS (`PCI_EXT_CAP_ID_ACS`).
pub const EXT_CAP_ID_ACS: u16 = 0x000d;
/// ACS capability register, 16 bits at cap + 4 (`PCI_ACS_CAP`).
pub const ACS_CAP: usize = 0x04;
/// ACS egress control vector size, 8 bits at cap + 5 (`PCI_ACS_EGRESS_BITS`).
pub const ACS_EGRESS_BITS: usize = 0x05;
/// ACS control register, 16 bits at cap + 6 (`PCI_ACS_CTRL`).
pub const ACS_CTRL: usize = 0x06;
