//! Machine file → [`Machine`], with errors pointing at file:line:column.

use super::file::{DeviceToml, MachineFile, Num, RangeToml, WindowToml};
use super::{ArchName, Machine, MachineError};
use core::ops::Range;
use dma_pci::bdf::Bdf;
use dma_pci::mask::DmaMask;
use dma_pci::memmap::{MemMapError, MemRange, MemoryMap, RangeKind};
use dma_pci::p2p::P2pMemRegistry;
use dma_pci::topology::{
    Acs, AcsCap, Bar, BarSpace, CpuInfo, CpuVendor, DeviceRecord, HostBridgeRecord, NodeSpec,
    NumaNode, PortType, Topology, TopologyError,
};
use dma_pci::types::{BusAddr, PhysAddr};
use dma_pci::window::{AddrWindow, WindowMap};
use std::collections::HashMap;
use toml::Spanned;

/// Sizes above this are rejected as absurd (4 PiB).
const MAX_SIZE: u64 = 1 << 52;
/// More devices than this is not a machine file, it is an attack.
const MAX_DEVICES: usize = 1 << 16;

/// The path of a field (`device[3].bars[0].addr`), built only when an
/// error needs it: a string or a closure that formats one.
trait FieldName {
    fn name(&self) -> String;
}

impl FieldName for &str {
    fn name(&self) -> String {
        (*self).to_string()
    }
}

impl<F: Fn() -> String> FieldName for F {
    fn name(&self) -> String {
        self()
    }
}

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> MachineError {
        let start = span.start.min(self.src.len());
        let before = self.src.get(..start).unwrap_or("");
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let column = before.rfind('\n').map_or(before.chars().count(), |p| {
            before.get(p + 1..).map_or(0, |s| s.chars().count())
        }) + 1;
        MachineError {
            file: self.file.to_string(),
            line,
            column,
            field: field.into(),
            message: msg.into(),
        }
    }

    /// The value of `n`; `field` names it in an error (a closure, so the
    /// path of every number in a large file is only formatted on error).
    fn num(&self, n: &Spanned<Num>, field: impl FieldName) -> Result<u64, MachineError> {
        n.get_ref()
            .value()
            .map_err(|m| self.err(n.span(), field.name(), m))
    }

    fn num_max(
        &self,
        n: &Spanned<Num>,
        field: impl FieldName,
        max: u64,
    ) -> Result<u64, MachineError> {
        let v = self.num(n, || field.name())?;
        if v > max {
            return Err(self.err(
                n.span(),
                field.name(),
                format!("{v:#x} is above the maximum {max:#x}"),
            ));
        }
        Ok(v)
    }

    fn size(&self, n: &Spanned<Num>, field: impl FieldName) -> Result<u64, MachineError> {
        let v = self.num(n, || field.name())?;
        if v == 0 {
            return Err(self.err(n.span(), field.name(), "size must not be zero"));
        }
        if v > MAX_SIZE {
            return Err(self.err(
                n.span(),
                field.name(),
                format!("absurd size {v:#x} (limit {MAX_SIZE:#x})"),
            ));
        }
        Ok(v)
    }

    /// A `numa_node` value: -1 (none) or a node below [`NumaNode::LIMIT`].
    fn numa_node(&self, n: &Spanned<i64>, field: &str) -> Result<Option<NumaNode>, MachineError> {
        NumaNode::from_linux(*n.get_ref()).map_err(|e| self.err(n.span(), field, e.to_string()))
    }

    fn range(&self, r: &Spanned<RangeToml>, field: &str) -> Result<(PhysAddr, u64), MachineError> {
        let start = self.num(&r.get_ref().start, || format!("{field}.start"))?;
        let size = self.size(&r.get_ref().size, || format!("{field}.size"))?;
        if start.checked_add(size - 1).is_none() {
            return Err(self.err(r.span(), field, "range wraps the address space"));
        }
        Ok((PhysAddr::new(start), size))
    }

    fn windows(&self, ws: &[Spanned<WindowToml>], field: &str) -> Result<WindowMap, MachineError> {
        let mut out = Vec::new();
        for (i, w) in ws.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let cpu = self.num(&w.get_ref().cpu, || format!("{f}.cpu"))?;
            let bus = match &w.get_ref().bus {
                Some(b) => self.num(b, || format!("{f}.bus"))?,
                None => cpu,
            };
            let size = self.size(&w.get_ref().size, || format!("{f}.size"))?;
            out.push(AddrWindow {
                cpu_start: PhysAddr::new(cpu),
                bus_start: BusAddr::new(bus),
                size,
            });
        }
        WindowMap::new(out).map_err(|e| {
            let span = ws.first().map_or(0..0, |w| w.span());
            self.err(span, field, e.to_string())
        })
    }
}

