//! 12. nvmet offload: an NVMe-oF target over RDMA serves a host write and
//!     the read back, once with its I/O buffers in p2pmem chosen by
//!     `find_many` over {NIC, namespace device} (the 2017–18 copy-offload
//!     case: the NIC fills an NVMe CMB, the namespace's controller reads
//!     it) and once with system memory. The fabric counts data bytes
//!     through RAM (PRP-list fetches taken out: descriptors live in
//!     coherent RAM either way), through the root complex and per link;
//!     the host gets back exactly what it wrote both times.

use super::{check, device, failed, pattern, skip, Scenario, Stop, Trial};
use dma_api::{Bdf, DmaAddr};
use dma_consumers::nvme::{Namespace, Nvme};
use dma_consumers::nvmet::{NvmetPort, P2pMemSetting, ProviderChoice, Source, Target};
use dma_consumers::rdma::RdmaNic;
use dma_consumers::wire::Wire;
use dma_sim::assembly::Assembly;
use std::collections::BTreeMap;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "nvmet-offload",
    description: "nvmet over RDMA writes and reads back through p2pmem (no data byte through RAM) and through system memory (twice per direction), byte-exact",
    run,
};

const LEN: u64 = 0x1_0000;
const NETWORK: u32 = 0x02;
const NVME_CLASS: u32 = 0x01_0802;

struct FabricWire<'a>(&'a Assembly);

impl Wire for FabricWire<'_> {
    fn dma_read(&self, who: Bdf, at: DmaAddr, buf: &mut [u8]) -> Result<(), String> {
        self.0
            .fabric
            .dma_read(who, at, buf)
            .map_err(|f| f.to_string())
    }

    fn dma_write(&self, who: Bdf, at: DmaAddr, data: &[u8]) -> Result<(), String> {
        self.0
            .fabric
            .dma_write(who, at, data)
            .map_err(|f| f.to_string())
    }
}

/// Counters at one moment: RAM, root complex, every link.
struct Snap {
    ram: u64,
    rc: u64,
    links: BTreeMap<String, u64>,
}

fn snap(a: &Assembly) -> Snap {
    Snap {
        ram: a.fabric.ram_bytes(),
        rc: a.fabric.root_complex_bytes(),
        links: a
            .fabric
            .links()
            .into_iter()
            .map(|(l, b)| (l.to_string(), b.total()))
            .collect(),
    }
}

/// One phase's numbers: data bytes through RAM (descriptor fetches taken
/// out), root-complex bytes, per-link bytes.
struct Phase {
    ram_data: u64,
    rc: u64,
    links: Vec<(String, u64)>,
    source: String,
    /// The NIC's first SGE of the write (where host data landed).
    first_sge: DmaAddr,
}

fn phase(a: &Assembly, nic: Bdf, ns: Bdf, setting: P2pMemSetting, seed: u8) -> Result<Phase, Stop> {
    let nic_dev = RdmaNic::new(device(a, nic)?);
    let nvme = Nvme::probe(device(a, ns)?).map_err(failed("NVMe probe"))?;
    let port = NvmetPort::new(a.ctx.clone(), nic, vec![ns], setting);
    let mut t = Target::new(port, nic_dev, nvme, Namespace::new(1 << 16))
        .map_err(failed("target connect"))?;
    let before = snap(a);
    let d0 = t.controller().descriptor_bytes();
    let wire = FabricWire(a);
    let data = pattern(LEN, seed);
    let w = t
        .host_write(&wire, 8, &data)
        .map_err(failed("host write"))?;
    let (back, r) = t.host_read(&wire, 8, LEN).map_err(failed("host read"))?;
    check(back == data, || {
        format!("the host read back other bytes than it wrote ({setting:?})")
    })?;
    check(w.source == r.source, || {
        "the two buffers differ in kind".into()
    })?;
    let after = snap(a);
    let desc = t.controller().descriptor_bytes() - d0;
    let links = after
        .links
        .iter()
        .map(|(k, v)| (k.clone(), v - before.links.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let source = match &w.source {
        Source::P2pMem { provider } => format!("p2pmem of {provider}"),
        Source::SystemMemory(why) => format!("system memory ({why})"),
    };
    let first_sge = w
        .nic_sges
        .first()
        .map(|s| s.dma)
        .ok_or_else(|| Stop::Fail("the NIC had no SGE".into()))?;
    Ok(Phase {
        first_sge,
        ram_data: (after.ram - before.ram).saturating_sub(desc),
        rc: after.rc - before.rc,
        links,
        source,
    })
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    // What the machine description answers is asked before assembling: a
    // machine without a NIC and an NVMe controller is skipped without one.
    // The masters are its endpoints that can be DMA masters, in BDF order,
    // as `super::masters` lists them on the assembly.
    let topo = &t.machine().topology;
    let mut masters: Vec<(Bdf, u32)> = topo
        .devices()
        .filter(|(_, d)| !d.port.is_bridge() && super::is_master(d))
        .map(|(_, d)| (d.bdf, d.class))
        .collect();
    masters.sort_by_key(|m| m.0);
    let nic = masters
        .iter()
        .find(|m| m.1 >> 16 == NETWORK)
        .map(|m| m.0)
        .ok_or_else(|| skip("no network device to serve the port"))?;
    let nvmes: Vec<Bdf> = masters
        .iter()
        .filter(|m| m.1 == NVME_CLASS)
        .map(|m| m.0)
        .collect();
    if nvmes.is_empty() {
        return Err(skip("no NVMe controller for the namespace"));
    }
    let a = t.assemble(t.mode())?;
    // The namespace: the first NVMe for which find_many over {NIC, it}
    // finds a provider other than itself, else one that is its own.
    let mut picks = Vec::new();
    for &ns in &nvmes {
        let port = NvmetPort::new(a.ctx.clone(), nic, vec![ns], P2pMemSetting::Auto);
        if let Ok(ProviderChoice::Provider { device, distance }) = port.choose() {
            picks.push((device == ns, ns, device, distance));
        }
    }
    picks.sort();
    let &(_, ns, provider, distance) = picks
        .first()
        .ok_or_else(|| skip("no published p2pmem suits the NIC and an NVMe namespace"))?;
    t.note(format!(
        "port: NIC {nic}, namespace on {ns}; p2pmem \"1\": find_many picks {provider} (distance {distance})"
    ));
    let p2p = phase(&a, nic, ns, P2pMemSetting::Auto, 0x31)?;
    let ram = phase(&a, nic, ns, P2pMemSetting::Off, 0x32)?;
    // The key transfer: the NIC's write of host data into the p2pmem buffer.
    t.record_route(&a, nic, p2p.first_sge, true);
    for (name, p) in [("p2pmem", &p2p), ("system memory", &ram)] {
        t.note(format!(
            "{name}: buffers in {}; write + read of {LEN} bytes: {} data bytes through RAM, {} root-complex bytes",
            p.source, p.ram_data, p.rc
        ));
        for (l, b) in &p.links {
            t.note(format!("  link {l}: {b} bytes"));
        }
        t.note("  readback byte-exact");
    }
    check(p2p.ram_data == 0, || {
        format!("{} data bytes passed through RAM with p2pmem", p2p.ram_data)
    })?;
    check(ram.ram_data == 4 * LEN, || {
        format!(
            "system memory moved {} data bytes through RAM, not {} (twice each way)",
            ram.ram_data,
            4 * LEN
        )
    })?;
    Ok(format!(
        "write+read of {LEN} bytes: 0 data bytes through RAM with p2pmem of {provider}, {} with system memory; byte-exact both",
        ram.ram_data
    ))
}
