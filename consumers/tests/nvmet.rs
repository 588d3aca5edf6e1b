//! nvmet over RDMA on the reference server: the p2pmem setting parsed with
//! the kernel's rules, the provider chosen by `find_many` over {NIC,
//! namespace device}, and the offload itself — the NIC writes host data
//! into the buffer, the NVMe controller moves it to the namespace and back,
//! the NIC sends it — with P2P (no data byte through RAM) and with system
//! memory (every byte through RAM twice per direction), byte-exact both
//! ways. Buffers fall back to system memory when the provider's allocation
//! fails or nothing fits, and say so. A CMB from its registers becomes the
//! provider; without WDS/RDS it is refused and nothing is registered.

#[path = "block_common/mod.rs"]
mod common;

use common::*;
use dma_api::{Bdf, SegmentRoute};
use dma_consumers::nvme::{Cmb, CmbError, Namespace, Nvme};
use dma_consumers::nvmet::{
    Fallback, NvmetError, NvmetPort, P2pMemSetting, ProviderChoice, Source, Target,
};
use dma_consumers::rdma::RdmaNic;
use dma_sim::assembly::IommuMode;
use dma_sim::machine::{Machine, REFERENCE_NAME, REFERENCE_TOML};
use dma_sim::Assembly;

fn bdf(a: &Assembly, name: &str) -> Bdf {
    a.find(name).unwrap().bdf
}

fn target(a: &Assembly, ns: &str, setting: P2pMemSetting) -> Target {
    let nic = RdmaNic::new(a.find("rdma0").unwrap().device.clone());
    let nvme = Nvme::probe(a.find(ns).unwrap().device.clone()).unwrap();
    let port = NvmetPort::new(a.ctx.clone(), bdf(a, "rdma0"), vec![bdf(a, ns)], setting);
    Target::new(port, nic, nvme, Namespace::new(1 << 20)).unwrap()
}

#[test]
fn the_p2pmem_setting_follows_pci_p2pdma_enable_store() {
    let a = assembly(IommuMode::Strict);
    let ctx = &a.ctx;
    let p = |s: &str| P2pMemSetting::parse(s, ctx);
    assert_eq!(p("0"), Ok(P2pMemSetting::Off));
    assert_eq!(p("0\n"), Ok(P2pMemSetting::Off));
    assert_eq!(p("1\n"), Ok(P2pMemSetting::Auto));
    assert_eq!(p("y"), Ok(P2pMemSetting::Auto));
    assert_eq!(p("off"), Ok(P2pMemSetting::Off));
    assert_eq!(p("On"), Ok(P2pMemSetting::Auto));
    // kstrtobool reads only the first character: the kernel takes "nope".
    assert_eq!(p("nope"), Ok(P2pMemSetting::Off));
    assert_eq!(
        p("0000:03:00.0\n"),
        Ok(P2pMemSetting::Device(bdf(&a, "nvme0")))
    );
    // A device without p2pmem, and one whose p2pmem is not published.
    assert_eq!(
        p("0000:04:00.0"),
        Err(NvmetError::NoP2pMem {
            device: bdf(&a, "nvme1")
        })
    );
    assert_eq!(
        p("0000:05:00.0"),
        Err(NvmetError::NoP2pMem {
            device: bdf(&a, "rdma0")
        })
    );
    // Names no device: not read as "0" (the one-character rule).
    for s in ["0000:09:00.0", "03:00.0", "10", "maybe", ""] {
        assert_eq!(
            p(s),
            Err(NvmetError::NoSuchDevice {
                input: s.to_string()
            }),
            "{s:?}"
        );
    }
}

/// Write then read back `len` bytes through the target; returns (data
/// bytes through RAM on the write, on the read).
fn offload(a: &Assembly, t: &mut Target, len: u64, seed: u8) -> (u64, u64, Source) {
    let data = pattern(len, seed);
    let wire = FabricWire(a);
    a.fabric.reset_counters();
    let d0 = t.controller().descriptor_bytes();
    let w = t.host_write(&wire, 64, &data).unwrap();
    let ram_w = a.fabric.ram_bytes() - (t.controller().descriptor_bytes() - d0);
    a.fabric.reset_counters();
    let d0 = t.controller().descriptor_bytes();
    let (back, r) = t.host_read(&wire, 64, len).unwrap();
    let ram_r = a.fabric.ram_bytes() - (t.controller().descriptor_bytes() - d0);
    assert_eq!(back, data, "readback byte-exact");
    assert_eq!(w.source, r.source);
    (ram_w, ram_r, w.source)
}