fn toml_error(ctx: &Ctx<'_>, e: toml::de::Error) -> MachineError {
    let span = e.span().unwrap_or(0..0);
    let snippet: String = ctx
        .src
        .get(span.clone())
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    let snippet = snippet.lines().next().unwrap_or("").trim().to_string();
    let field = if snippet.is_empty() {
        "toml".to_string()
    } else {
        format!("`{snippet}`")
    };
    ctx.err(span, field, e.message().trim().to_string())
}

struct DevInfo<'a> {
    dev: &'a Spanned<DeviceToml>,
    idx: usize,
}

fn device_record(ctx: &Ctx<'_>, i: usize, d: &DeviceToml) -> Result<DeviceRecord, MachineError> {
    let f = |s: &str| format!("device[{i}].{s}");
    let bdf: Bdf = d
        .bdf
        .get_ref()
        .parse()
        .map_err(|e: dma_pci::bdf::BdfParseError| ctx.err(d.bdf.span(), f("bdf"), e.to_string()))?;
    let port = PortType::from_name(d.kind.get_ref()).ok_or_else(|| {
        let names: Vec<&str> = PortType::ALL.iter().map(|p| p.name()).collect();
        ctx.err(
            d.kind.span(),
            f("kind"),
            format!(
                "unknown kind {:?}; expected one of {}",
                d.kind.get_ref(),
                names.join(", ")
            ),
        )
    })?;
    let parent = match &d.parent {
        Some(p) => Some(
            p.get_ref()
                .parse::<Bdf>()
                .map_err(|e| ctx.err(p.span(), f("parent"), e.to_string()))?,
        ),
        None => None,
    };
    let mut r = DeviceRecord::new(bdf, port, parent);
    r.name = d.name.as_ref().map(|n| n.get_ref().clone());
    r.vendor = ctx.num_max(&d.vendor, || f("vendor"), 0xffff)? as u16;
    r.device = ctx.num_max(&d.device, || f("device"), 0xffff)? as u16;
    if let Some(c) = &d.class {
        r.class = ctx.num_max(c, || f("class"), 0xff_ffff)? as u32;
    }
    let acs_bits = |s: &Spanned<String>, name: &str| {
        Acs::parse_names(s.get_ref()).map_err(|w| {
            ctx.err(
                s.span(),
                f(name),
                format!("unknown ACS bit {w:?}; use SV TB RR CR UF EC DT"),
            )
        })
    };
    match (&d.acs_cap, &d.acs_ctrl) {
        (Some(cap), ctrl) => {
            let cap_bits = acs_bits(cap, "acs_cap")?;
            let ctrl_bits = match ctrl {
                Some(c) => {
                    let b = acs_bits(c, "acs_ctrl")?;
                    if !cap_bits.contains(b) {
                        return Err(ctx.err(
                            c.span(),
                            f("acs_ctrl"),
                            format!(
                                "control bits {} are not in acs_cap {cap_bits}",
                                b - cap_bits
                            ),
                        ));
                    }
                    b
                }
                None => Acs::empty(),
            };
            r.acs = Some(AcsCap {
                cap: cap_bits,
                ctrl: ctrl_bits,
            });
        }
        (None, Some(c)) => {
            return Err(ctx.err(c.span(), f("acs_ctrl"), "acs_ctrl given without acs_cap"));
        }
        (None, None) => {}
    }
    if let Some(n) = &d.numa_node {
        r.numa_node = NodeSpec::Given(ctx.numa_node(n, &f("numa_node"))?);
    }
    r.multifunction = d.multifunction;
    r.coherent = d.coherent;
    r.untrusted = d.untrusted;
    if let Some(m) = &d.dma_mask {
        let bits = ctx.num_max(m, || f("dma_mask"), 64)? as u32;
        r.dma_mask =
            DmaMask::new(bits).map_err(|e| ctx.err(m.span(), f("dma_mask"), e.to_string()))?;
    }
    for (j, b) in d.bars.iter().enumerate() {
        let bf = |s: &str| format!("device[{i}].bars[{j}].{s}");
        let bt = b.get_ref();
        let index = ctx.num_max(&bt.index, || bf("index"), 5)? as u8;
        let addr = ctx.num(&bt.addr, || bf("addr"))?;
        let size = ctx.size(&bt.size, || bf("size"))?;
        r.bars.push(Bar {
            index,
            addr: PhysAddr::new(addr),
            size,
            space: if bt.io { BarSpace::Io } else { BarSpace::Mem },
            is_64: bt.mem64,
            prefetchable: bt.prefetchable,
        });
    }
    Ok(r)
}

