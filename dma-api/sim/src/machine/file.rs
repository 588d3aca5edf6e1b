//! The serde shape of a machine file (see docs/machine-format.md).

use core::fmt;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// An integer written as a TOML integer or a string (`"0x1_0000_0000"`,
/// `"16GiB"`, `"4K"`) in the one number grammar ([`super::num`]), for
/// values above `i64::MAX` or readability.
///
/// Deserialised by hand rather than as an untagged enum: serde buffers every
/// value of an untagged enum before trying the variants, and a machine file
/// of 65 536 functions has a few hundred thousand numbers.
#[derive(Clone, Debug)]
pub enum Num {
    /// A TOML integer.
    Int(i64),
    /// A string form.
    Str(String),
}

impl Num {
    /// The value, or why it is not a valid unsigned number.
    pub fn value(&self) -> Result<u64, String> {
        match self {
            Num::Int(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
            Num::Str(s) => super::num::parse_num(s).map_err(|e| e.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number: a TOML integer or a string such as \"0x1000\" or \"4K\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        // TOML integers are i64; a larger one cannot come from the file,
        // but keep the value rather than refuse it.
        Ok(i64::try_from(v).map_or_else(|_| Num::Str(v.to_string()), Num::Int))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
        Ok(Num::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Num, E> {
        Ok(Num::Str(v))
    }
}

/// The whole file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineFile {
    /// `[machine]`.
    pub machine: MachineSection,
    /// `[[ram]]`.
    #[serde(default)]
    pub ram: Vec<Spanned<RangeToml>>,
    /// `[[host_bridge]]`.
    #[serde(default)]
    pub host_bridge: Vec<Spanned<HostBridgeToml>>,
    /// `[[device]]`.
    #[serde(default)]
    pub device: Vec<Spanned<DeviceToml>>,
}

/// `[machine]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MachineSection {
    /// Label.
    pub name: String,
    /// Architecture name.
    pub arch: Spanned<String>,
    /// `intel`, `amd` or `other`.
    #[serde(default)]
    pub cpu_vendor: Option<Spanned<String>>,
    /// x86 family number.
    #[serde(default)]
    pub cpu_family: Option<Spanned<Num>>,
}

/// A `{start, size}` range.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RangeToml {
    /// First byte.
    pub start: Spanned<Num>,
    /// Size.
    pub size: Spanned<Num>,
}

/// A translation window.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct WindowToml {
    /// CPU start.
    pub cpu: Spanned<Num>,
    /// Bus start (default: same as `cpu`).
    #[serde(default)]
    pub bus: Option<Spanned<Num>>,
    /// Size.
    pub size: Spanned<Num>,
}

/// `[[host_bridge]]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HostBridgeToml {
    /// Label.
    pub name: String,
    /// PCI domain.
    #[serde(default)]
    pub domain: Option<Spanned<Num>>,
    /// Root bus.
    #[serde(default)]
    pub bus: Option<Spanned<Num>>,
    /// Allow-list identity vendor.
    #[serde(default)]
    pub vendor: Option<Spanned<Num>>,
    /// Allow-list identity device.
    #[serde(default)]
    pub device: Option<Spanned<Num>>,
    /// IOMMU present.
    #[serde(default = "yes")]
    pub iommu: bool,
    /// Forwards P2P reads.
    #[serde(default = "yes")]
    pub p2p_read: bool,
    /// Forwards P2P writes.
    #[serde(default = "yes")]
    pub p2p_write: bool,
    /// MMIO windows.
    #[serde(default)]
    pub mmio: Vec<Spanned<WindowToml>>,
    /// DMA ranges (default: identity over everything).
    #[serde(default)]
    pub dma_ranges: Option<Vec<Spanned<WindowToml>>>,
    /// NUMA node (0 to 1023; -1 or absent: none).
    #[serde(default)]
    pub numa_node: Option<Spanned<i64>>,
}

fn yes() -> bool {
    true
}

/// One BAR.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BarToml {
    /// Index 0..=5.
    pub index: Spanned<Num>,
    /// CPU physical address.
    pub addr: Spanned<Num>,
    /// Size.
    pub size: Spanned<Num>,
    /// 64-bit.
    #[serde(default)]
    pub mem64: bool,
    /// Prefetchable.
    #[serde(default)]
    pub prefetchable: bool,
    /// I/O space instead of memory.
    #[serde(default)]
    pub io: bool,
}

/// A p2pmem registration.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct P2pMemToml {
    /// BAR index.
    pub bar: Spanned<Num>,
    /// Offset into the BAR.
    #[serde(default)]
    pub offset: Option<Spanned<Num>>,
    /// Size (0 or absent: rest of the BAR).
    #[serde(default)]
    pub size: Option<Spanned<Num>>,
    /// Published for other drivers.
    #[serde(default)]
    pub publish: bool,
}

/// `[[device]]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DeviceToml {
    /// Address.
    pub bdf: Spanned<String>,
    /// Label (unique, and not a BDF).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Port type name.
    pub kind: Spanned<String>,
    /// Vendor ID.
    pub vendor: Spanned<Num>,
    /// Device ID.
    pub device: Spanned<Num>,
    /// Class code.
    #[serde(default)]
    pub class: Option<Spanned<Num>>,
    /// Upstream bridge.
    #[serde(default)]
    pub parent: Option<Spanned<String>>,
    /// ACS capability bits.
    #[serde(default)]
    pub acs_cap: Option<Spanned<String>>,
    /// ACS control bits.
    #[serde(default)]
    pub acs_ctrl: Option<Spanned<String>>,
    /// Multi-function.
    #[serde(default)]
    pub multifunction: bool,
    /// DMA mask width.
    #[serde(default)]
    pub dma_mask: Option<Spanned<Num>>,
    /// Coherent DMA.
    #[serde(default = "yes")]
    pub coherent: bool,
    /// Untrusted.
    #[serde(default)]
    pub untrusted: bool,
    /// BARs.
    #[serde(default)]
    pub bars: Vec<Spanned<BarToml>>,
    /// p2pmem registrations.
    #[serde(default)]
    pub p2pmem: Vec<Spanned<P2pMemToml>>,
    /// Stolen-RAM carve-out owned by this device.
    #[serde(default)]
    pub stolen_ram: Option<Spanned<RangeToml>>,
    /// Device-private memory owned by this device.
    #[serde(default)]
    pub device_private: Option<Spanned<RangeToml>>,
    /// NUMA node (0 to 1023, -1 for none); absent: the host bridge's.
    #[serde(default)]
    pub numa_node: Option<Spanned<i64>>,
}