#[test]
fn with_p2p_no_data_byte_passes_through_ram_with_system_memory_twice() {
    for mode in [IommuMode::Strict, IommuMode::Off] {
        let a = assembly(mode);
        let before = a.ctx.ram_in_use();
        let nvme0 = bdf(&a, "nvme0");
        let len = 0x2_0000;
        // Namespace on nvme1, buffers in nvme0's CMB: find_many picks it.
        let mut t = target(&a, "nvme1", P2pMemSetting::Auto);
        assert!(matches!(t.choice(), ProviderChoice::Provider { device, .. } if *device == nvme0));
        let (w, r, src) = offload(&a, &mut t, len, 1);
        assert_eq!(src, Source::P2pMem { provider: nvme0 });
        assert_eq!((w, r), (0, 0), "{mode:?}: P2P data bytes through RAM");
        // Only the PRP list fetches (coherent memory) reached the root
        // complex: the data stayed below the switch.
        assert_eq!(
            a.fabric.root_complex_bytes(),
            a.fabric.ram_bytes(),
            "{mode:?}"
        );

        drop(t);
        let mut t = target(&a, "nvme1", P2pMemSetting::Off);
        let (w, r, src) = offload(&a, &mut t, len, 2);
        assert_eq!(src, Source::SystemMemory(Fallback::Disabled));
        assert_eq!((w, r), (2 * len, 2 * len), "{mode:?}: RAM twice each way");
        drop(t);
        assert_eq!(a.ctx.ram_in_use(), before, "buffers and queues freed");
        assert!(a.ctx.take_drop_errors().is_empty());
    }
}

#[test]
fn the_controller_reads_its_own_cmb() {
    let a = assembly(IommuMode::Strict);
    let nvme0 = bdf(&a, "nvme0");
    let mut t = target(&a, "nvme0", P2pMemSetting::Device(nvme0));
    let (w, r, src) = offload(&a, &mut t, 0x8000, 3);
    assert_eq!(src, Source::P2pMem { provider: nvme0 });
    assert_eq!((w, r), (0, 0));
}

#[test]
fn buffers_fall_back_to_system_memory_and_say_why() {
    let a = assembly(IommuMode::Strict);
    let nvme0 = bdf(&a, "nvme0");
    // The CMB is taken: allocation fails, the buffer is RAM, the data right.
    let hog = a.ctx.alloc_p2pmem(nvme0, 64 << 20).unwrap();
    let mut t = target(&a, "nvme1", P2pMemSetting::Auto);
    let (w, _, src) = offload(&a, &mut t, 0x4000, 4);
    match src {
        Source::SystemMemory(Fallback::AllocFailed { provider, .. }) => assert_eq!(provider, nvme0),
        s => panic!("{s:?}"),
    }
    assert_eq!(w, 2 * 0x4000);
    a.ctx.free_p2pmem(hog).unwrap();
    // Nothing fits: the only published provider unpublished.
    a.ctx.publish_p2pmem(nvme0, false).unwrap();
    let t = target(&a, "nvme1", P2pMemSetting::Auto);
    match t.choice() {
        ProviderChoice::SystemMemory(f @ Fallback::NoProvider { clients }) => {
            assert_eq!(clients, &[bdf(&a, "rdma0"), bdf(&a, "nvme1")]);
            assert!(f.to_string().contains("no published p2pmem"), "{f}");
        }
        c => panic!("{c:?}"),
    }
}

/// The reference server with a host bridge that is not on the P2P
/// allowlist: routes between the root ports are not supported.
fn machine_without_host_bridge_p2p() -> Machine {
    let src = REFERENCE_TOML.replace("device = 0x2020", "device = 0x1234");
    assert_ne!(src, REFERENCE_TOML);
    Machine::from_toml_str(REFERENCE_NAME, &src).unwrap()
}

#[test]
fn an_explicit_provider_out_of_reach_is_refused_auto_falls_back() {
    let a = build(machine_without_host_bridge_p2p(), IommuMode::Strict);
    let (nic, nvme0, nvme2) = (bdf(&a, "rdma0"), bdf(&a, "nvme0"), bdf(&a, "nvme2"));
    let port = NvmetPort::new(
        a.ctx.clone(),
        nic,
        vec![nvme2],
        P2pMemSetting::Device(nvme0),
    );
    match port.choose() {
        Err(NvmetError::NotReachable { provider, why }) => {
            assert_eq!(provider, nvme0);
            assert!(why.contains(&nvme2.to_string()), "{why}");
        }
        r => panic!("{r:?}"),
    }
    // "1": nothing suits both clients; the I/O still works from RAM.
    let mut t = target(&a, "nvme2", P2pMemSetting::Auto);
    let (w, r, src) = offload(&a, &mut t, 0x4000, 6);
    assert_eq!(
        src,
        Source::SystemMemory(Fallback::NoProvider {
            clients: vec![nic, nvme2]
        })
    );
    assert_eq!((w, r), (0x8000, 0x8000));
}