/// Device names are how the CLI finds a device when it is not given a BDF
/// (`unidma p2p nvme0 ...`), so a name must pick one device: two devices
/// may not share a name, and a name may not parse as a BDF (the lookup
/// tries the BDF first, so such a name could never be reached, or would
/// reach another device).
fn check_names(ctx: &Ctx<'_>, file: &MachineFile) -> Result<(), MachineError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, d) in file.device.iter().enumerate() {
        let Some(n) = &d.get_ref().name else {
            continue;
        };
        let name = n.get_ref().as_str();
        if let Ok(b) = name.parse::<Bdf>() {
            return Err(ctx.err(
                n.span(),
                format!("device[{i}].name"),
                format!(
                    "name {name:?} parses as the BDF {b}; a device name must not look like a BDF (a lookup by it would find the device at {b})"
                ),
            ));
        }
        if let Some(&j) = seen.get(name) {
            let other = file
                .device
                .get(j)
                .map_or(String::new(), |o| o.get_ref().bdf.get_ref().clone());
            return Err(ctx.err(
                n.span(),
                format!("device[{i}].name"),
                format!(
                    "name {name:?} is already the name of device[{j}] ({other}); device names must be unique (a lookup by name would pick one)"
                ),
            ));
        }
        seen.insert(name, i);
    }
    Ok(())
}

/// Topologies PCI Express cannot build, refused with the rule they break.
/// The structural checks (the parent exists, is a bridge, same domain, no
/// loop) are [`Topology::build`]'s and have run before. Linux semantics:
///
/// * a root port (`PCI_EXP_TYPE_ROOT_PORT`, include/uapi/linux/pci_regs.h)
///   is a function of the root complex on a root bus: it has no parent;
/// * a switch downstream port (`PCI_EXP_TYPE_DOWNSTREAM`) sits on the
///   internal bus of a switch, below the switch's upstream port
///   (`PCI_EXP_TYPE_UPSTREAM`), never on a root bus nor below a root port
///   or another downstream port; drivers/pci/probe.c `set_pcie_port_type()`
///   calls a downstream port below a downstream port an "impossible
///   configuration" (and retypes it; a machine file is refused instead);
/// * a switch upstream port is never below a switch upstream port (the
///   other "impossible configuration" of `set_pcie_port_type()`);
/// * a root-complex integrated endpoint (`PCI_EXP_TYPE_RC_END`) is on a
///   root bus, never below a bridge;
/// * a bridge has one secondary bus (the `PCI_SECONDARY_BUS` register,
///   which `pci_scan_bridge_extend()` scans for its children): every child
///   of a bridge is on one bus, and that bus is not the bridge's own
///   (primary) bus. The file has no secondary-bus field, so the secondary
///   bus is the bus of the bridge's children.
fn check_shape(ctx: &Ctx<'_>, file: &MachineFile, records: &[Shape]) -> Result<(), MachineError> {
    let by_bdf: HashMap<Bdf, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.bdf, i))
        .collect();
    // The first child seen of each bridge: (child index, its bus).
    let mut secondary: HashMap<Bdf, (usize, u8)> = HashMap::new();
    for (i, (r, d)) in records.iter().zip(file.device.iter()).enumerate() {
        let d = d.get_ref();
        let at_parent = |msg: String| {
            let span = d.parent.as_ref().map_or(d.kind.span(), |p| p.span());
            ctx.err(span, format!("device[{i}].parent"), msg)
        };
        let at_bdf = |msg: String| ctx.err(d.bdf.span(), format!("device[{i}].bdf"), msg);
        let parent = r.parent.and_then(|p| {
            by_bdf
                .get(&p)
                .and_then(|&j| records.get(j).map(|pr| (j, pr)))
        });
        match (r.port, parent) {
            (PortType::RootPort, Some((_, p))) => {
                return Err(at_parent(format!(
                    "a root port sits on a root bus and has no parent, but {} names parent {} ({})",
                    r.bdf, p.bdf, p.port
                )))
            }
            (PortType::RcEndpoint, Some((_, p))) => {
                return Err(at_parent(format!(
                    "a root-complex integrated endpoint sits on a root bus, never below a bridge, but {} names parent {} ({})",
                    r.bdf, p.bdf, p.port
                )))
            }
            (PortType::SwitchDownstream, None) => {
                return Err(at_parent(format!(
                    "a switch downstream port sits below a switch upstream port, but {} has no parent (it would be on root bus {:02x})",
                    r.bdf, r.bdf.bus()
                )))
            }
            (PortType::SwitchDownstream, Some((_, p))) if p.port != PortType::SwitchUpstream => {
                return Err(at_parent(format!(
                    "a switch downstream port sits below a switch upstream port, but {} names parent {} ({})",
                    r.bdf, p.bdf, p.port
                )))
            }
            (PortType::SwitchUpstream, Some((_, p))) if p.port == PortType::SwitchUpstream => {
                return Err(at_parent(format!(
                    "a switch upstream port cannot sit below a switch upstream port, but {} names parent {} (switch_upstream)",
                    r.bdf, p.bdf
                )))
            }
            _ => {}
        }
        let Some((_, p)) = parent else {
            continue;
        };
        if r.bdf.bus() == p.bdf.bus() {
            return Err(at_bdf(format!(
                "{} is on bus {:02x}, the own bus of its parent bridge {}; a child sits on the bridge's secondary bus, below it",
                r.bdf, r.bdf.bus(), p.bdf
            )));
        }
        match secondary.get(&p.bdf) {
            Some(&(j, bus)) if bus != r.bdf.bus() => {
                let first = records.get(j).map_or(Bdf::default(), |c| c.bdf);
                return Err(at_bdf(format!(
                    "bridge {} has children on two buses: {first} (device[{j}]) on bus {bus:02x} and {} on bus {:02x}; a bridge has one secondary bus",
                    p.bdf, r.bdf, r.bdf.bus()
                )));
            }
            Some(_) => {}
            None => {
                secondary.insert(p.bdf, (i, r.bdf.bus()));
            }
        }
    }
    Ok(())
}

