//! Random machines that are valid by construction.
//!
//! A [`MachineSpec`] is the shape of a machine (host bridges with their
//! windows and dma-ranges, root ports, switches, multi-function endpoints,
//! ACS capability and control bits, BARs, RAM, stolen-RAM carve-outs,
//! p2pmem registrations, arch and CPU); every address is assigned when it
//! is rendered, so no shape can produce overlapping BARs, BARs outside
//! their window, a bridge with children on two buses or any other machine
//! the loader refuses. It renders to a machine file
//! ([`MachineSpec::to_toml`], docs/machine-format.md), which is both how it
//! becomes a [`Machine`] (through the same loader as every file) and how a
//! failing input is replayed by hand (`unidma check`, `unidma map`).

use crate::machine::{ArchName, Machine, MachineError};
use arbitrary::{Arbitrary, Unstructured};
use core::fmt::Write as _;

/// The ACS bits in the machine-file spelling, in bit order.
const ACS_NAMES: [&str; 7] = ["SV", "TB", "RR", "CR", "UF", "EC", "DT"];

/// Where the 32-bit MMIO windows start (above every RAM and carve-out).
const MMIO32_BASE: u64 = 0xc000_0000;
/// Size of each host bridge's 32-bit window.
const MMIO32_SIZE: u64 = 0x0800_0000;
/// Where the 64-bit MMIO windows start.
const MMIO64_BASE: u64 = 0x40_0000_0000;
/// Size of each host bridge's 64-bit window.
const MMIO64_SIZE: u64 = 0x10_0000_0000;
/// Bus offset of a translated 64-bit window (bus = cpu - this).
const MMIO64_BUS_OFFSET: u64 = 0x20_0000_0000;
/// Bus offset of a dma-range with an offset (bus = cpu + this).
const DMA_RANGE_OFFSET: u64 = 0x10_0000_0000;
/// Stolen RAM lives between low RAM and the 32-bit MMIO windows.
const STOLEN_LIMIT: u64 = MMIO32_BASE;
/// High RAM starts here.
const HIGH_RAM_BASE: u64 = 1 << 32;

/// ACS capability and control bits of one port or function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AcsSpec {
    /// Implemented bits (bit i = the i-th ACS capability name).
    pub cap: u8,
    /// Enabled bits, a subset of `cap`.
    pub ctrl: u8,
}

/// Control bits `ctrl` made a configuration PCI software sets up: inside
/// the capability, and P2P Egress Control only together with Request
/// Redirect. EC alone blocks a peer request at the port with an ACS
/// Violation (the egress vector is not modelled: every peer), while the P2P
/// oracle (Linux `pci_bridge_has_acs_redir`) counts it as a redirect and
/// routes through the root complex, which the request then never reaches;
/// Linux's `pci_std_enable_acs` never enables EC, and `config_acs=` users
/// pair it with RR.
pub fn normalize_acs_ctrl(cap: u8, ctrl: u8) -> u8 {
    const RR: u8 = 1 << 2;
    const EC: u8 = 1 << 5;
    let mut c = ctrl & cap;
    if c & EC != 0 && c & RR == 0 {
        c &= !EC;
    }
    c
}

impl AcsSpec {
    fn names(bits: u8) -> String {
        ACS_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join("|")
    }
}

impl<'a> Arbitrary<'a> for AcsSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let cap = u.int_in_range(0..=0x7fu8)?;
        let ctrl = normalize_acs_ctrl(cap, u.arbitrary::<u8>()?);
        Ok(Self { cap, ctrl })
    }
}

/// One memory BAR (its address is assigned at render time).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BarSpec {
    /// log2 of the size: 14..=20 for 32-bit BARs, 16..=26 for 64-bit ones.
    pub size_lg2: u8,
    /// 64-bit BAR in the 64-bit window.
    pub mem64: bool,
    /// Prefetchable.
    pub prefetchable: bool,
}

impl<'a> Arbitrary<'a> for BarSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mem64 = u.arbitrary()?;
        let size_lg2 = if mem64 {
            u.int_in_range(16..=26)?
        } else {
            u.int_in_range(14..=20)?
        };
        Ok(Self {
            size_lg2,
            mem64,
            prefetchable: mem64 && u.arbitrary()?,
        })
    }
}

/// A p2pmem registration of one of the function's BARs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct P2pSpec {
    /// Which of the function's BARs (modulo their number).
    pub bar: u8,
    /// Offset in pages (clipped to the BAR).
    pub offset_pages: u8,
    /// Size in pages, 0 = the rest of the BAR.
    pub size_pages: u8,
    /// Published.
    pub publish: bool,
}

