//! A sysfs scan turned into topology records and a [`Machine`].
//!
//! [`super::read_tree`] gives plain [`RawPciDevice`] records; this layer
//! decides what they mean for the DMA model and never fails: anything
//! inconsistent (a duplicate BDF, a BAR overlapping another, a parent cycle,
//! a parent that is not a bridge) becomes an [`ImportWarning`] and the
//! offending function is dropped, together with everything below it.
//!
//! What sysfs does not say, and what is assumed instead:
//! * **Host bridges** are the `pciDDDD:BB` components of the canonical paths
//!   (drivers/pci/probe.c names the root bus device so). Their MMIO windows
//!   are *identity* windows covering the memory BARs below them: all BARs are
//!   sorted by address and each maximal run of BARs under one host bridge
//!   becomes one window, so windows of different bridges never overlap and
//!   every BAR is inside one. sysfs `resource` holds CPU addresses only
//!   (after `pci_resource_to_user`); a CPU→bus offset (arm64 SoCs) is not
//!   visible, so bus addresses equal CPU addresses. `dma-ranges` are identity
//!   over the whole address space; the IOMMU is "on" when any function below
//!   has an `iommu_group` link.
//! * **Port types** come from the PCI Express capability. Without one (a
//!   config space of 256 bytes or more and no capability) the function is
//!   conventional PCI: a bridge or cardbus header is a `pci_bridge`, anything
//!   else a `pci_device`. When config space was cut short (a non-root reader
//!   gets 64 bytes, where no capability is visible) the type is *guessed* from
//!   the header and the position, as on any PCIe machine: a bridge on a root
//!   bus is a root port, a bridge below a root or downstream port is a switch
//!   upstream port, below an upstream port a downstream port; a function on
//!   a root bus is a root-complex integrated endpoint, else an endpoint. A
//!   warning says so, and ACS is unknown (none) for such functions.
//! * **Parents** come from the path chain. A function whose parent is not in
//!   the scan attaches to the root bus named by its own BDF (a host bridge
//!   `pciDDDD:BB` for that bus is made up if needed), with a warning.
//! * **BARs**: memory BARs 0..=5 only (I/O BARs, the ROM, SR-IOV and bridge
//!   windows are left out); a BAR that is not a naturally aligned power of two
//!   of at least 16 bytes, or a 32-bit BAR above 4 GiB, is dropped with a
//!   warning (the function stays).
//! * **DMA mask**: `dma_mask_bits`; when absent or 0, 32 bits, the mask
//!   drivers/pci/probe.c `pci_setup_device` gives every function before a
//!   driver raises it.
//! * **Coherency** is the arch default the caller passes
//!   ([`ImportOptions::default_coherent`]); `untrusted` is false (sysfs has
//!   no such attribute).
//! * **Memory map**: the memory BARs, plus the RAM ranges the caller read
//!   (see [`super::ram`]: `firmware/memmap` or `/proc/iomem`) given to
//!   [`import_with_ram`]; any part of a RAM range that overlaps a BAR is left
//!   out with a warning (the BAR wins: firmware maps describe RAM, the BAR
//!   is what the device decodes). p2pmem providers are not imported.

use super::ram::RamRange;
use super::record::{RawPciDevice, SysfsScan};
use crate::machine::{ArchName, Machine};
use dma_pci::bdf::Bdf;
use dma_pci::config::{HeaderType, HostBridgeId as PathHostBridge, PcieType};
use dma_pci::mask::DmaMask;
use dma_pci::memmap::{MemRange, MemoryMap, RangeKind};
use dma_pci::p2p::P2pMemRegistry;
use dma_pci::topology::{
    Acs, AcsCap, Bar, BarSpace, CpuInfo, DeviceRecord, HostBridgeRecord, NodeSpec, NumaNode,
    PortType, Topology, TopologyError,
};
use dma_pci::types::PhysAddr;
use dma_pci::window::{AddrWindow, WindowMap};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

/// What the caller knows that sysfs does not.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ImportOptions {
    /// Machine label.
    pub name: String,
    /// Where the scan came from (shown as the machine's source).
    pub source: String,
    /// The architecture.
    pub arch: ArchName,
    /// CPU identity (for the AMD Zen rule of the P2P oracle).
    pub cpu: CpuInfo,
    /// Coherency of every function (the arch's `ARCH_DMA_DEFAULT_COHERENT`).
    pub default_coherent: bool,
}

/// Why the import left something out or assumed something.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ImportProblem {
    /// A second function with the same address; dropped.
    DuplicateBdf,
    /// The parent links loop; the function was dropped.
    ParentCycle,
    /// The parent was dropped, so the function was too.
    ParentDropped {
        /// The dropped parent.
        parent: Bdf,
    },
    /// The parent is not in the scan; the function was attached to the root
    /// bus named by its own address.
    Orphan {
        /// The missing parent.
        parent: Bdf,
    },
    /// The path's host bridge does not match the root bus of the address;
    /// the address wins.
    HostBridgeMismatch {
        /// The host bridge named by the path.
        path: String,
        /// The one used (`pciDDDD:BB` of the address).
        used: String,
    },
    /// Config space was too short to show the PCIe capability; the port type
    /// was guessed.
    PortTypeGuessed {
        /// Readable config bytes.
        config_len: usize,
        /// The guess.
        port: PortType,
    },
    /// One BAR was left out; the function stays.
    BarDropped {
        /// BAR index.
        index: u8,
        /// Why.
        reason: String,
    },
    /// A memory BAR overlaps one already imported; the function was dropped.
    BarOverlap {
        /// The BAR of this function.
        index: u8,
        /// The function owning the other BAR.
        other: Bdf,
        /// The other BAR's index.
        other_index: u8,
    },
    /// `dma_mask_bits` was not a usable width; 32 bits assumed.
    BadDmaMask {
        /// The width read.
        bits: u32,
    },
    /// `numa_node` above any node Linux can have; no node assumed.
    BadNumaNode {
        /// The node read.
        node: u32,
    },
    /// The topology refused the function; it was dropped.
    Rejected(TopologyError),
    /// The host bridges' windows were refused; the topology was built
    /// without MMIO windows (BARs then translate 1:1 and are not checked).
    WindowsDropped(TopologyError),
    /// A RAM range could not enter the memory map (the reason).
    RamDropped(String),
    /// Part of a RAM range overlaps a memory BAR; that part was left out.
    RamOverlapsBar {
        /// The RAM range as read.
        ram: RamRange,
        /// The BAR's index (the function is the warning's `bdf`).
        index: u8,
        /// The BAR's start.
        bar_start: PhysAddr,
        /// The BAR's size.
        bar_size: u64,
    },
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImportProblem::*;
        match self {
            DuplicateBdf => f.write_str("duplicate function address; dropped"),
            ParentCycle => f.write_str("parent links form a cycle; dropped"),
            ParentDropped { parent } => write!(f, "parent {parent} was dropped; dropped too"),
            Orphan { parent } => write!(
                f,
                "parent {parent} is not in the scan; attached to the root bus"
            ),
            HostBridgeMismatch { path, used } => write!(
                f,
                "path names host bridge {path} but the address is on root bus {used}; using {used}"
            ),
            PortTypeGuessed { config_len, port } => write!(
                f,
                "config space is only {config_len} bytes (not read as root?): no PCIe capability or ACS visible; port type guessed as {port}"
            ),
            BarDropped { index, reason } => write!(f, "BAR {index} left out: {reason}"),
            BarOverlap {
                index,
                other,
                other_index,
            } => write!(
                f,
                "BAR {index} overlaps BAR {other_index} of {other}; function dropped"
            ),
            BadDmaMask { bits } => write!(f, "dma_mask_bits {bits} unusable; 32 assumed"),
            BadNumaNode { node } => write!(
                f,
                "numa_node {node} is not a node (0 to {}); no node assumed",
                NumaNode::LIMIT - 1
            ),
            Rejected(e) => write!(f, "{e}; function dropped"),
            WindowsDropped(e) => write!(
                f,
                "host bridge windows refused ({e}); built without MMIO windows"
            ),
            RamDropped(e) => write!(f, "RAM range left out: {e}"),
            RamOverlapsBar {
                ram,
                index,
                bar_start,
                bar_size,
            } => write!(
                f,
                "RAM range {ram} overlaps BAR {index} [{bar_start} +{bar_size:#x}]; the overlap is left out of RAM"
            ),
        }
    }
}

