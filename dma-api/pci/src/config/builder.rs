//! Builds config-space images byte by byte, for tests, fuzz seeds and
//! simulated machines. It writes registers; it does not validate them, so it
//! can also build the broken images the parser must survive.

use super::regs;
use alloc::vec;
use alloc::vec::Vec;

/// A config-space image under construction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigBuilder {
    bytes: Vec<u8>,
    last_cap: Option<usize>,
    last_ext: Option<usize>,
}

impl ConfigBuilder {
    /// A zeroed image of `size` bytes (64, 256 or 4096) with IDs, class,
    /// revision and header type set.
    pub fn new(size: usize, vendor: u16, device: u16, class: u32, header_type: u8) -> Self {
        let mut b = Self {
            bytes: vec![0; size],
            last_cap: None,
            last_ext: None,
        };
        b.put16(regs::VENDOR_ID, vendor);
        b.put16(regs::DEVICE_ID, device);
        b.put32(regs::CLASS_REVISION, class << 8);
        b.put8(regs::HEADER_TYPE, header_type);
        b
    }

    /// Writes a byte (ignored past the end of the image).
    pub fn put8(&mut self, off: usize, v: u8) -> &mut Self {
        if let Some(b) = self.bytes.get_mut(off) {
            *b = v;
        }
        self
    }

    /// Writes a little-endian 16-bit value.
    pub fn put16(&mut self, off: usize, v: u16) -> &mut Self {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.put8(off + i, b);
        }
        self
    }

    /// Writes a little-endian 32-bit value.
    pub fn put32(&mut self, off: usize, v: u32) -> &mut Self {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.put8(off + i, b);
        }
        self
    }

    /// Sets the revision ID.
    pub fn revision(&mut self, rev: u8) -> &mut Self {
        self.put8(regs::CLASS_REVISION, rev)
    }

    /// Writes BAR slot `index` (raw dword, flag bits included).
    pub fn bar(&mut self, index: usize, raw: u32) -> &mut Self {
        self.put32(regs::BASE_ADDRESS_0 + 4 * index, raw)
    }

    /// Sets primary/secondary/subordinate bus numbers (type 1 header).
    pub fn buses(&mut self, primary: u8, secondary: u8, subordinate: u8) -> &mut Self {
        self.put8(regs::PRIMARY_BUS, primary);
        self.put8(regs::SECONDARY_BUS, secondary);
        self.put8(regs::SUBORDINATE_BUS, subordinate)
    }

    /// Appends a standard capability with `id` at `off`, linking it from the
    /// previous one (or from 0x34) and setting the status bit.
    pub fn cap(&mut self, off: u8, id: u8) -> &mut Self {
        let status = u16::from_le_bytes([
            self.bytes.get(regs::STATUS).copied().unwrap_or(0),
            self.bytes.get(regs::STATUS + 1).copied().unwrap_or(0),
        ]);
        self.put16(regs::STATUS, status | regs::STATUS_CAP_LIST);
        let link = self.last_cap.map_or(regs::CAPABILITY_LIST, |c| c + 1);
        self.put8(link, off);
        self.put8(usize::from(off), id);
        self.put8(usize::from(off) + 1, 0);
        self.last_cap = Some(usize::from(off));
        self
    }

    /// Appends a PCI Express capability (version 2) of `port_type` at `off`.
    pub fn pcie(&mut self, off: u8, port_type: u8) -> &mut Self {
        self.cap(off, regs::CAP_ID_EXP);
        self.put16(
            usize::from(off) + regs::EXP_FLAGS,
            (u16::from(port_type) << 4) | 2,
        )
    }

    /// Appends an extended capability (`id`, version 1) at `off`, linking it
    /// from the previous one.
    pub fn ext_cap(&mut self, off: u16, id: u16) -> &mut Self {
        if let Some(prev) = self.last_ext {
            let h = self.read32(prev);
            self.put32(prev, (h & 0x000f_ffff) | (u32::from(off) << 20));
        }
        self.put32(usize::from(off), u32::from(id) | (1 << 16));
        self.last_ext = Some(usize::from(off));
        self
    }

    /// Appends an ACS extended capability at `off` with raw capability and
    /// control registers.
    pub fn acs(&mut self, off: u16, cap: u16, ctrl: u16) -> &mut Self {
        self.ext_cap(off, regs::EXT_CAP_ID_ACS);
        self.put16(usize::from(off) + regs::ACS_CAP, cap);
        self.put16(usize::from(off) + regs::ACS_CTRL, ctrl)
    }

    fn read32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = self.bytes.get(off + i).copied().unwrap_or(0);
        }
        u32::from_le_bytes(b)
    }

    /// The image.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The image, consumed.
    pub fn build(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}
