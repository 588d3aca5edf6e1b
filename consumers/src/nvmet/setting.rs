//! The `p2pmem` attribute (drivers/nvme/target/configfs.c, parsed by
//! drivers/pci/p2pdma.c `pci_p2pdma_enable_store`):
//!
//! 1. a PCI device name (`0000:03:00.0`, compared like `sysfs_streq`: one
//!    trailing newline ignored) selects that device, which must have
//!    published p2pmem (`pci_has_p2pmem`), else "PCI device has no
//!    peer-to-peer memory";
//! 2. otherwise a string that starts with `0` or `1` and continues with a
//!    printable character is "No such PCI device" (so `0000:09:00.0` naming
//!    nothing is not read as "0");
//! 3. otherwise `kstrtobool` (lib/kstrtox.c): `y Y t T 1` → on,
//!    `n N f F 0` → off, `on`/`off` (either case) — only the first one or
//!    two characters count, as in the kernel; anything else is "No such PCI
//!    device".

use super::error::NvmetError;
use dma_api::{Bdf, DmaContext};

/// What the attribute selects.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum P2pMemSetting {
    /// "0": system memory only.
    Off,
    /// "1": p2pmem from whichever published provider suits every client.
    Auto,
    /// That device's p2pmem.
    Device(Bdf),
}

/// `kstrtobool`.
fn kstrtobool(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    match b.first()? {
        b'y' | b'Y' | b't' | b'T' | b'1' => Some(true),
        b'n' | b'N' | b'f' | b'F' | b'0' => Some(false),
        b'o' | b'O' => match b.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl P2pMemSetting {
    /// Parses `page` (what was written to the attribute) against the
    /// devices and p2pmem of `ctx`.
    pub fn parse(page: &str, ctx: &DmaContext) -> Result<Self, NvmetError> {
        let name = page.strip_suffix('\n').unwrap_or(page);
        let found = name
            .parse::<Bdf>()
            .ok()
            .filter(|b| b.to_string() == name)
            .filter(|&b| ctx.topology.read().lookup(b).is_some());
        if let Some(bdf) = found {
            let published = ctx
                .p2pmem_stats(bdf)
                .ok()
                .flatten()
                .is_some_and(|s| s.published);
            return if published {
                Ok(Self::Device(bdf))
            } else {
                Err(NvmetError::NoP2pMem { device: bdf })
            };
        }
        let b = page.as_bytes();
        let one_char_digit = matches!(b.first(), Some(b'0' | b'1'))
            && b.get(1).is_some_and(|c| !c.is_ascii_control());
        if !one_char_digit {
            match kstrtobool(page) {
                Some(true) => return Ok(Self::Auto),
                Some(false) => return Ok(Self::Off),
                None => {}
            }
        }
        Err(NvmetError::NoSuchDevice {
            input: name.to_string(),
        })
    }
}
