//! Bounds-checked little-endian register reads from a config-space buffer.
//!
//! Config space is little-endian on every architecture (it is what the sysfs
//! `config` file returns). Every read names the bytes it needed on failure.

use super::error::ConfigError;

fn slice<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N], ConfigError> {
    let needed = off.saturating_add(N);
    buf.get(off..needed)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(ConfigError::Truncated {
            needed,
            len: buf.len(),
        })
}

/// The byte at `off`.
pub fn read_u8(buf: &[u8], off: usize) -> Result<u8, ConfigError> {
    slice::<1>(buf, off).map(|b| b[0])
}

/// The little-endian 16-bit register at `off`.
pub fn read_u16(buf: &[u8], off: usize) -> Result<u16, ConfigError> {
    slice::<2>(buf, off).map(u16::from_le_bytes)
}

/// The little-endian 32-bit register at `off`.
pub fn read_u32(buf: &[u8], off: usize) -> Result<u32, ConfigError> {
    slice::<4>(buf, off).map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_reports_truncation() {
        let b = [0x86, 0x80, 0x34, 0x12];
        assert_eq!(read_u16(&b, 0), Ok(0x8086));
        assert_eq!(read_u32(&b, 0), Ok(0x1234_8086));
        assert_eq!(read_u8(&b, 3), Ok(0x12));
        assert_eq!(
            read_u32(&b, 1),
            Err(ConfigError::Truncated { needed: 5, len: 4 })
        );
        assert_eq!(
            read_u16(&b, usize::MAX),
            Err(ConfigError::Truncated {
                needed: usize::MAX,
                len: 4
            })
        );
    }
}
