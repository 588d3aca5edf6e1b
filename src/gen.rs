//! Synthetic machine files of any size, for measuring how the CLI scales
//! (`unidma gen`) and for tests that need a large machine.
//!
//! Two shapes, the two extremes a real server mixes:
//!
//! * [`Shape::Switch`]: per PCI domain, root ports on root bus 0, each
//!   leading to a PCIe switch (upstream port, 8 downstream ports) with one
//!   8-function endpoint below each downstream port; deep trees, one bus
//!   per port;
//! * [`Shape::Flat`]: multifunction root-complex integrated endpoints, 32
//!   devices x 8 functions = 256 functions per root bus, one host bridge per
//!   root bus; no bridges at all.
//!
//! Every endpoint function has a 64 KiB memory BAR; the providers (spread
//! evenly over the endpoints) also have a 1 MiB 64-bit prefetchable BAR
//! registered as p2pmem. The output is deterministic: the same
//! [`GenSpec`] gives the same bytes. Bus numbering stays within 256 buses
//! per domain; a domain that fills up opens the next.
//!
//! NUMA: [`machine_toml_on_nodes`] spreads the host bridges round-robin
//! over K nodes (bridge i on node i mod K, a bridge per PCI domain in the
//! switch shape, per root bus in the flat one), as a multi-socket server
//! spreads its root complexes over the sockets. One node (the default) is
//! left unsaid: no `numa_node`, as on a single-node machine whose firmware
//! gives no proximity domain, and the same bytes as before nodes existed.

use std::fmt::Write as _;

/// The most functions a generated machine may have: the machine-file limit.
pub const MAX_FUNCTIONS: usize = 1 << 16;

/// The most NUMA nodes a generated machine may spread over: Linux's
/// largest `MAX_NUMNODES` ([`dma_api::topology::NumaNode::LIMIT`]).
pub const MAX_NUMA_NODES: usize = dma_api::topology::NumaNode::LIMIT as usize;

/// Topology shape of a generated machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Root ports, switches, downstream ports, 8-function endpoints.
    Switch,
    /// 8-function RC-integrated endpoints, 256 per root bus.
    Flat,
}

impl Shape {
    /// `switch` or `flat`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Flat => "flat",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSpec {
    /// Total PCI functions (ports and endpoints), `1..=MAX_FUNCTIONS`.
    pub functions: usize,
    /// The shape.
    pub shape: Shape,
    /// Registered p2pmem providers, at most the number of endpoint
    /// functions; `None`: a quarter of them.
    pub providers: Option<usize>,
}

/// A spec that cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenError {
    /// `functions` is 0 or above [`MAX_FUNCTIONS`].
    Functions(usize),
    /// A NUMA node count of 0 or above the node limit.
    NumaNodes(usize),
    /// More providers than the machine has endpoints.
    Providers {
        /// Asked.
        asked: usize,
        /// Endpoints of the machine.
        endpoints: usize,
    },
}

impl core::fmt::Display for GenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Functions(n) => write!(
                f,
                "--functions {n}: a machine has 1 to {MAX_FUNCTIONS} functions"
            ),
            Self::NumaNodes(k) => write!(
                f,
                "--numa-nodes {k}: a machine has 1 to {MAX_NUMA_NODES} NUMA nodes"
            ),
            Self::Providers { asked, endpoints } => write!(
                f,
                "--providers {asked}: the machine has only {endpoints} endpoint function(s) to register p2pmem"
            ),
        }
    }
}

impl core::error::Error for GenError {}

/// One function of the layout.
struct Func {
    domain: u32,
    bus: u8,
    dev: u8,
    func: u8,
    kind: &'static str,
    parent: Option<(u8, u8, u8)>,
    multifunction: bool,
}

impl Func {
    fn is_endpoint(&self) -> bool {
        matches!(self.kind, "endpoint" | "rc_endpoint")
    }
}