fn machine_without_nvme0_cmb() -> Machine {
    let src = REFERENCE_TOML.replace("p2pmem = [{ bar = 2, publish = true }]\n", "");
    assert_ne!(src, REFERENCE_TOML);
    Machine::from_toml_str(REFERENCE_NAME, &src).unwrap()
}

#[test]
fn a_cmb_from_its_registers_becomes_the_provider_only_with_wds_and_rds() {
    let a = build(machine_without_nvme0_cmb(), IommuMode::Strict);
    let nvme0 = bdf(&a, "nvme0");
    assert_eq!(a.ctx.p2pmem_stats(nvme0).unwrap(), None);
    // BIR 2, offset 1 unit; SZU 2 (1 MiB), SZ 16; RDS only.
    let cmbloc = 2 | (1 << 12);
    let rds_only = (16 << 12) | (2 << 8) | (1 << 3);
    let cmb = Cmb::from_registers(cmbloc, rds_only).unwrap();
    assert_eq!(
        (cmb.bar, cmb.offset, cmb.size, cmb.rds, cmb.wds),
        (2, 1 << 20, 16 << 20, true, false)
    );
    assert_eq!(
        cmb.register(&a.ctx, nvme0).unwrap_err(),
        CmbError::NoDataSupport {
            wds: false,
            rds: true
        }
    );
    assert_eq!(
        a.ctx.p2pmem_stats(nvme0).unwrap(),
        None,
        "nothing registered"
    );
    assert_eq!(Cmb::from_registers(0, 0), Err(CmbError::NoCmb));
    assert_eq!(
        Cmb::from_registers(2, (1 << 12) | (7 << 8) | 0x18),
        Err(CmbError::ReservedSizeUnit { szu: 7 })
    );
    assert_eq!(
        Cmb::from_registers(4, (1 << 12) | 0x18)
            .unwrap()
            .register(&a.ctx, nvme0)
            .unwrap_err(),
        CmbError::NoSuchBar { bar: 4 }
    );
    // Offset past the 64 MiB BAR.
    assert!(matches!(
        Cmb::from_registers(2 | (64 << 12), (1 << 12) | (2 << 8) | 0x18)
            .unwrap()
            .register(&a.ctx, nvme0),
        Err(CmbError::OffsetPastBar { .. })
    ));
    // Without the CMB, nothing fits: system memory.
    let t = target(&a, "nvme1", P2pMemSetting::Auto);
    assert!(matches!(
        t.choice(),
        ProviderChoice::SystemMemory(Fallback::NoProvider { .. })
    ));

    // With WDS and RDS, and a size past the BAR's end (clamped).
    let both = (128 << 12) | (2 << 8) | 0x18;
    let (reg, at) = Cmb::from_registers(cmbloc, both)
        .unwrap()
        .register(&a.ctx, nvme0)
        .unwrap();
    assert_eq!(at.raw(), NVME0_BAR2 + (1 << 20));
    assert_eq!(reg.size(), 63 << 20);
    let mut t = target(&a, "nvme1", P2pMemSetting::Auto);
    let (w, r, src) = offload(&a, &mut t, 0x1_0000, 5);
    assert_eq!(src, Source::P2pMem { provider: nvme0 });
    assert_eq!((w, r), (0, 0));
    drop(t);
    reg.unregister().unwrap();
}

#[test]
fn the_nic_sges_of_a_p2p_buffer_are_bus_addresses() {
    let a = assembly(IommuMode::Strict);
    let mut t = target(&a, "nvme1", P2pMemSetting::Auto);
    let rep = t
        .host_write(&FabricWire(&a), 0, &pattern(0x3000, 9))
        .unwrap();
    assert!(rep
        .nic_sges
        .iter()
        .all(|s| s.route == SegmentRoute::PeerBus));
    assert!(rep
        .nvme_segments
        .iter()
        .all(|s| s.route == SegmentRoute::PeerBus));
    assert_eq!(
        rep.nic_sges[0].dma.raw(),
        rep.buffer.raw(),
        "bus = CPU address here"
    );
}