/// One PCI function (endpoint).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FnSpec {
    /// Untrusted (external-facing) device.
    pub untrusted: bool,
    /// 32-bit DMA mask instead of 64.
    pub dma32: bool,
    /// Cache-coherent DMA.
    pub coherent: bool,
    /// Memory BARs (0..=2, at indices 0 and 2).
    pub bars: Vec<BarSpec>,
    /// A p2pmem registration (needs a BAR).
    pub p2pmem: Option<P2pSpec>,
    /// A stolen-RAM carve-out of `16 MiB << n` (n in 0..=2).
    pub stolen: Option<u8>,
    /// ACS of the function (multi-function devices).
    pub acs: Option<AcsSpec>,
}

impl<'a> Arbitrary<'a> for FnSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let nbars = u.int_in_range(0..=2)?;
        let bars = (0..nbars)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<Vec<BarSpec>>>()?;
        let p2pmem = if !bars.is_empty() && u.ratio(1, 2)? {
            Some(P2pSpec {
                bar: u.arbitrary()?,
                offset_pages: u.int_in_range(0..=3)?,
                size_pages: u.int_in_range(0..=8)?,
                publish: u.arbitrary()?,
            })
        } else {
            None
        };
        Ok(Self {
            untrusted: u.ratio(1, 5)?,
            dma32: u.ratio(1, 4)?,
            coherent: !u.ratio(1, 6)?,
            bars,
            p2pmem,
            stolen: if u.ratio(1, 6)? {
                Some(u.int_in_range(0..=2)?)
            } else {
                None
            },
            acs: if u.ratio(1, 4)? {
                Some(u.arbitrary()?)
            } else {
                None
            },
        })
    }
}

/// What sits below a root port or a switch downstream port.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Below {
    /// An empty slot.
    Nothing,
    /// A device with 1..=3 functions (more than one: multi-function).
    Device(Vec<FnSpec>),
    /// A switch: its downstream ports (1..=3), each with ACS and maybe a
    /// device. Only below a root port.
    Switch(Vec<(AcsSpec, Option<Vec<FnSpec>>)>),
}

fn functions(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<FnSpec>> {
    let n = if u.ratio(1, 4)? {
        u.int_in_range(2..=3)?
    } else {
        1
    };
    (0..n).map(|_| u.arbitrary()).collect()
}

/// A root port.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PortSpec {
    /// Its ACS, if it has the capability.
    pub acs: Option<AcsSpec>,
    /// What is below it.
    pub below: Below,
}

impl<'a> Arbitrary<'a> for PortSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let acs = if u.ratio(3, 4)? {
            Some(u.arbitrary()?)
        } else {
            None
        };
        let below = match u.int_in_range(0..=5)? {
            0 => Below::Nothing,
            1..=3 => Below::Device(functions(u)?),
            _ => {
                let n = u.int_in_range(1..=3)?;
                let mut dps = Vec::new();
                for _ in 0..n {
                    let acs = u.arbitrary()?;
                    let dev = if u.ratio(4, 5)? {
                        Some(functions(u)?)
                    } else {
                        None
                    };
                    dps.push((acs, dev));
                }
                Below::Switch(dps)
            }
        };
        Ok(Self { acs, below })
    }
}

/// How a host bridge translates inbound RAM accesses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DmaRanges {
    /// No `dma_ranges`: identity over everything.
    Absent,
    /// Explicit identity windows over low and high RAM.
    Identity,
    /// Low RAM (and the carve-outs) at bus = cpu + 64 GiB; high RAM
    /// identity.
    Offset,
}

/// One host bridge and everything below it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BridgeSpec {
    /// An IOMMU translates its devices' DMA.
    pub iommu: bool,
    /// Forwards P2P reads / writes between its root ports.
    pub p2p_read: bool,
    /// See `p2p_read`.
    pub p2p_write: bool,
    /// Identifies as an allow-listed Intel root complex.
    pub allow_listed: bool,
    /// A host-bridge function at 00.0.
    pub hb_function: bool,
    /// Its 64-bit MMIO window has a bus offset.
    pub mmio64_offset: bool,
    /// Inbound translation.
    pub dma_ranges: DmaRanges,
    /// Root ports (1..=3), at device numbers 1..=3.
    pub ports: Vec<PortSpec>,
    /// Root-complex integrated endpoints (0..=2), at device numbers 8...
    pub rc_endpoints: Vec<FnSpec>,
}

