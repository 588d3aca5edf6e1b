//! Base address registers as config space holds them.
//!
//! A BAR value gives the bus address and the kind only; its size needs the
//! write-ones/read-back probe Linux does in `__pci_read_base`
//! (drivers/pci/probe.c), which a byte buffer cannot do. Sizes come from the
//! sysfs `resource` file instead. Kind decoding matches `decode_bar`.

use super::bytes::read_u32;
use super::error::ConfigError;
use super::regs;
use crate::types::BusAddr;
use alloc::vec::Vec;

/// What a BAR decodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BarKind {
    /// I/O port space.
    Io,
    /// 32-bit memory space (also used for the reserved type 3, as Linux does).
    Mem32,
    /// Memory below 1 MiB (obsolete type 1; Linux treats it as 32-bit).
    Mem1M,
    /// 64-bit memory space; occupies this slot and the next.
    Mem64,
}

/// One BAR decoded from config space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConfigBar {
    /// BAR index (0-based slot; a 64-bit BAR's high half has no entry).
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Prefetchable memory (always false for I/O).
    pub prefetchable: bool,
    /// The programmed bus address (flag bits masked off).
    pub addr: BusAddr,
}

/// Decodes `slots` BARs starting at 0x10. Slots reading 0 (unimplemented or
/// never assigned) are skipped. Odd values are pushed to `issues`.
pub fn decode_bars(
    buf: &[u8],
    slots: usize,
    issues: &mut Vec<ConfigError>,
) -> Result<Vec<ConfigBar>, ConfigError> {
    let mut bars = Vec::new();
    let mut i = 0usize;
    while i < slots {
        let index = i as u8;
        let raw = read_u32(buf, regs::BASE_ADDRESS_0 + 4 * i)?;
        i += 1;
        if raw == 0 {
            continue;
        }
        if raw & regs::BAR_SPACE_IO != 0 {
            bars.push(ConfigBar {
                index,
                kind: BarKind::Io,
                prefetchable: false,
                addr: BusAddr::new(u64::from(raw & regs::BAR_IO_MASK)),
            });
            continue;
        }
        let prefetchable = raw & regs::BAR_MEM_PREFETCH != 0;
        let low = u64::from(raw & regs::BAR_MEM_MASK);
        let (kind, addr) = match raw & regs::BAR_MEM_TYPE_MASK {
            regs::BAR_MEM_TYPE_64 => {
                if i >= slots {
                    issues.push(ConfigError::Bar64AtEnd { index });
                    (BarKind::Mem64, low)
                } else {
                    let high = read_u32(buf, regs::BASE_ADDRESS_0 + 4 * i)?;
                    i += 1;
                    (BarKind::Mem64, low | (u64::from(high) << 32))
                }
            }
            regs::BAR_MEM_TYPE_1M => (BarKind::Mem1M, low),
            regs::BAR_MEM_TYPE_32 => (BarKind::Mem32, low),
            _ => {
                issues.push(ConfigError::ReservedBarType { index, value: raw });
                (BarKind::Mem32, low)
            }
        };
        bars.push(ConfigBar {
            index,
            kind,
            prefetchable,
            addr: BusAddr::new(addr),
        });
    }
    Ok(bars)
}