/// One import problem and where it comes from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ImportWarning {
    /// The function's sysfs directory (or the scan root for machine-wide
    /// problems).
    pub path: PathBuf,
    /// The function concerned, if any.
    pub bdf: Option<Bdf>,
    /// What happened.
    pub what: ImportProblem,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bdf {
            Some(b) => write!(f, "{} ({b}): {}", self.path.display(), self.what),
            None => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

/// The records a scan converts to (before the topology links them).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ImportedRecords {
    /// One per root bus, with identity windows over its BARs.
    pub host_bridges: Vec<HostBridgeRecord>,
    /// Surviving functions, parents first.
    pub devices: Vec<DeviceRecord>,
    /// What was dropped or assumed.
    pub warnings: Vec<ImportWarning>,
}

/// A machine read from sysfs, with what the import had to say.
#[derive(Clone, Debug)]
pub struct SysfsImport {
    /// The machine (RAM ranges only those given, no p2pmem providers).
    pub machine: Machine,
    /// Problems of the import (the scan's own warnings are not repeated).
    pub warnings: Vec<ImportWarning>,
}

/// Maps the host's `std::env::consts::ARCH` to a machine arch name.
pub fn host_arch() -> Option<ArchName> {
    match std::env::consts::ARCH {
        "x86_64" => Some(ArchName::X86_64),
        "aarch64" => Some(ArchName::Arm64),
        "powerpc64" => Some(ArchName::Powerpc64),
        "riscv64" => Some(ArchName::Riscv64),
        "s390x" => Some(ArchName::S390x),
        _ => None,
    }
}

/// One candidate function during the import.
struct Cand<'a> {
    raw: &'a RawPciDevice,
    /// Parent after orphan handling (`None` = root bus).
    parent: Option<Bdf>,
    depth: usize,
    port: PortType,
    bars: Vec<Bar>,
}

fn path_of(raw: &RawPciDevice) -> PathBuf {
    raw.sysfs_path.clone()
}

fn warn(out: &mut Vec<ImportWarning>, raw: &RawPciDevice, what: ImportProblem) {
    out.push(ImportWarning {
        path: path_of(raw),
        bdf: Some(raw.bdf),
        what,
    });
}

fn pcie_port(t: PcieType) -> PortType {
    match t {
        PcieType::Endpoint => PortType::Endpoint,
        PcieType::LegacyEndpoint => PortType::LegacyEndpoint,
        PcieType::RootPort => PortType::RootPort,
        PcieType::UpstreamPort => PortType::SwitchUpstream,
        PcieType::DownstreamPort => PortType::SwitchDownstream,
        PcieType::PcieToPciBridge => PortType::PcieToPciBridge,
        PcieType::PciToPcieBridge => PortType::PciToPcieBridge,
        // An event collector is a root-complex integrated function too.
        PcieType::RcIntegratedEndpoint | PcieType::RcEventCollector => PortType::RcEndpoint,
    }
}

fn is_bridge_header(raw: &RawPciDevice) -> bool {
    match raw.header_type {
        Some(HeaderType::Bridge | HeaderType::CardBus) => true,
        Some(HeaderType::Normal) => false,
        // Header unreadable: the class code says (0x0604 PCI bridge, 0x0607 cardbus).
        None => matches!(raw.class >> 8, 0x0604 | 0x0607),
    }
}

/// The port type, and whether it was guessed (`parent_port` is the
/// already-decided type of the parent, `None` on a root bus).
fn port_type(raw: &RawPciDevice, parent_port: Option<PortType>) -> (PortType, bool) {
    if let Some(t) = raw.pcie_type {
        return (pcie_port(t), false);
    }
    let bridge = is_bridge_header(raw);
    if raw.config_len >= 256 {
        let t = if bridge {
            PortType::PciBridge
        } else {
            PortType::PciDevice
        };
        return (t, false);
    }
    let t = match (bridge, parent_port) {
        (true, None) => PortType::RootPort,
        (true, Some(PortType::SwitchUpstream)) => PortType::SwitchDownstream,
        (true, Some(PortType::RootPort | PortType::SwitchDownstream)) => PortType::SwitchUpstream,
        (true, Some(_)) => PortType::PciBridge,
        (false, None) => PortType::RcEndpoint,
        (false, Some(p)) if p.is_pcie() => PortType::Endpoint,
        (false, Some(_)) => PortType::PciDevice,
    };
    (t, true)
}