/// Downstream ports per switch.
const DS_PER_SWITCH: u8 = 8;
/// Functions of each endpoint device.
const FUNCS_PER_EP: u8 = 8;
/// Buses one root port's switch tree uses: upstream bus, internal bus,
/// one per downstream port.
const BUSES_PER_SWITCH: u16 = 2 + DS_PER_SWITCH as u16;
/// MMIO window of each host bridge (CPU = bus addresses).
const WINDOW: u64 = 1 << 36;
/// First MMIO window.
const MMIO_BASE: u64 = 1 << 44;
/// Per-function slot in a window: BAR0 (64 KiB) then the provider BAR
/// (1 MiB) in the upper half of the window.
const SLOT_BAR0: u64 = 1 << 16;
const SLOT_P2P: u64 = 1 << 20;

fn switch_layout(n: usize) -> (Vec<Func>, Vec<(u32, u8)>) {
    let mut v = Vec::with_capacity(n);
    let mut bridges = Vec::new();
    let mut domain = 0u32;
    'outer: loop {
        bridges.push((domain, 0));
        let mut next_bus: u16 = 1;
        let mut rp = 0u16;
        while next_bus + BUSES_PER_SWITCH <= 256 && rp < 32 * 8 {
            let (rd, rf) = ((rp / 8) as u8, (rp % 8) as u8);
            let push = |v: &mut Vec<Func>, f: Func| {
                v.push(f);
                v.len() >= n
            };
            let up_bus = next_bus as u8;
            let int_bus = up_bus + 1;
            if push(
                &mut v,
                Func {
                    domain,
                    bus: 0,
                    dev: rd,
                    func: rf,
                    kind: "root_port",
                    parent: None,
                    multifunction: true,
                },
            ) || push(
                &mut v,
                Func {
                    domain,
                    bus: up_bus,
                    dev: 0,
                    func: 0,
                    kind: "switch_upstream",
                    parent: Some((0, rd, rf)),
                    multifunction: false,
                },
            ) {
                break 'outer;
            }
            for ds in 0..DS_PER_SWITCH {
                let ep_bus = int_bus + 1 + ds;
                if push(
                    &mut v,
                    Func {
                        domain,
                        bus: int_bus,
                        dev: ds,
                        func: 0,
                        kind: "switch_downstream",
                        parent: Some((up_bus, 0, 0)),
                        multifunction: false,
                    },
                ) {
                    break 'outer;
                }
                for f in 0..FUNCS_PER_EP {
                    if push(
                        &mut v,
                        Func {
                            domain,
                            bus: ep_bus,
                            dev: 0,
                            func: f,
                            kind: "endpoint",
                            parent: Some((int_bus, ds, 0)),
                            multifunction: true,
                        },
                    ) {
                        break 'outer;
                    }
                }
            }
            next_bus += BUSES_PER_SWITCH;
            rp += 1;
        }
        domain += 1;
    }
    (v, bridges)
}

fn flat_layout(n: usize) -> (Vec<Func>, Vec<(u32, u8)>) {
    let mut v = Vec::with_capacity(n);
    let mut bridges = Vec::new();
    for i in 0..n {
        let bus_index = i / 256;
        let domain = (bus_index / 256) as u32;
        let bus = (bus_index % 256) as u8;
        if i % 256 == 0 {
            bridges.push((domain, bus));
        }
        let within = (i % 256) as u8;
        v.push(Func {
            domain,
            bus,
            dev: within / 8,
            func: within % 8,
            kind: "rc_endpoint",
            parent: None,
            multifunction: true,
        });
    }
    (v, bridges)
}

fn bdf(domain: u32, bus: u8, dev: u8, func: u8) -> String {
    format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}")
}

/// The machine file (TOML) for `spec`, on one NUMA node (left unsaid).
pub fn machine_toml(spec: &GenSpec) -> Result<String, GenError> {
    machine_toml_on_nodes(spec, 1)
}

