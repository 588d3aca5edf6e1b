//! PCI addresses: domain:bus:device.function, parsed and printed like `lspci`.

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

/// A PCI function address (`0000:03:00.0`). The domain is 32-bit because
/// Linux allows domains above 0xffff (VMD); it prints with at least four hex
/// digits like `lspci -D`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bdf {
    domain: u32,
    bus: u8,
    dev: u8,
    func: u8,
}

/// Why a string is not a BDF; carries the offending input.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BdfParseError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for BdfParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PCI address {:?}: {}", self.input, self.reason)
    }
}

impl core::error::Error for BdfParseError {}

impl Bdf {
    /// Builds a BDF; `None` if `dev > 31` or `func > 7`.
    pub const fn new(domain: u32, bus: u8, dev: u8, func: u8) -> Option<Self> {
        if dev > 31 || func > 7 {
            return None;
        }
        Some(Self {
            domain,
            bus,
            dev,
            func,
        })
    }

    /// The PCI domain (segment).
    pub const fn domain(self) -> u32 {
        self.domain
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device (slot) number, 0..=31.
    pub const fn dev(self) -> u8 {
        self.dev
    }

    /// The function number, 0..=7.
    pub const fn func(self) -> u8 {
        self.func
    }

    /// Linux's 16-bit requester ID / `devfn` encoding: bus << 8 | dev << 3 | func.
    pub const fn requester_id(self) -> u16 {
        ((self.bus as u16) << 8) | ((self.dev as u16) << 3) | self.func as u16
    }

    /// The same slot with another function number (`None` if `func > 7`).
    pub const fn with_func(self, func: u8) -> Option<Self> {
        Self::new(self.domain, self.bus, self.dev, func)
    }

    /// True if both are functions of one physical slot (same domain, bus, device).
    pub const fn same_slot(self, other: Bdf) -> bool {
        self.domain == other.domain && self.bus == other.bus && self.dev == other.dev
    }
}

fn hex_field(s: &str, max: u32, input: &str, what: &'static str) -> Result<u32, BdfParseError> {
    let err = |reason| BdfParseError {
        input: input.to_string(),
        reason,
    };
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(what));
    }
    let v = u32::from_str_radix(s, 16).map_err(|_| err(what))?;
    if v > max {
        return Err(err(what));
    }
    Ok(v)
}

impl FromStr for Bdf {
    type Err = BdfParseError;

    /// Accepts `DDDD:BB:DD.F` and `BB:DD.F` (domain 0), hex, like `lspci -s`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let (rest, func) = s.rsplit_once('.').ok_or(BdfParseError {
            input: input.to_string(),
            reason: "missing '.function'",
        })?;
        let mut parts = rest.rsplitn(3, ':');
        let dev = parts.next().unwrap_or("");
        let bus = parts.next().ok_or(BdfParseError {
            input: input.to_string(),
            reason: "missing 'bus:'",
        })?;
        let domain = parts.next();
        let func = hex_field(func, 7, input, "function must be 0..7")?;
        let dev = hex_field(dev, 31, input, "device must be 00..1f")?;
        let bus = hex_field(bus, 0xff, input, "bus must be 00..ff")?;
        let domain = match domain {
            Some(d) => hex_field(d, u32::MAX, input, "domain must be hex")?,
            None => 0,
        };
        Ok(Self {
            domain,
            bus: bus as u8,
            dev: dev as u8,
            func: func as u8,
        })
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.dev, self.func
        )
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bdf({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn parses_both_forms() {
        let a: Bdf = "0000:03:00.0".parse().unwrap();
        let b: Bdf = "03:00.0".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(format!("{a}"), "0000:03:00.0");
        let c: Bdf = "10000:ff:1f.7".parse().unwrap();
        assert_eq!(format!("{c}"), "10000:ff:1f.7");
        assert_eq!(c.requester_id(), 0xffff);
    }

    #[test]
    fn rejects_garbage_with_the_input() {
        for bad in [
            "",
            "03:00",
            "03:20.0",
            "03:00.8",
            "x3:00.0",
            "0000:100:00.0",
            ":00.0",
            "0:0:0:0.0",
        ] {
            let e = bad.parse::<Bdf>().unwrap_err();
            assert_eq!(e.input, bad);
        }
        assert_eq!(Bdf::new(0, 0, 32, 0), None);
    }
}