/// Memory BARs 0..=5 that pass the shape checks; the rest become warnings.
fn bars_of(raw: &RawPciDevice, warnings: &mut Vec<ImportWarning>) -> Vec<Bar> {
    let mut out = Vec::new();
    for b in raw.bars.iter().filter(|b| b.index <= 5 && b.is_mem) {
        let index = b.index as u8;
        let reason = if b.size < 16 || !b.size.is_power_of_two() {
            Some(format!("size {:#x} is not a power of two >= 16", b.size))
        } else if !b.start.is_aligned(b.size) {
            Some(format!("start {} not aligned to its size", b.start))
        } else if b.start.last_of(b.size).is_none() {
            Some("range wraps the address space".to_string())
        } else if !b.is_64
            && b.start
                .raw()
                .checked_add(b.size)
                .is_none_or(|e| e > 1 << 32)
        {
            Some(format!(
                "32-bit BAR at {} is above 4 GiB (a CPU->bus offset sysfs does not show?)",
                b.start
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => warn(warnings, raw, ImportProblem::BarDropped { index, reason }),
            None => out.push(Bar {
                index,
                addr: b.start,
                size: b.size,
                space: BarSpace::Mem,
                is_64: b.is_64,
                prefetchable: b.prefetch,
            }),
        }
    }
    out
}

fn acs_of(raw: &RawPciDevice) -> Option<AcsCap> {
    raw.acs.map(|a| AcsCap {
        cap: Acs::from_bits_truncate(a.cap.bits()),
        ctrl: Acs::from_bits_truncate(a.ctrl.bits()),
    })
}

/// Labels from bound drivers: the driver name when one function has it,
/// `driver-N` (BDF order) when several do.
fn names(devs: &[&RawPciDevice]) -> HashMap<Bdf, String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for d in devs {
        if let Some(n) = &d.driver {
            *count.entry(n.as_str()).or_default() += 1;
        }
    }
    let mut next: HashMap<&str, usize> = HashMap::new();
    let mut out = HashMap::new();
    for d in devs {
        if let Some(n) = &d.driver {
            let label = if count.get(n.as_str()).copied().unwrap_or(0) > 1 {
                let i = next.entry(n.as_str()).or_default();
                let l = format!("{n}-{i}");
                *i += 1;
                l
            } else {
                n.clone()
            };
            out.insert(d.bdf, label);
        }
    }
    out
}

/// Converts a scan into host-bridge and device records (parents first).
/// `default_coherent` is the arch's default coherency.
pub fn to_records(scan: &SysfsScan, default_coherent: bool) -> ImportedRecords {
    let mut warnings = Vec::new();

    // 1. One function per address (the first wins).
    let mut by_bdf: BTreeMap<Bdf, &RawPciDevice> = BTreeMap::new();
    for raw in &scan.devices {
        if let std::collections::btree_map::Entry::Vacant(e) = by_bdf.entry(raw.bdf) {
            e.insert(raw);
        } else {
            warn(&mut warnings, raw, ImportProblem::DuplicateBdf);
        }
    }

    // 2. Parents (orphans to the root) and depth; cycles dropped.
    let parent_of = |raw: &RawPciDevice| raw.parent.filter(|p| by_bdf.contains_key(p));
    let mut depth: BTreeMap<Bdf, usize> = BTreeMap::new();
    let mut cyclic: BTreeSet<Bdf> = BTreeSet::new();
    for (&bdf, raw) in &by_bdf {
        let mut d = 0usize;
        let mut cur = parent_of(raw);
        let mut looped = false;
        while let Some(p) = cur {
            d += 1;
            if d > by_bdf.len() {
                looped = true;
                break;
            }
            cur = by_bdf.get(&p).and_then(|r| parent_of(r));
        }
        if looped {
            cyclic.insert(bdf);
        } else {
            depth.insert(bdf, d);
        }
    }
    for &bdf in &cyclic {
        if let Some(raw) = by_bdf.get(&bdf) {
            warn(&mut warnings, raw, ImportProblem::ParentCycle);
        }
    }

    // 3. Parents first: port types (guesses need the parent's), BARs,
    //    structural checks; a dropped parent drops its subtree.
    let mut order: Vec<(usize, Bdf)> = depth.iter().map(|(b, d)| (*d, *b)).collect();
    order.sort();
    let mut cands: BTreeMap<Bdf, Cand<'_>> = BTreeMap::new();
    let mut dropped: BTreeSet<Bdf> = cyclic.clone();
    for (d, bdf) in order {
        let Some(raw) = by_bdf.get(&bdf).copied() else {
            continue;
        };
        let parent = parent_of(raw);
        if let Some(p) = raw.parent {
            if parent.is_none() {
                warn(&mut warnings, raw, ImportProblem::Orphan { parent: p });
            }
        }
        let parent_port = match parent {
            Some(p) => {
                if dropped.contains(&p) {
                    warn(
                        &mut warnings,
                        raw,
                        ImportProblem::ParentDropped { parent: p },
                    );
                    dropped.insert(bdf);
                    continue;
                }
                let Some(pc) = cands.get(&p) else {
                    // Parents come first (depth order); a parent that is
                    // neither kept nor dropped cannot occur, but if it did
                    // the child would still be named.
                    warn(
                        &mut warnings,
                        raw,
                        ImportProblem::ParentDropped { parent: p },
                    );
                    dropped.insert(bdf);
                    continue;
                };
                if !pc.port.is_bridge() {
                    let e = TopologyError::ParentNotBridge {
                        bdf,
                        parent: p,
                        port: pc.port,
                    };
                    warn(&mut warnings, raw, ImportProblem::Rejected(e));
                    dropped.insert(bdf);
                    continue;
                }
                if p.domain() != bdf.domain() {
                    let e = TopologyError::DomainMismatch { bdf, parent: p };
                    warn(&mut warnings, raw, ImportProblem::Rejected(e));
                    dropped.insert(bdf);
                    continue;
                }
                Some(pc.port)
            }
            None => None,
        };
        let (port, guessed) = port_type(raw, parent_port);
        if guessed {
            warn(
                &mut warnings,
                raw,
                ImportProblem::PortTypeGuessed {
                    config_len: raw.config_len,
                    port,
                },
            );
        }
        if parent.is_none() {
            let used = PathHostBridge {
                domain: bdf.domain(),
                bus: bdf.bus(),
            };
            if let Some(h) = raw
                .host_bridge
                .filter(|h| *h != used && raw.parent.is_none())
            {
                warn(
                    &mut warnings,
                    raw,
                    ImportProblem::HostBridgeMismatch {
                        path: h.to_string(),
                        used: used.to_string(),
                    },
                );
            }
        }
        let bars = bars_of(raw, &mut warnings);
        cands.insert(
            bdf,
            Cand {
                raw,
                parent,
                depth: d,
                port,
                bars,
            },
        );
    }

    // 4. BAR overlaps: in BDF order, a function whose BAR overlaps one
    //    already taken is dropped (with its subtree, below).
    let mut taken: BTreeMap<u64, (u64, Bdf, u8)> = BTreeMap::new();
    let mut overlapping: BTreeSet<Bdf> = BTreeSet::new();
    for (&bdf, c) in &cands {
        let mut hit = None;
        let mut mine: Vec<(u64, u64, u8)> = Vec::new();
        for b in &c.bars {
            let (s, l) = (b.addr.raw(), b.addr.raw() + (b.size - 1));
            let other = taken
                .range(..=l)
                .next_back()
                .filter(|(_, (ol, _, _))| *ol >= s)
                .map(|(_, &(_, ob, oi))| (ob, oi))
                .or_else(|| {
                    mine.iter()
                        .find(|(ms, ml, _)| *ms <= l && s <= *ml)
                        .map(|&(_, _, mi)| (bdf, mi))
                });
            if let Some((ob, oi)) = other {
                hit = Some((b.index, ob, oi));
                break;
            }
            mine.push((s, l, b.index));
        }
        match hit {
            Some((index, other, other_index)) => {
                warn(
                    &mut warnings,
                    c.raw,
                    ImportProblem::BarOverlap {
                        index,
                        other,
                        other_index,
                    },
                );
                overlapping.insert(bdf);
            }
            None => {
                for (s, l, i) in mine {
                    taken.insert(s, (l, bdf, i));
                }
            }
        }
    }
    // Cascade overlap drops to subtrees (parents first).
    let mut order: Vec<(usize, Bdf)> = cands.iter().map(|(b, c)| (c.depth, *b)).collect();
    order.sort();
    let mut gone: BTreeSet<Bdf> = BTreeSet::new();
    for (_, bdf) in &order {
        let Some(c) = cands.get(bdf) else { continue };
        if overlapping.contains(bdf) {
            gone.insert(*bdf);
        } else if let Some(p) = c.parent.filter(|p| gone.contains(p)) {
            warn(
                &mut warnings,
                c.raw,
                ImportProblem::ParentDropped { parent: p },
            );
            gone.insert(*bdf);
        }
    }

    // 5. Host bridges: the root bus of each top-level function's chain.
    let mut root_of: BTreeMap<Bdf, PathHostBridge> = BTreeMap::new();
    let mut hb_iommu: BTreeMap<PathHostBridge, bool> = BTreeMap::new();
    for (_, bdf) in &order {
        if gone.contains(bdf) {
            continue;
        }
        let Some(c) = cands.get(bdf) else { continue };
        let hb = match c.parent.and_then(|p| root_of.get(&p)) {
            Some(h) => *h,
            None => PathHostBridge {
                domain: bdf.domain(),
                bus: bdf.bus(),
            },
        };
        root_of.insert(*bdf, hb);
        let e = hb_iommu.entry(hb).or_insert(false);
        *e |= c.raw.iommu_group.is_some();
    }
    // Identity windows: maximal address-ordered runs of one bridge's BARs.
    let mut all_bars: Vec<(u64, u64, PathHostBridge)> = Vec::new();
    for (bdf, hb) in &root_of {
        if let Some(c) = cands.get(bdf) {
            for b in &c.bars {
                all_bars.push((b.addr.raw(), b.addr.raw() + (b.size - 1), *hb));
            }
        }
    }
    all_bars.sort();
    let mut runs: BTreeMap<PathHostBridge, Vec<(u64, u64)>> = BTreeMap::new();
    let mut prev: Option<PathHostBridge> = None;
    for (s, l, hb) in all_bars {
        let v = runs.entry(hb).or_default();
        match v.last_mut() {
            Some(last) if prev == Some(hb) => last.1 = last.1.max(l),
            _ => v.push((s, l)),
        }
        prev = Some(hb);
    }
    let host_bridges = hb_iommu
        .iter()
        .map(|(hb, iommu)| {
            let mut r = HostBridgeRecord::new(hb.to_string(), hb.domain, hb.bus);
            r.iommu = *iommu;
            let windows = runs.get(hb).map_or(Vec::new(), |v| {
                v.iter()
                    .filter_map(|&(s, l)| {
                        let size = (l - s).checked_add(1)?;
                        Some(AddrWindow::identity(dma_pci::types::PhysAddr::new(s), size))
                    })
                    .collect()
            });
            r.mmio = WindowMap::new(windows).unwrap_or_else(|_| WindowMap::empty());
            r
        })
        .collect();

    // 6. Device records, parents first.
    let survivors: Vec<&RawPciDevice> = order
        .iter()
        .filter(|(_, b)| !gone.contains(b))
        .filter_map(|(_, b)| cands.get(b).map(|c| c.raw))
        .collect();
    let mut sorted = survivors.clone();
    sorted.sort_by_key(|r| r.bdf);
    let labels = names(&sorted);
    let mut devices = Vec::new();
    for (_, bdf) in &order {
        if gone.contains(bdf) {
            continue;
        }
        let Some(c) = cands.get(bdf) else { continue };
        let raw = c.raw;
        let mut r = DeviceRecord::new(*bdf, c.port, c.parent);
        r.name = labels.get(bdf).cloned();
        r.vendor = raw.vendor;
        r.device = raw.device;
        r.class = raw.class;
        r.bars = c.bars.clone();
        r.dma_mask = match raw.dma_mask_bits {
            None | Some(0) => DmaMask::BITS_32,
            Some(bits) => DmaMask::new(bits).unwrap_or_else(|_| {
                warn(&mut warnings, raw, ImportProblem::BadDmaMask { bits });
                DmaMask::BITS_32
            }),
        };
        r.coherent = default_coherent;
        r.multifunction = raw.multifunction.unwrap_or(false);
        r.acs = acs_of(raw);
        // The function's own `numa_node` (-1 or absent: none), whatever
        // its host bridge's (root may have overridden it).
        r.numa_node = NodeSpec::Given(raw.numa_node.and_then(|node| {
            let n = u16::try_from(node).ok().and_then(NumaNode::new);
            if n.is_none() {
                warn(&mut warnings, raw, ImportProblem::BadNumaNode { node });
            }
            n
        }));
        devices.push(r);
    }
    // A host bridge's node: sysfs shows none for the bridge itself, so it
    // is the node its root-bus functions agree on (`pci_device_add` gives
    // them the root bus's), none if they disagree or have none.
    let mut host_bridges: Vec<HostBridgeRecord> = host_bridges;
    for h in &mut host_bridges {
        let mut nodes = devices.iter().filter(|d| {
            d.parent.is_none() && d.bdf.domain() == h.domain && d.bdf.bus() == h.root_bus
        });
        let first = nodes.next().and_then(|d| d.numa_node.resolve(None));
        h.numa_node = first.filter(|n| nodes.all(|d| d.numa_node.resolve(None) == Some(*n)));
    }
    ImportedRecords {
        host_bridges,
        devices,
        warnings,
    }
}

/// `Topology::new` that cannot fail: if the bridges are refused, their MMIO
/// windows are dropped, then bridges from the end, until it succeeds (no
/// bridges at all cannot be refused). Each retreat is a warning.
fn bare_topology(
    cpu: CpuInfo,
    hbs: &mut Vec<HostBridgeRecord>,
    warnings: &mut Vec<ImportWarning>,
) -> Topology {
    loop {
        match Topology::new(cpu, hbs.clone()) {
            Ok(t) => return t,
            Err(e) => {
                warnings.push(ImportWarning {
                    path: PathBuf::new(),
                    bdf: None,
                    what: ImportProblem::WindowsDropped(e),
                });
                if hbs.iter().any(|h| !h.mmio.is_empty()) {
                    for h in hbs.iter_mut() {
                        h.mmio = WindowMap::empty();
                    }
                } else {
                    hbs.pop();
                }
            }
        }
    }
}

/// Adds the records (parents first) to a scratch topology without ever
/// failing: a record the topology refuses is dropped (a refused BAR first:
/// the record is retried without it), with a warning, and so is everything
/// below it. Returns the bridges and the records that made it.
fn admit(
    cpu: CpuInfo,
    host_bridges: &[HostBridgeRecord],
    devices: Vec<DeviceRecord>,
    paths: &HashMap<Bdf, PathBuf>,
    warnings: &mut Vec<ImportWarning>,
) -> (Vec<HostBridgeRecord>, Vec<DeviceRecord>) {
    let mut hbs = host_bridges.to_vec();
    let mut scratch = bare_topology(cpu, &mut hbs, warnings);
    let path = |b: &Bdf| paths.get(b).cloned().unwrap_or_default();
    let mut kept = Vec::new();
    let mut dropped: BTreeSet<Bdf> = BTreeSet::new();
    for mut r in devices {
        if let Some(p) = r.parent.filter(|p| dropped.contains(p)) {
            warnings.push(ImportWarning {
                path: path(&r.bdf),
                bdf: Some(r.bdf),
                what: ImportProblem::ParentDropped { parent: p },
            });
            dropped.insert(r.bdf);
            continue;
        }
        // Each retry removes one BAR, so this ends.
        loop {
            let e = match scratch.hot_add(r.clone()) {
                Ok(_) => {
                    kept.push(r);
                    break;
                }
                Err(e) => e,
            };
            let bar = match &e {
                TopologyError::BarInvalid { index, .. }
                | TopologyError::BarOutsideWindow { index, .. } => Some(*index),
                _ => None,
            }
            .filter(|i| r.bars.iter().any(|b| b.index == *i));
            match bar {
                Some(index) => {
                    warnings.push(ImportWarning {
                        path: path(&r.bdf),
                        bdf: Some(r.bdf),
                        what: ImportProblem::BarDropped {
                            index,
                            reason: e.to_string(),
                        },
                    });
                    r.bars.retain(|b| b.index != index);
                }
                None => {
                    warnings.push(ImportWarning {
                        path: path(&r.bdf),
                        bdf: Some(r.bdf),
                        what: ImportProblem::Rejected(e),
                    });
                    dropped.insert(r.bdf);
                    break;
                }
            }
        }
    }
    (hbs, kept)
}

/// Turns a scan into a [`Machine`]: topology from [`to_records`], the memory
/// BARs as the memory map (no RAM: the PCI tree does not describe it), no
/// p2pmem. Never fails; see the module docs for what is dropped or assumed.
pub fn import(scan: &SysfsScan, opts: &ImportOptions) -> SysfsImport {
    import_with_ram(scan, &[], opts)
}

/// [`import`], with `ram` (sorted or not, but not overlapping each other,
/// as [`super::ram::merge_ranges`] gives them) added to the memory map as
/// RAM. A part of a RAM range that overlaps a memory BAR is left out, with
/// a [`ImportProblem::RamOverlapsBar`] warning per BAR.
pub fn import_with_ram(scan: &SysfsScan, ram: &[RamRange], opts: &ImportOptions) -> SysfsImport {
    let rec = to_records(scan, opts.default_coherent);
    let mut warnings = rec.warnings;
    let paths: HashMap<Bdf, PathBuf> = scan
        .devices
        .iter()
        .map(|d| (d.bdf, d.sysfs_path.clone()))
        .collect();
    let (hbs, devices) = admit(
        opts.cpu,
        &rec.host_bridges,
        rec.devices,
        &paths,
        &mut warnings,
    );
    // Rebuild from the admitted records so the generation starts at 0.
    let topology = match Topology::build(opts.cpu, hbs.clone(), devices.clone()) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(ImportWarning {
                path: PathBuf::new(),
                bdf: None,
                what: ImportProblem::Rejected(e),
            });
            let mut hbs = hbs;
            bare_topology(opts.cpu, &mut hbs, &mut warnings)
        }
    };
    let mut memmap = MemoryMap::new();
    for (id, d) in topology.devices() {
        for b in d.bars.iter().filter(|b| b.is_mem()) {
            let r = MemRange {
                start: b.addr,
                size: b.size,
                kind: RangeKind::Bar {
                    provider: id.provider_id(),
                    bar: b.index,
                },
            };
            if memmap.insert(r).is_err() {
                // The topology already refuses overlapping BARs; nothing
                // else is in the map.
                warnings.push(ImportWarning {
                    path: paths.get(&d.bdf).cloned().unwrap_or_default(),
                    bdf: Some(d.bdf),
                    what: ImportProblem::BarDropped {
                        index: b.index,
                        reason: "not insertable in the memory map".into(),
                    },
                });
            }
        }
    }
    add_ram(&mut memmap, ram, &topology, &paths, &mut warnings);
    SysfsImport {
        machine: Machine {
            name: opts.name.clone(),
            source: opts.source.clone(),
            arch: opts.arch,
            topology,
            memmap,
            p2pmem: P2pMemRegistry::new(),
        },
        warnings,
    }
}