impl<'a> Arbitrary<'a> for BridgeSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let nports = u.int_in_range(1..=3)?;
        let ports = (0..nports)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<Vec<PortSpec>>>()?;
        let nrc = u.int_in_range(0..=2)?;
        let rc_endpoints = (0..nrc)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<Vec<FnSpec>>>()?;
        Ok(Self {
            iommu: !u.ratio(1, 5)?,
            p2p_read: u.arbitrary()?,
            p2p_write: !u.ratio(1, 4)?,
            allow_listed: u.arbitrary()?,
            hb_function: u.arbitrary()?,
            mmio64_offset: u.ratio(1, 4)?,
            dma_ranges: *u.choose(&[
                DmaRanges::Absent,
                DmaRanges::Absent,
                DmaRanges::Identity,
                DmaRanges::Offset,
            ])?,
            ports,
            rc_endpoints,
        })
    }
}

/// A whole machine's shape.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MachineSpec {
    /// Architecture.
    pub arch: ArchName,
    /// `intel`, `amd` or `other`.
    pub cpu_vendor: &'static str,
    /// x86 family.
    pub cpu_family: u32,
    /// Low RAM `[0, low_ram)`: 1 or 2 GiB.
    pub low_ram: u64,
    /// RAM from 4 GiB up (0: none).
    pub high_ram: u64,
    /// Host bridges (1..=2), root buses 0x00 and 0x40.
    pub bridges: Vec<BridgeSpec>,
}

impl<'a> Arbitrary<'a> for MachineSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let arch = *u.choose(&[
            ArchName::X86_64,
            ArchName::X86_64,
            ArchName::X86_64,
            ArchName::Arm64,
            ArchName::Arm64,
            ArchName::Powerpc64,
            ArchName::Riscv64,
            ArchName::S390x,
        ])?;
        let (cpu_vendor, cpu_family) = *u.choose(&[
            ("intel", 6u32),
            ("amd", 0x17),
            ("amd", 0x19),
            ("amd", 0x15),
            ("other", 0),
        ])?;
        let low_ram = if u.arbitrary()? { 1 << 30 } else { 2 << 30 };
        let high_ram = u64::from(u.int_in_range(0..=8u8)?) << 30;
        let nbridges = if u.ratio(1, 4)? { 2 } else { 1 };
        let mut bridges = (0..nbridges)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<Vec<BridgeSpec>>>()?;
        if nbridges > 1 {
            // Peer traffic between host bridges goes out at the requester's
            // root complex with the CPU address (Linux maps MMIO 1:1,
            // `dma_direct_map_phys` with `DMA_ATTR_MMIO`); explicit
            // dma-ranges would leave it undecodable there.
            for b in &mut bridges {
                b.dma_ranges = DmaRanges::Absent;
            }
        }
        Ok(Self {
            arch,
            cpu_vendor,
            cpu_family,
            low_ram,
            high_ram,
            bridges,
        })
    }
}

/// Bump allocator for one window.
struct Bump {
    next: u64,
    end: u64,
}

impl Bump {
    fn take(&mut self, size: u64) -> Option<u64> {
        let at = self.next.div_ceil(size) * size;
        let end = at.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(at)
    }
}

/// Renders one function as a `[[device]]` table.
struct Render<'s> {
    out: String,
    stolen_next: u64,
    spec: &'s MachineSpec,
    devices: usize,
}