/// The machine file (TOML) for `spec` with its host bridges spread
/// round-robin over `numa_nodes` nodes (`1..=MAX_NUMA_NODES`; 1 writes no
/// `numa_node`, see the module doc).
pub fn machine_toml_on_nodes(spec: &GenSpec, numa_nodes: usize) -> Result<String, GenError> {
    if spec.functions == 0 || spec.functions > MAX_FUNCTIONS {
        return Err(GenError::Functions(spec.functions));
    }
    if numa_nodes == 0 || numa_nodes > MAX_NUMA_NODES {
        return Err(GenError::NumaNodes(numa_nodes));
    }
    let (funcs, bridges) = match spec.shape {
        Shape::Switch => switch_layout(spec.functions),
        Shape::Flat => flat_layout(spec.functions),
    };
    let endpoints = funcs.iter().filter(|f| f.is_endpoint()).count();
    let providers = spec.providers.unwrap_or(endpoints / 4);
    if providers > endpoints {
        return Err(GenError::Providers {
            asked: providers,
            endpoints,
        });
    }
    let mut o = String::with_capacity(spec.functions * 220);
    let nodes_arg = if numa_nodes > 1 {
        format!(" --numa-nodes {numa_nodes}")
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "# Generated by `unidma gen --functions {} --shape {} --providers {providers}{nodes_arg}`.\n",
        spec.functions,
        spec.shape.name(),
    );
    let _ = writeln!(
        o,
        "[machine]\nname = \"gen-{}-{}\"\narch = \"x86_64\"\ncpu_vendor = \"intel\"\ncpu_family = 6\n",
        spec.shape.name(),
        spec.functions
    );
    let _ = writeln!(o, "[[ram]]\nstart = 0\nsize = \"2G\"\n");
    let _ = writeln!(o, "[[ram]]\nstart = \"4G\"\nsize = \"60G\"\n");
    for (i, (domain, bus)) in bridges.iter().enumerate() {
        let _ = write!(
            o,
            "[[host_bridge]]\nname = \"pci{domain:04x}:{bus:02x}\"\ndomain = {domain}\nbus = {bus}\nvendor = 0x8086\ndevice = 0x2020\n"
        );
        if numa_nodes > 1 {
            let _ = writeln!(o, "numa_node = {}", i % numa_nodes);
        }
        let _ = writeln!(
            o,
            "mmio = [{{ cpu = {:#x}, size = {WINDOW:#x} }}]\n",
            MMIO_BASE + i as u64 * WINDOW
        );
    }
    let window_of = |f: &Func| {
        bridges
            .iter()
            .position(|b| *b == (f.domain, if f.parent.is_none() { f.bus } else { 0 }))
            .unwrap_or(0) as u64
    };
    let mut ep = 0usize;
    let mut slot_in_window = 0u64;
    let mut last_window = u64::MAX;
    for f in &funcs {
        let (class, device) = match f.kind {
            "endpoint" | "rc_endpoint" => (0x02_0000u32, 0x1572u16),
            _ => (0x06_0400, 0x8747),
        };
        let _ = write!(
            o,
            "[[device]]\nbdf = \"{}\"\nkind = \"{}\"\nvendor = 0x8086\ndevice = {device:#06x}\nclass = {class:#08x}\n",
            bdf(f.domain, f.bus, f.dev, f.func),
            f.kind
        );
        if f.multifunction {
            o.push_str("multifunction = true\n");
        }
        if let Some((b, d, fu)) = f.parent {
            let _ = writeln!(o, "parent = \"{}\"", bdf(f.domain, b, d, fu));
        }
        match f.kind {
            "root_port" => o.push_str("acs_cap = \"SV|RR|CR|UF\"\nacs_ctrl = \"SV|RR|CR|UF\"\n"),
            "switch_downstream" => o.push_str("acs_cap = \"SV|RR|CR|UF\"\nacs_ctrl = \"SV\"\n"),
            _ => {}
        }
        if f.is_endpoint() {
            let w = window_of(f);
            if w != last_window {
                last_window = w;
                slot_in_window = 0;
            }
            let base = MMIO_BASE + w * WINDOW;
            let bar0 = base + slot_in_window * SLOT_BAR0;
            let _ = write!(
                o,
                "name = \"nic{ep}\"\nbars = [{{ index = 0, addr = {bar0:#x}, size = \"64K\", mem64 = true }}"
            );
            // Provider k of P sits at endpoint floor(k * E / P): evenly spread.
            let provider =
                providers > 0 && (ep * providers) / endpoints != ((ep + 1) * providers) / endpoints;
            if provider {
                let p2p = base + WINDOW / 2 + slot_in_window * SLOT_P2P;
                let _ = write!(
                    o,
                    ", {{ index = 2, addr = {p2p:#x}, size = \"1M\", mem64 = true, prefetchable = true }}]\np2pmem = [{{ bar = 2, publish = true }}]\n"
                );
            } else {
                o.push_str("]\n");
            }
            ep += 1;
            slot_in_window += 1;
        }
        o.push('\n');
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dma_sim::machine::Machine;

    fn load(spec: &GenSpec) -> Machine {
        let text = machine_toml(spec).unwrap();
        Machine::from_toml_str("gen.toml", &text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn generated_machines_load_with_the_asked_counts() {
        for shape in [Shape::Switch, Shape::Flat] {
            for (n, p) in [(1, 0), (75, 3), (600, 50), (3000, 500)] {
                let spec = GenSpec {
                    functions: n,
                    shape,
                    providers: Some(p),
                };
                let m = load(&spec);
                assert_eq!(m.topology.len(), n, "{spec:?}");
                assert_eq!(m.p2pmem.providers().count(), p, "{spec:?}");
            }
        }
    }

    #[test]
    fn switch_trees_open_a_new_domain_when_buses_run_out() {
        let m = load(&GenSpec {
            functions: 5000,
            shape: Shape::Switch,
            providers: Some(10),
        });
        assert!(m.topology.host_bridges().len() >= 3);
    }

    #[test]
    fn host_bridges_spread_round_robin_over_the_nodes() {
        use dma_api::topology::NumaNode;
        let spec = GenSpec {
            functions: 2048,
            shape: Shape::Flat,
            providers: Some(4),
        };
        let m = Machine::from_toml_str("gen.toml", &machine_toml_on_nodes(&spec, 3).unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let nodes: Vec<Option<u16>> = m
            .topology
            .host_bridges()
            .iter()
            .map(|h| h.numa_node.map(NumaNode::get))
            .collect();
        assert_eq!(
            nodes,
            [0, 1, 2, 0, 1, 2, 0, 1].map(Some).to_vec(),
            "8 root buses of 256 functions"
        );
        // Functions inherit their host bridge's node.
        for (_, d) in m.topology.devices() {
            let hb = m.topology.host_bridge(d.host_bridge).unwrap();
            assert_eq!(d.numa_node, hb.numa_node, "{}", d.bdf);
        }
        // One node: the same bytes as before, no node written.
        let one = machine_toml_on_nodes(&spec, 1).unwrap();
        assert_eq!(one, machine_toml(&spec).unwrap());
        assert!(!one.contains("numa_node"));
    }

    #[test]
    fn bad_node_counts_are_refused_naming_the_value() {
        let spec = GenSpec {
            functions: 10,
            shape: Shape::Flat,
            providers: None,
        };
        for k in [0, 1025, usize::MAX] {
            let e = machine_toml_on_nodes(&spec, k).unwrap_err();
            assert_eq!(e, GenError::NumaNodes(k));
            assert_eq!(
                e.to_string(),
                format!("--numa-nodes {k}: a machine has 1 to 1024 NUMA nodes")
            );
        }
        assert!(machine_toml_on_nodes(&spec, 1024).is_ok());
    }

    #[test]
    fn bad_specs_are_refused_naming_the_value() {
        let e = machine_toml(&GenSpec {
            functions: 0,
            shape: Shape::Flat,
            providers: Some(0),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--functions 0: a machine has 1 to 65536 functions"
        );
        let e = machine_toml(&GenSpec {
            functions: 2,
            shape: Shape::Switch,
            providers: Some(1),
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--providers 1: the machine has only 0 endpoint function(s) to register p2pmem"
        );
    }
}