/// Inserts each RAM range minus the BARs already in `memmap`.
fn add_ram(
    memmap: &mut MemoryMap,
    ram: &[RamRange],
    topology: &Topology,
    paths: &HashMap<Bdf, PathBuf>,
    warnings: &mut Vec<ImportWarning>,
) {
    for r in ram.iter().filter(|r| !r.is_valid()) {
        warnings.push(ImportWarning {
            path: PathBuf::new(),
            bdf: None,
            what: ImportProblem::RamDropped(format!("{r} is empty or wraps")),
        });
    }
    for r in &super::ram::merge_ranges(ram.to_vec()) {
        let (first, last) = (r.start.raw(), r.last().raw());
        // The BARs overlapping [first, last], sorted (the map is sorted).
        let bars: Vec<MemRange> = memmap
            .ranges()
            .iter()
            .filter(|m| m.start.raw() <= last && m.last().is_some_and(|l| l.raw() >= first))
            .copied()
            .collect();
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut cur = Some(first);
        for b in &bars {
            let (bs, bl) = (b.start.raw(), b.last().map_or(b.start.raw(), |l| l.raw()));
            if let RangeKind::Bar { provider, bar } = b.kind {
                let dev = topology
                    .devices()
                    .find(|(id, _)| id.provider_id() == provider)
                    .map(|(_, d)| d.bdf);
                warnings.push(ImportWarning {
                    path: dev.and_then(|d| paths.get(&d).cloned()).unwrap_or_default(),
                    bdf: dev,
                    what: ImportProblem::RamOverlapsBar {
                        ram: *r,
                        index: bar,
                        bar_start: b.start,
                        bar_size: b.size,
                    },
                });
            }
            if let Some(c) = cur {
                if bs > c {
                    pieces.push((c, bs - 1));
                }
                cur = bl.checked_add(1).filter(|n| *n <= last);
            }
        }
        if let Some(c) = cur {
            pieces.push((c, last));
        }
        for (s, l) in pieces {
            let piece = MemRange {
                start: PhysAddr::new(s),
                size: (l - s).saturating_add(1),
                kind: RangeKind::Ram,
            };
            // Cannot fail: the piece avoids every range in the map and the
            // RAM ranges were merged, so they do not overlap each other.
            if let Err(e) = memmap.insert(piece) {
                warnings.push(ImportWarning {
                    path: PathBuf::new(),
                    bdf: None,
                    what: ImportProblem::RamDropped(e.to_string()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysfs::RawBar;
    use dma_pci::config::{AcsBits, AcsRegs};
    use dma_pci::types::PhysAddr;

    fn b(s: &str) -> Bdf {
        s.parse().unwrap()
    }

    fn raw(bdf: &str, parent: Option<&str>, pcie: Option<PcieType>) -> RawPciDevice {
        let bdf = b(bdf);
        RawPciDevice {
            bdf,
            parent: parent.map(b),
            // The root bus of the chain (bus 0 for children, in these tests).
            host_bridge: Some(PathHostBridge {
                domain: bdf.domain(),
                bus: if parent.is_none() { bdf.bus() } else { 0 },
            }),
            sysfs_path: PathBuf::from(format!("/sys/devices/x/{bdf}")),
            vendor: 0x1234,
            device: 0x5678,
            class: 0x020000,
            revision: None,
            header_type: Some(if pcie.is_some_and(|t| pcie_port(t).is_bridge()) {
                HeaderType::Bridge
            } else {
                HeaderType::Normal
            }),
            multifunction: Some(false),
            bridge_buses: None,
            pcie_type: pcie,
            acs: None,
            config_len: 4096,
            bars: Vec::new(),
            numa_node: None,
            iommu_group: None,
            driver: None,
            dma_mask_bits: Some(64),
        }
    }

    fn mem(index: usize, start: u64, size: u64, is_64: bool) -> RawBar {
        RawBar {
            index,
            start: PhysAddr::new(start),
            size,
            is_mem: true,
            is_io: false,
            is_64,
            prefetch: false,
        }
    }

    fn opts() -> ImportOptions {
        ImportOptions {
            name: "t".into(),
            source: "test".into(),
            arch: ArchName::Arm64,
            cpu: CpuInfo::default(),
            default_coherent: false,
        }
    }

    fn scan(devices: Vec<RawPciDevice>) -> SysfsScan {
        SysfsScan {
            devices,
            warnings: Vec::new(),
        }
    }

    fn problems(imp: &SysfsImport) -> Vec<(Option<Bdf>, ImportProblem)> {
        imp.warnings
            .iter()
            .map(|w| (w.bdf, w.what.clone()))
            .collect()
    }

    /// Each function keeps its own `numa_node` (-1: none); a host bridge
    /// takes the node its root-bus functions agree on, none if they differ;
    /// a node Linux cannot have is a warning and no node.
    #[test]
    fn numa_nodes_per_function_and_host_bridge() {
        let mut rp0 = raw("0000:00:01.0", None, Some(PcieType::RootPort));
        rp0.numa_node = Some(1);
        let mut ep0 = raw(
            "0000:01:00.0",
            Some("0000:00:01.0"),
            Some(PcieType::Endpoint),
        );
        ep0.numa_node = Some(1);
        let mut rp1 = raw("0001:00:01.0", None, Some(PcieType::RootPort));
        rp1.numa_node = Some(0);
        let mut rp2 = raw("0001:00:02.0", None, Some(PcieType::RootPort));
        rp2.numa_node = Some(1);
        let mut ep1 = raw(
            "0001:02:00.0",
            Some("0001:00:02.0"),
            Some(PcieType::Endpoint),
        );
        ep1.host_bridge = Some(PathHostBridge { domain: 1, bus: 0 });
        ep1.numa_node = Some(5000);
        let imp = import(&scan(vec![rp0, ep0, rp1, rp2, ep1]), &opts());
        let t = &imp.machine.topology;
        let node = |s: &str| t.device(t.lookup(b(s)).unwrap()).unwrap().numa_node;
        let hb: Vec<Option<NumaNode>> = t.host_bridges().iter().map(|h| h.numa_node).collect();
        assert_eq!(hb, vec![NumaNode::new(1), None], "domain 1 disagrees: none");
        assert_eq!(node("0000:01:00.0"), NumaNode::new(1));
        assert_eq!(node("0001:00:01.0"), NumaNode::new(0));
        assert_eq!(node("0001:00:02.0"), NumaNode::new(1));
        assert_eq!(node("0001:02:00.0"), None);
        assert_eq!(
            problems(&imp),
            [(
                Some(b("0001:02:00.0")),
                ImportProblem::BadNumaNode { node: 5000 }
            )]
        );
    }

    #[test]
    fn ports_acs_mask_and_coherency() {
        let mut rp = raw("0000:00:01.0", None, Some(PcieType::RootPort));
        rp.acs = Some(AcsRegs {
            offset: 0x100,
            cap: AcsBits::SV | AcsBits::RR | AcsBits::CR | AcsBits::UF,
            ctrl: AcsBits::RR,
            egress_vector_bits: 0,
            cap_raw: 0x1d,
            ctrl_raw: 0x4,
        });
        let usp = raw(
            "0000:01:00.0",
            Some("0000:00:01.0"),
            Some(PcieType::UpstreamPort),
        );
        let dsp = raw(
            "0000:02:00.0",
            Some("0000:01:00.0"),
            Some(PcieType::DownstreamPort),
        );
        let bridge = raw(
            "0000:03:00.0",
            Some("0000:02:00.0"),
            Some(PcieType::PcieToPciBridge),
        );
        let mut conv = raw("0000:04:01.0", Some("0000:03:00.0"), None);
        conv.dma_mask_bits = None;
        let mut conv_bridge = raw("0000:04:02.0", Some("0000:03:00.0"), None);
        conv_bridge.header_type = Some(HeaderType::Bridge);
        conv_bridge.dma_mask_bits = Some(0);
        let mut rciep = raw("0000:00:02.0", None, Some(PcieType::RcEventCollector));
        rciep.multifunction = Some(true);
        rciep.dma_mask_bits = Some(99);
        let imp = import(
            &scan(vec![rp, usp, dsp, bridge, conv, conv_bridge, rciep]),
            &opts(),
        );
        let t = &imp.machine.topology;
        let port = |s| t.device(t.lookup(b(s)).unwrap()).unwrap();
        assert_eq!(port("0000:00:01.0").port, PortType::RootPort);
        assert_eq!(
            port("0000:00:01.0").acs,
            Some(AcsCap {
                cap: Acs::SV | Acs::RR | Acs::CR | Acs::UF,
                ctrl: Acs::RR
            })
        );
        assert_eq!(port("0000:01:00.0").port, PortType::SwitchUpstream);
        assert_eq!(port("0000:02:00.0").port, PortType::SwitchDownstream);
        assert_eq!(port("0000:03:00.0").port, PortType::PcieToPciBridge);
        assert_eq!(port("0000:04:01.0").port, PortType::PciDevice);
        assert_eq!(port("0000:04:01.0").dma_mask, DmaMask::BITS_32);
        assert_eq!(port("0000:04:02.0").port, PortType::PciBridge);
        assert_eq!(port("0000:04:02.0").dma_mask, DmaMask::BITS_32);
        let rc = port("0000:00:02.0");
        assert_eq!((rc.port, rc.multifunction), (PortType::RcEndpoint, true));
        assert_eq!(rc.dma_mask, DmaMask::BITS_32);
        assert_eq!(port("0000:02:00.0").dma_mask, DmaMask::BITS_64);
        assert!(t.devices().all(|(_, d)| !d.coherent));
        assert_eq!(
            problems(&imp),
            [(
                Some(b("0000:00:02.0")),
                ImportProblem::BadDmaMask { bits: 99 }
            )]
        );
        assert_eq!(imp.machine.arch, ArchName::Arm64);
        assert_eq!(t.generation(), 0);
        imp.machine.check_invariants().unwrap();
    }

    #[test]
    fn truncated_config_guesses_by_position() {
        let mut devs = vec![
            raw("0000:00:01.0", None, None),
            raw("0000:01:00.0", Some("0000:00:01.0"), None),
            raw("0000:02:00.0", Some("0000:01:00.0"), None),
            raw("0000:03:00.0", Some("0000:02:00.0"), None),
            raw("0000:00:02.0", None, None),
        ];
        for d in devs.iter_mut().take(3) {
            d.header_type = Some(HeaderType::Bridge);
        }
        // Header unreadable too: the class code says "endpoint".
        devs[3].header_type = None;
        for d in &mut devs {
            d.config_len = 64;
        }
        let imp = import(&scan(devs), &opts());
        let got: Vec<(Bdf, PortType)> = imp
            .machine
            .topology
            .devices()
            .map(|(_, d)| (d.bdf, d.port))
            .collect();
        assert_eq!(
            got,
            [
                (b("0000:00:01.0"), PortType::RootPort),
                (b("0000:00:02.0"), PortType::RcEndpoint),
                (b("0000:01:00.0"), PortType::SwitchUpstream),
                (b("0000:02:00.0"), PortType::SwitchDownstream),
                (b("0000:03:00.0"), PortType::Endpoint),
            ]
        );
        assert_eq!(imp.warnings.len(), 5);
        assert!(imp.warnings.iter().all(|w| matches!(
            w.what,
            ImportProblem::PortTypeGuessed { config_len: 64, .. }
        )));
    }

    #[test]
    fn inconsistencies_drop_the_offender_and_its_subtree() {
        let rp = raw("0000:00:01.0", None, Some(PcieType::RootPort));
        let mut ep = raw(
            "0000:01:00.0",
            Some("0000:00:01.0"),
            Some(PcieType::Endpoint),
        );
        ep.bars = vec![mem(0, 0x1_0000_0000, 0x10_0000, true)];
        let mut dup = raw(
            "0000:01:00.0",
            Some("0000:00:01.0"),
            Some(PcieType::Endpoint),
        );
        dup.vendor = 0xdead;
        // Below an endpoint: not a bridge.
        let under_ep = raw(
            "0000:02:00.0",
            Some("0000:01:00.0"),
            Some(PcieType::Endpoint),
        );
        // A loop: 05 -> 06 -> 05, and 07 below the loop.
        let c1 = raw(
            "0000:05:00.0",
            Some("0000:06:00.0"),
            Some(PcieType::RootPort),
        );
        let c2 = raw(
            "0000:06:00.0",
            Some("0000:05:00.0"),
            Some(PcieType::RootPort),
        );
        let c3 = raw(
            "0000:07:00.0",
            Some("0000:05:00.0"),
            Some(PcieType::Endpoint),
        );
        // A switch whose BAR overlaps the endpoint's: it and its child go.
        let mut sw = raw("0000:40:00.0", None, Some(PcieType::RootPort));
        sw.bars = vec![mem(0, 0x1_0008_0000, 0x1000, true)];
        let below = raw(
            "0000:41:00.0",
            Some("0000:40:00.0"),
            Some(PcieType::Endpoint),
        );
        // Other domain parent.
        let cross = raw(
            "0001:02:00.0",
            Some("0000:00:01.0"),
            Some(PcieType::Endpoint),
        );
        let imp = import(
            &scan(vec![rp, ep, dup, under_ep, c1, c2, c3, sw, below, cross]),
            &opts(),
        );
        let t = &imp.machine.topology;
        let kept: Vec<String> = t.devices().map(|(_, d)| d.bdf.to_string()).collect();
        assert_eq!(kept, ["0000:00:01.0", "0000:01:00.0"]);
        assert_eq!(
            t.device(t.lookup(b("0000:01:00.0")).unwrap())
                .unwrap()
                .vendor,
            0x1234
        );
        let p = problems(&imp);
        let want = [
            (b("0000:01:00.0"), ImportProblem::DuplicateBdf),
            (b("0000:05:00.0"), ImportProblem::ParentCycle),
            (b("0000:06:00.0"), ImportProblem::ParentCycle),
            (b("0000:07:00.0"), ImportProblem::ParentCycle),
            (
                b("0000:02:00.0"),
                ImportProblem::Rejected(TopologyError::ParentNotBridge {
                    bdf: b("0000:02:00.0"),
                    parent: b("0000:01:00.0"),
                    port: PortType::Endpoint,
                }),
            ),
            (
                b("0001:02:00.0"),
                ImportProblem::Rejected(TopologyError::DomainMismatch {
                    bdf: b("0001:02:00.0"),
                    parent: b("0000:00:01.0"),
                }),
            ),
            (
                b("0000:40:00.0"),
                ImportProblem::BarOverlap {
                    index: 0,
                    other: b("0000:01:00.0"),
                    other_index: 0,
                },
            ),
            (
                b("0000:41:00.0"),
                ImportProblem::ParentDropped {
                    parent: b("0000:40:00.0"),
                },
            ),
        ];
        for (bdf, what) in want {
            assert!(p.contains(&(Some(bdf), what.clone())), "{what:?} in {p:?}");
        }
        assert_eq!(p.len(), 8, "{p:?}");
        imp.machine.check_invariants().unwrap();
        assert_eq!(imp.machine.memmap.ranges().len(), 1);
    }

    #[test]
    fn bad_bars_are_left_out_alone() {
        let mut ep = raw("0000:00:03.0", None, Some(PcieType::RcIntegratedEndpoint));
        ep.bars = vec![
            mem(0, 0x1_0000_0000, 0x3000, true),    // not a power of two
            mem(2, 0x1_0000_1000, 0x2000, true),    // misaligned
            mem(3, 0x1_0000_0000, 0x1000, false),   // 32-bit above 4 GiB
            mem(4, 0xfe00_0000, 0x1000, false),     // fine
            mem(5, 0xfe00_0000, 0x8, false),        // too small
            mem(6, 0xfe10_0000, 0x1000, false),     // ROM slot: ignored
            mem(13, 0xfe20_0000, 0x10_0000, false), // window slot: ignored
        ];
        let imp = import(&scan(vec![ep]), &opts());
        let t = &imp.machine.topology;
        let d = t.device(t.lookup(b("0000:00:03.0")).unwrap()).unwrap();
        let idx: Vec<u8> = d.bars.iter().map(|b| b.index).collect();
        assert_eq!(idx, [4]);
        let dropped: Vec<u8> = imp
            .warnings
            .iter()
            .filter_map(|w| match &w.what {
                ImportProblem::BarDropped { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(dropped, [0, 2, 3, 5]);
        // The host bridge's identity window covers the kept BAR exactly.
        let hb = &t.host_bridges()[0];
        assert_eq!(hb.name, "pci0000:00");
        assert_eq!(
            hb.mmio.windows(),
            [AddrWindow::identity(PhysAddr::new(0xfe00_0000), 0x1000)]
        );
    }

    #[test]
    fn windows_follow_address_runs_per_bridge() {
        let mut a = raw("0000:00:01.0", None, Some(PcieType::RcIntegratedEndpoint));
        a.bars = vec![
            mem(0, 0x1000_0000, 0x1000, false),
            mem(2, 0x3000_0000, 0x1000, false),
        ];
        let mut c = raw("0000:80:01.0", None, Some(PcieType::RcIntegratedEndpoint));
        c.bars = vec![mem(0, 0x2000_0000, 0x10_0000, false)];
        c.iommu_group = Some(3);
        let imp = import(&scan(vec![a, c]), &opts());
        let hbs = imp.machine.topology.host_bridges();
        assert_eq!(hbs.len(), 2);
        assert_eq!(
            hbs[0].mmio.windows(),
            [
                AddrWindow::identity(PhysAddr::new(0x1000_0000), 0x1000),
                AddrWindow::identity(PhysAddr::new(0x3000_0000), 0x1000)
            ]
        );
        assert_eq!(
            hbs[1].mmio.windows(),
            [AddrWindow::identity(PhysAddr::new(0x2000_0000), 0x10_0000)]
        );
        assert_eq!((hbs[0].iommu, hbs[1].iommu), (false, true));
        assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);

        // A path naming another root bus than the address: the address wins.
        let mut m = raw("0000:81:00.0", None, Some(PcieType::RcIntegratedEndpoint));
        m.host_bridge = Some(PathHostBridge {
            domain: 0,
            bus: 0x80,
        });
        let imp = import(&scan(vec![m]), &opts());
        assert_eq!(imp.machine.topology.host_bridges()[0].name, "pci0000:81");
        assert_eq!(
            problems(&imp),
            [(
                Some(b("0000:81:00.0")),
                ImportProblem::HostBridgeMismatch {
                    path: "pci0000:80".into(),
                    used: "pci0000:81".into()
                }
            )]
        );
    }

    #[test]
    fn orphans_get_a_root_bus_and_labels_are_unique() {
        let mut a = raw(
            "0000:03:00.0",
            Some("0000:00:1c.0"),
            Some(PcieType::Endpoint),
        );
        a.driver = Some("nvme".into());
        let mut c = raw(
            "0000:04:00.0",
            Some("0000:00:1d.0"),
            Some(PcieType::Endpoint),
        );
        c.driver = Some("nvme".into());
        let mut d = raw("0000:00:1f.0", None, Some(PcieType::RcIntegratedEndpoint));
        d.driver = Some("lpc_ich".into());
        let imp = import(&scan(vec![a, c, d]), &opts());
        let t = &imp.machine.topology;
        let names: Vec<(String, Option<String>, String)> = t
            .devices()
            .map(|(_, d)| {
                let hb = t.host_bridge(d.host_bridge).unwrap().name.clone();
                (d.bdf.to_string(), d.name.clone(), hb)
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "0000:00:1f.0".into(),
                    Some("lpc_ich".into()),
                    "pci0000:00".into()
                ),
                (
                    "0000:03:00.0".into(),
                    Some("nvme-0".into()),
                    "pci0000:03".into()
                ),
                (
                    "0000:04:00.0".into(),
                    Some("nvme-1".into()),
                    "pci0000:04".into()
                ),
            ]
        );
        let p = problems(&imp);
        assert!(p.contains(&(
            Some(b("0000:03:00.0")),
            ImportProblem::Orphan {
                parent: b("0000:00:1c.0")
            }
        )));
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn ram_ranges_skip_bars() {
        let mut ep = raw("0000:00:03.0", None, Some(PcieType::RcIntegratedEndpoint));
        ep.bars = vec![
            mem(0, 0x8000_0000, 0x1000, false),
            mem(2, 0x8000_2000, 0x2000, false),
            mem(4, 0x1_0000_0000, 0x1000, true),
        ];
        let rr = |s: u64, n: u64| RamRange {
            start: PhysAddr::new(s),
            size: n,
        };
        // Unsorted, one adjacent pair (merged), one range starting on a BAR.
        let ram = [
            rr(0x8000_0000, 0x1_0000),
            rr(0x10_0000, 0x1000),
            rr(0x10_1000, 0x1000),
            rr(0x1_0000_0000, 0x4000),
        ];
        let imp = import_with_ram(&scan(vec![ep]), &ram, &opts());
        let got: Vec<(u64, u64, RangeKind)> = imp
            .machine
            .memmap
            .ranges()
            .iter()
            .map(|r| (r.start.raw(), r.size, r.kind))
            .collect();
        let bar = |i| RangeKind::Bar {
            provider: imp
                .machine
                .topology
                .devices()
                .next()
                .unwrap()
                .0
                .provider_id(),
            bar: i,
        };
        assert_eq!(
            got,
            [
                (0x10_0000, 0x2000, RangeKind::Ram),
                (0x8000_0000, 0x1000, bar(0)),
                (0x8000_1000, 0x1000, RangeKind::Ram),
                (0x8000_2000, 0x2000, bar(2)),
                (0x8000_4000, 0xc000, RangeKind::Ram),
                (0x1_0000_0000, 0x1000, bar(4)),
                (0x1_0000_1000, 0x3000, RangeKind::Ram),
            ]
        );
        let over: Vec<(Option<Bdf>, u8)> = imp
            .warnings
            .iter()
            .filter_map(|w| match &w.what {
                ImportProblem::RamOverlapsBar { index, .. } => Some((w.bdf, *index)),
                _ => None,
            })
            .collect();
        let me = Some(b("0000:00:03.0"));
        assert_eq!(over, [(me, 0), (me, 2), (me, 4)]);
        assert_eq!(imp.warnings.len(), 3, "{:?}", imp.warnings);
        assert_eq!(
            imp.machine.memmap.ram_bytes(),
            0x2000 + 0x1000 + 0xc000 + 0x3000
        );
        imp.machine.check_invariants().unwrap();
        // A RAM range wholly inside a BAR adds nothing.
        let mut ep = raw("0000:00:03.0", None, Some(PcieType::RcIntegratedEndpoint));
        ep.bars = vec![mem(0, 0x8000_0000, 0x10_0000, false)];
        let imp = import_with_ram(&scan(vec![ep]), &[rr(0x8000_1000, 0x10)], &opts());
        assert_eq!(imp.machine.memmap.ram_bytes(), 0);
        assert_eq!(imp.warnings.len(), 1);
        // Invalid ranges (public fields) are refused by name.
        let imp = import_with_ram(
            &scan(Vec::new()),
            &[rr(0x1000, 0), rr(u64::MAX, 2), rr(0x2000, 0x1000)],
            &opts(),
        );
        assert_eq!(imp.machine.memmap.ram_bytes(), 0x1000);
        let dropped: Vec<String> = imp.warnings.iter().map(|w| w.what.to_string()).collect();
        assert_eq!(
            dropped,
            [
                "RAM range left out: [0x1000 +0x0] is empty or wraps",
                "RAM range left out: [0xffffffffffffffff +0x2] is empty or wraps"
            ]
        );
    }

    #[test]
    fn empty_scan_is_an_empty_machine() {
        let imp = import(&scan(Vec::new()), &opts());
        assert!(imp.machine.topology.is_empty());
        assert!(imp.machine.memmap.ranges().is_empty());
        assert!(imp.warnings.is_empty());
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use crate::sysfs::RawBar;
    use dma_pci::types::PhysAddr;
    use proptest::prelude::*;

    fn bdf_of(i: u8) -> Bdf {
        Bdf::new(u32::from(i >> 6), i & 7, (i >> 3) & 7, 0).unwrap_or_default()
    }

    prop_compose! {
        fn arb_dev()(
            me in any::<u8>(),
            parent in proptest::option::of(any::<u8>()),
            ty in proptest::option::of(0u8..11),
            hdr in 0u8..4,
            cfg in prop_oneof![Just(64usize), Just(256), Just(4096)],
            bars in proptest::collection::vec(
                (0usize..8, 0u64..64, 0u32..34, any::<bool>(), any::<bool>()), 0..4),
            mask in proptest::option::of(0u32..70),
            group in proptest::option::of(0u32..4),
        ) -> RawPciDevice {
            let bdf = bdf_of(me);
            RawPciDevice {
                bdf,
                parent: parent.map(bdf_of),
                host_bridge: Some(PathHostBridge { domain: bdf.domain(), bus: 0 }),
                sysfs_path: PathBuf::new(),
                vendor: 1,
                device: 2,
                class: 0x060400,
                revision: None,
                header_type: HeaderType::from_raw(hdr),
                multifunction: Some(hdr & 1 == 1),
                bridge_buses: None,
                pcie_type: ty.and_then(PcieType::from_raw),
                acs: None,
                config_len: cfg,
                bars: bars.into_iter().map(|(index, start, shift, is_64, prefetch)| RawBar {
                    index,
                    start: PhysAddr::new(start << 12),
                    size: 1u64 << shift,
                    is_mem: true,
                    is_io: false,
                    is_64,
                    prefetch,
                }).collect(),
                numa_node: None,
                iommu_group: group,
                driver: None,
                dma_mask_bits: mask,
            }
        }
    }

    proptest! {
        #[test]
        fn any_scan_imports_to_a_valid_machine(devs in proptest::collection::vec(arb_dev(), 0..24)) {
            let opts = ImportOptions {
                name: "p".into(),
                source: "p".into(),
                arch: ArchName::X86_64,
                cpu: CpuInfo::default(),
                default_coherent: true,
            };
            let n = devs.len();
            let input: BTreeSet<Bdf> = devs.iter().map(|d| d.bdf).collect();
            let imp = import(&SysfsScan { devices: devs, warnings: Vec::new() }, &opts);
            prop_assert!(imp.machine.check_invariants().is_ok());
            prop_assert!(imp.machine.topology.len() <= n);
            // Every function is either in the machine or named by a warning.
            let named: BTreeSet<Bdf> = imp.warnings.iter().filter_map(|w| w.bdf).collect();
            for b in input {
                prop_assert!(
                    imp.machine.topology.lookup(b).is_some() || named.contains(&b),
                    "{} vanished silently", b
                );
            }
        }
    }
}