impl Render<'_> {
    #[allow(clippy::too_many_arguments)]
    fn function(
        &mut self,
        bdf: (u8, u8, u8),
        kind: &str,
        parent: Option<(u8, u8, u8)>,
        f: &FnSpec,
        multifunction: bool,
        w32: &mut Bump,
        w64: &mut Bump,
    ) {
        let out = &mut self.out;
        let _ = writeln!(out, "\n[[device]]");
        let _ = writeln!(out, "bdf = \"0000:{:02x}:{:02x}.{}\"", bdf.0, bdf.1, bdf.2);
        let _ = writeln!(out, "name = \"ep{}\"", self.devices);
        self.devices += 1;
        let _ = writeln!(out, "kind = \"{kind}\"");
        if let Some(p) = parent {
            let _ = writeln!(out, "parent = \"0000:{:02x}:{:02x}.{}\"", p.0, p.1, p.2);
        }
        let _ = writeln!(
            out,
            "vendor = 0x1d0f\ndevice = {:#x}\nclass = 0x010802",
            0x1000 + self.devices
        );
        if multifunction {
            let _ = writeln!(out, "multifunction = true");
        }
        if let Some(a) = f.acs.filter(|_| multifunction) {
            acs_lines(out, a);
        }
        let _ = writeln!(out, "dma_mask = {}", if f.dma32 { 32 } else { 64 });
        if !f.coherent {
            let _ = writeln!(out, "coherent = false");
        }
        if f.untrusted {
            let _ = writeln!(out, "untrusted = true");
        }
        let mut placed = Vec::new();
        for (j, b) in f.bars.iter().enumerate() {
            let size = 1u64 << b.size_lg2;
            let addr = if b.mem64 {
                w64.take(size)
            } else {
                w32.take(size)
            };
            if let Some(addr) = addr {
                placed.push((j as u8 * 2, addr, size, *b));
            }
        }
        if !placed.is_empty() {
            let bars: Vec<String> = placed
                .iter()
                .map(|(i, addr, size, b)| {
                    format!(
                        "{{ index = {i}, addr = {addr:#x}, size = {size:#x}, mem64 = {}, prefetchable = {} }}",
                        b.mem64, b.prefetchable
                    )
                })
                .collect();
            let _ = writeln!(out, "bars = [{}]", bars.join(", "));
        }
        if let (Some(p), false) = (f.p2pmem, placed.is_empty()) {
            let (index, _, size, _) = placed[p.bar as usize % placed.len()];
            let pages = size / 4096;
            let offset = (u64::from(p.offset_pages) % pages) * 4096;
            let left = size - offset;
            let len = (u64::from(p.size_pages) * 4096).min(left);
            let _ = writeln!(
                out,
                "p2pmem = [{{ bar = {index}, offset = {offset:#x}, size = {len:#x}, publish = {} }}]",
                p.publish
            );
        }
        if let Some(n) = f.stolen {
            let size = (16u64 << 20) << n;
            let at = self.stolen_next.div_ceil(size) * size;
            if at + size <= STOLEN_LIMIT {
                self.stolen_next = at + size;
                let _ = writeln!(out, "stolen_ram = {{ start = {at:#x}, size = {size:#x} }}");
            }
        }
    }
}

fn acs_lines(out: &mut String, a: AcsSpec) {
    if a.cap != 0 {
        let _ = writeln!(out, "acs_cap = \"{}\"", AcsSpec::names(a.cap));
        if a.ctrl != 0 {
            let _ = writeln!(out, "acs_ctrl = \"{}\"", AcsSpec::names(a.ctrl));
        }
    }
}

fn bridge_fn(out: &mut String, bdf: (u8, u8, u8), kind: &str, parent: Option<(u8, u8, u8)>) {
    let _ = writeln!(
        out,
        "\n[[device]]\nbdf = \"0000:{:02x}:{:02x}.{}\"\nkind = \"{kind}\"\nvendor = 0x10b5\ndevice = 0x8747\nclass = 0x060400",
        bdf.0, bdf.1, bdf.2
    );
    if let Some(p) = parent {
        let _ = writeln!(out, "parent = \"0000:{:02x}:{:02x}.{}\"", p.0, p.1, p.2);
    }
}