/// The fields of a device record the shape rules read.
struct Shape {
    bdf: Bdf,
    port: PortType,
    parent: Option<Bdf>,
}

fn topo_error(ctx: &Ctx<'_>, file: &MachineFile, e: TopologyError) -> MachineError {
    let find = |bdf: Bdf, nth: usize| -> Option<DevInfo<'_>> {
        file.device
            .iter()
            .enumerate()
            .filter(|(_, d)| d.get_ref().bdf.get_ref().parse::<Bdf>().ok() == Some(bdf))
            .nth(nth)
            .map(|(idx, dev)| DevInfo { dev, idx })
    };
    let bar_span = |info: &DevInfo<'_>, index: u8| -> (Range<usize>, String) {
        let d = info.dev.get_ref();
        d.bars
            .iter()
            .enumerate()
            .find(|(_, b)| b.get_ref().index.get_ref().value().ok() == Some(index as u64))
            .map(|(j, b)| (b.span(), format!("device[{}].bars[{j}]", info.idx)))
            .unwrap_or((info.dev.span(), format!("device[{}]", info.idx)))
    };
    let msg = e.to_string();
    let (span, field) = match &e {
        TopologyError::DuplicateBdf { bdf } => match find(*bdf, 1).or_else(|| find(*bdf, 0)) {
            Some(i) => (i.dev.get_ref().bdf.span(), format!("device[{}].bdf", i.idx)),
            None => (0..0, "device".into()),
        },
        TopologyError::DanglingParent { bdf, .. }
        | TopologyError::ParentNotBridge { bdf, .. }
        | TopologyError::DomainMismatch { bdf, .. }
        | TopologyError::Cycle { bdf } => match find(*bdf, 0) {
            Some(i) => match &i.dev.get_ref().parent {
                Some(p) => (p.span(), format!("device[{}].parent", i.idx)),
                None => (i.dev.get_ref().bdf.span(), format!("device[{}].bdf", i.idx)),
            },
            None => (0..0, "device".into()),
        },
        TopologyError::NoHostBridge { bdf } | TopologyError::UnknownDevice { bdf } => {
            match find(*bdf, 0) {
                Some(i) => (i.dev.get_ref().bdf.span(), format!("device[{}].bdf", i.idx)),
                None => (0..0, "device".into()),
            }
        }
        TopologyError::BarInvalid { bdf, index, .. }
        | TopologyError::BarOutsideWindow { bdf, index, .. }
        | TopologyError::BarOverlap {
            b: (bdf, index), ..
        } => match find(*bdf, 0) {
            Some(i) => bar_span(&i, *index),
            None => (0..0, "device".into()),
        },
        TopologyError::DuplicateHostBridge { domain, root_bus } => file
            .host_bridge
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                let h = h.get_ref();
                let d = h
                    .domain
                    .as_ref()
                    .and_then(|n| n.get_ref().value().ok())
                    .unwrap_or(0);
                let b = h
                    .bus
                    .as_ref()
                    .and_then(|n| n.get_ref().value().ok())
                    .unwrap_or(0);
                d == *domain as u64 && b == *root_bus as u64
            })
            .nth(1)
            .map(|(i, h)| (h.span(), format!("host_bridge[{i}]")))
            .unwrap_or((0..0, "host_bridge".into())),
        TopologyError::WindowOverlap { b, .. } => file
            .host_bridge
            .iter()
            .enumerate()
            .find(|(_, h)| h.get_ref().name == *b)
            .map(|(i, h)| (h.span(), format!("host_bridge[{i}].mmio")))
            .unwrap_or((0..0, "host_bridge".into())),
        _ => (0..0, "device".into()),
    };
    ctx.err(span, field, msg)
}

pub(super) fn load(file_name: &str, src: &str) -> Result<Machine, MachineError> {
    let ctx = Ctx {
        file: file_name,
        src,
    };
    let file: MachineFile = super::parse::parse(src).map_err(|e| toml_error(&ctx, e))?;
    let m = &file.machine;
    let arch = ArchName::from_name(m.arch.get_ref()).ok_or_else(|| {
        let names: Vec<&str> = ArchName::ALL.iter().map(|a| a.name()).collect();
        ctx.err(
            m.arch.span(),
            "machine.arch",
            format!(
                "unknown arch {:?}; expected one of {}",
                m.arch.get_ref(),
                names.join(", ")
            ),
        )
    })?;
    let vendor = match &m.cpu_vendor {
        None => CpuVendor::Other,
        Some(v) => match v.get_ref().as_str() {
            "intel" => CpuVendor::Intel,
            "amd" => CpuVendor::Amd,
            "other" => CpuVendor::Other,
            o => {
                return Err(ctx.err(
                    v.span(),
                    "machine.cpu_vendor",
                    format!("unknown CPU vendor {o:?}; expected intel, amd or other"),
                ))
            }
        },
    };
    let family = match &m.cpu_family {
        Some(n) => ctx.num_max(n, "machine.cpu_family", u32::MAX as u64)? as u32,
        None => 0,
    };
    let cpu = CpuInfo {
        vendor,
        family,
        x86: arch == ArchName::X86_64,
    };
    let mut hbs = Vec::new();
    for (i, h) in file.host_bridge.iter().enumerate() {
        let ht = h.get_ref();
        let f = |s: &str| format!("host_bridge[{i}].{s}");
        let domain = match &ht.domain {
            Some(n) => ctx.num_max(n, || f("domain"), u32::MAX as u64)? as u32,
            None => 0,
        };
        let bus = match &ht.bus {
            Some(n) => ctx.num_max(n, || f("bus"), 0xff)? as u8,
            None => 0,
        };
        let mut r = HostBridgeRecord::new(ht.name.clone(), domain, bus);
        r.ident = match (&ht.vendor, &ht.device) {
            (Some(v), Some(d)) => Some((
                ctx.num_max(v, || f("vendor"), 0xffff)? as u16,
                ctx.num_max(d, || f("device"), 0xffff)? as u16,
            )),
            (None, None) => None,
            _ => {
                return Err(ctx.err(
                    h.span(),
                    f("vendor"),
                    "give both vendor and device, or neither",
                ))
            }
        };
        if let Some(n) = &ht.numa_node {
            r.numa_node = ctx.numa_node(n, &f("numa_node"))?;
        }
        r.iommu = ht.iommu;
        r.p2p_read = ht.p2p_read;
        r.p2p_write = ht.p2p_write;
        r.mmio = ctx.windows(&ht.mmio, &f("mmio"))?;
        if let Some(dr) = &ht.dma_ranges {
            r.dma_ranges = ctx.windows(dr, &f("dma_ranges"))?;
        }
        hbs.push(r);
    }
    if file.device.len() > MAX_DEVICES {
        return Err(ctx.err(
            file.device.get(MAX_DEVICES).map_or(0..0, |d| d.span()),
            "device",
            format!("more than {MAX_DEVICES} devices"),
        ));
    }
    let mut records = Vec::new();
    for (i, d) in file.device.iter().enumerate() {
        records.push(device_record(&ctx, i, d.get_ref())?);
    }
    check_names(&ctx, &file)?;
    // What the shape rules read, kept before the records move into the
    // topology (cloning 65 536 records with their names and BARs cost more).
    let shapes: Vec<Shape> = records
        .iter()
        .map(|r| Shape {
            bdf: r.bdf,
            port: r.port,
            parent: r.parent,
        })
        .collect();
    let topology = Topology::build(cpu, hbs, records).map_err(|e| topo_error(&ctx, &file, e))?;
    check_shape(&ctx, &file, &shapes)?;

    // Memory map: RAM, every memory BAR, carve-outs.
    let mut memmap = MemoryMap::new();
    let mm_err =
        |span: Range<usize>, field: String, e: MemMapError| ctx.err(span, field, e.to_string());
    for (i, r) in file.ram.iter().enumerate() {
        let (start, size) = ctx.range(r, &format!("ram[{i}]"))?;
        memmap
            .insert(MemRange {
                start,
                size,
                kind: RangeKind::Ram,
            })
            .map_err(|e| mm_err(r.span(), format!("ram[{i}]"), e))?;
    }
    // Every BDF parsed (the records are), and unique (the topology built).
    let index: HashMap<Bdf, usize> = shapes.iter().enumerate().map(|(i, s)| (s.bdf, i)).collect();
    let mut p2p = P2pMemRegistry::new();
    for (id, dev) in topology.devices() {
        let Some(&i) = index.get(&dev.bdf) else {
            continue;
        };
        let Some(dt) = file.device.get(i) else {
            continue;
        };
        let dt = dt.get_ref();
        for b in dev.bars.iter().filter(|b| b.is_mem()) {
            // Where the BAR is in the file, looked up only on error.
            let at = || {
                dt.bars
                    .iter()
                    .enumerate()
                    .find(|(_, x)| x.get_ref().index.get_ref().value().ok() == Some(b.index as u64))
                    .map_or((0..0, format!("device[{i}].bars")), |(j, x)| {
                        (x.span(), format!("device[{i}].bars[{j}]"))
                    })
            };
            memmap
                .insert(MemRange {
                    start: b.addr,
                    size: b.size,
                    kind: RangeKind::Bar {
                        provider: id.provider_id(),
                        bar: b.index,
                    },
                })
                .map_err(|e| {
                    let (span, field) = at();
                    mm_err(span, field, e)
                })?;
        }
        if let Some(s) = &dt.stolen_ram {
            let (start, size) = ctx.range(s, &format!("device[{i}].stolen_ram"))?;
            memmap
                .insert(MemRange {
                    start,
                    size,
                    kind: RangeKind::StolenRam {
                        owner: id.provider_id(),
                    },
                })
                .map_err(|e| mm_err(s.span(), format!("device[{i}].stolen_ram"), e))?;
        }
        if let Some(s) = &dt.device_private {
            let (start, size) = ctx.range(s, &format!("device[{i}].device_private"))?;
            memmap
                .insert(MemRange {
                    start,
                    size,
                    kind: RangeKind::DevicePrivate {
                        owner: id.provider_id(),
                    },
                })
                .map_err(|e| mm_err(s.span(), format!("device[{i}].device_private"), e))?;
        }
        for (j, pm) in dt.p2pmem.iter().enumerate() {
            let f = |s: &str| format!("device[{i}].p2pmem[{j}].{s}");
            let pt = pm.get_ref();
            let bar = ctx.num_max(&pt.bar, || f("bar"), 5)? as u8;
            let offset = match &pt.offset {
                Some(n) => ctx.num(n, || f("offset"))?,
                None => 0,
            };
            let size = match &pt.size {
                Some(n) => ctx.num(n, || f("size"))?,
                None => 0,
            };
            p2p.add_resource(&topology, id, bar, size, offset)
                .map_err(|e| {
                    ctx.err(pm.span(), format!("device[{i}].p2pmem[{j}]"), e.to_string())
                })?;
            if pt.publish {
                p2p.publish(&topology, id, true)
                    .map_err(|e| ctx.err(pm.span(), f("publish"), e.to_string()))?;
            }
        }
    }
    Ok(Machine {
        name: m.name.clone(),
        source: file_name.to_string(),
        arch,
        topology,
        memmap,
        p2pmem: p2p,
    })
}