impl MachineSpec {
    /// The machine file of this shape.
    pub fn to_toml(&self) -> String {
        let mut r = Render {
            out: String::new(),
            stolen_next: self.low_ram,
            spec: self,
            devices: 0,
        };
        let s = r.spec;
        let _ = writeln!(
            r.out,
            "[machine]\nname = \"fuzz\"\narch = \"{}\"\ncpu_vendor = \"{}\"\ncpu_family = {}",
            s.arch, s.cpu_vendor, s.cpu_family
        );
        let _ = writeln!(r.out, "\n[[ram]]\nstart = 0x0\nsize = {:#x}", self.low_ram);
        if self.high_ram > 0 {
            let _ = writeln!(
                r.out,
                "\n[[ram]]\nstart = {HIGH_RAM_BASE:#x}\nsize = {:#x}",
                self.high_ram
            );
        }
        for (i, hb) in self.bridges.iter().enumerate() {
            let i = i as u64;
            let root = (i * 0x40) as u8;
            let m32 = MMIO32_BASE + i * MMIO32_SIZE;
            let m64 = MMIO64_BASE + i * MMIO64_SIZE;
            let bus64 = if hb.mmio64_offset {
                m64 - MMIO64_BUS_OFFSET
            } else {
                m64
            };
            let _ = writeln!(
                r.out,
                "\n[[host_bridge]]\nname = \"pci0000:{root:02x}\"\ndomain = 0\nbus = {root}\niommu = {}\np2p_read = {}\np2p_write = {}",
                hb.iommu, hb.p2p_read, hb.p2p_write
            );
            if hb.allow_listed {
                let _ = writeln!(r.out, "vendor = 0x8086\ndevice = 0x2030");
            }
            let _ = writeln!(
                r.out,
                "mmio = [{{ cpu = {m32:#x}, size = {MMIO32_SIZE:#x} }}, {{ cpu = {m64:#x}, bus = {bus64:#x}, size = {MMIO64_SIZE:#x} }}]"
            );
            let high = if self.high_ram > 0 {
                format!(
                    ", {{ cpu = {HIGH_RAM_BASE:#x}, size = {:#x} }}",
                    self.high_ram
                )
            } else {
                String::new()
            };
            match hb.dma_ranges {
                DmaRanges::Absent => {}
                DmaRanges::Identity => {
                    let _ = writeln!(
                        r.out,
                        "dma_ranges = [{{ cpu = 0x0, size = {STOLEN_LIMIT:#x} }}{high}]"
                    );
                }
                DmaRanges::Offset => {
                    let _ = writeln!(
                        r.out,
                        "dma_ranges = [{{ cpu = 0x0, bus = {DMA_RANGE_OFFSET:#x}, size = {STOLEN_LIMIT:#x} }}{high}]"
                    );
                }
            }
        }
        for (i, hb) in self.bridges.iter().enumerate() {
            let i = i as u64;
            let root = (i * 0x40) as u8;
            let mut next_bus = root + 1;
            let mut w32 = Bump {
                next: MMIO32_BASE + i * MMIO32_SIZE,
                end: MMIO32_BASE + (i + 1) * MMIO32_SIZE,
            };
            let mut w64 = Bump {
                next: MMIO64_BASE + i * MMIO64_SIZE,
                end: MMIO64_BASE + (i + 1) * MMIO64_SIZE,
            };
            if hb.hb_function {
                let _ = writeln!(
                    r.out,
                    "\n[[device]]\nbdf = \"0000:{root:02x}:00.0\"\nkind = \"pci_device\"\nvendor = 0x8086\ndevice = 0x2020\nclass = 0x060000"
                );
            }
            for (k, port) in hb.ports.iter().enumerate() {
                let rp = (root, k as u8 + 1, 0);
                bridge_fn(&mut r.out, rp, "root_port", None);
                if let Some(a) = port.acs {
                    acs_lines(&mut r.out, a);
                }
                let sec = next_bus;
                next_bus += 1;
                match &port.below {
                    Below::Nothing => {}
                    Below::Device(fns) => {
                        let multi = fns.len() > 1;
                        for (f, fs) in fns.iter().enumerate() {
                            r.function(
                                (sec, 0, f as u8),
                                "endpoint",
                                Some(rp),
                                fs,
                                multi,
                                &mut w32,
                                &mut w64,
                            );
                        }
                    }
                    Below::Switch(dps) => {
                        let up = (sec, 0, 0);
                        bridge_fn(&mut r.out, up, "switch_upstream", Some(rp));
                        let internal = next_bus;
                        next_bus += 1;
                        for (d, (acs, dev)) in dps.iter().enumerate() {
                            let dp = (internal, d as u8, 0);
                            bridge_fn(&mut r.out, dp, "switch_downstream", Some(up));
                            acs_lines(&mut r.out, *acs);
                            let child = next_bus;
                            next_bus += 1;
                            if let Some(fns) = dev {
                                let multi = fns.len() > 1;
                                for (f, fs) in fns.iter().enumerate() {
                                    r.function(
                                        (child, 0, f as u8),
                                        "endpoint",
                                        Some(dp),
                                        fs,
                                        multi,
                                        &mut w32,
                                        &mut w64,
                                    );
                                }
                            }
                        }
                    }
                }
            }
            for (k, f) in hb.rc_endpoints.iter().enumerate() {
                r.function(
                    (root, 8 + k as u8, 0),
                    "rc_endpoint",
                    None,
                    f,
                    false,
                    &mut w32,
                    &mut w64,
                );
            }
        }
        r.out
    }

    /// The machine, through the machine-file loader. A shape is valid by
    /// construction, so an error here is a bug of the generator (or of the
    /// loader).
    pub fn machine(&self) -> Result<Machine, MachineError> {
        Machine::from_toml_str("<fuzz machine>", &self.to_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_shape_loads() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for i in 0..300 {
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let spec = MachineSpec::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            if let Err(e) = spec.machine() {
                panic!("shape #{i} does not load: {e}\n{}", spec.to_toml());
            }
        }
    }
}
