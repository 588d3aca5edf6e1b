//! A synthetic `/sys` tree with real config-space bytes and real symlinks,
//! read back by `sysfs::read_tree`; every decoded field is asserted.
#![cfg(unix)]

#[path = "common/temp_dir.rs"]
mod temp_dir;

use dma_api::{Bdf, PhysAddr};
use dma_pci::config::{
    AcsBits, AcsRegs, BridgeBuses, ConfigBuilder, ConfigError, HeaderType, HostBridgeId, PcieType,
};
use dma_sim::sysfs::{read_tree, Problem, RawBar, RawPciDevice};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use temp_dir::TempDir;

const EMPTY: &str = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";

fn res(lines: &[(u64, u64, u64)], total: usize) -> String {
    let mut s = String::new();
    for &(a, b, f) in lines {
        s += &format!("0x{a:016x} 0x{b:016x} 0x{f:016x}\n");
    }
    for _ in lines.len()..total {
        s += EMPTY;
    }
    s
}

struct Dev<'a> {
    chain: &'a str, // e.g. "pci0000:00/0000:00:01.0"
    vendor: u16,
    device: u16,
    class: u32,
    config: Vec<u8>,
    resource: String,
}

fn add(root: &Path, d: &Dev<'_>) -> PathBuf {
    let dir = root.join("devices").join(d.chain);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("vendor"), format!("0x{:04x}\n", d.vendor)).unwrap();
    fs::write(dir.join("device"), format!("0x{:04x}\n", d.device)).unwrap();
    fs::write(dir.join("class"), format!("0x{:06x}\n", d.class)).unwrap();
    fs::write(dir.join("config"), &d.config).unwrap();
    fs::write(dir.join("resource"), &d.resource).unwrap();
    let name = dir.file_name().unwrap().to_owned();
    let link = root.join("bus/pci/devices").join(&name);
    symlink(Path::new("../../../devices").join(d.chain), link).unwrap();
    dir
}

fn bdf(s: &str) -> Bdf {
    s.parse().unwrap()
}

const RP: &str = "pci0000:00/0000:00:01.0";
const USP: &str = "pci0000:00/0000:00:01.0/0000:01:00.0";
const DSP: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0";
const EP0: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0";
const EP1: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.1";
const TRUNC: &str = "pci0000:00/0000:00:02.0";
const GARBAGE: &str = "pci0000:40/0000:40:00.0";
const DIRRES: &str = "pci0000:40/0000:40:01.0";

fn build(root: &Path) {
    fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    fs::create_dir_all(root.join("kernel/iommu_groups/7")).unwrap();
    fs::create_dir_all(root.join("bus/pci/drivers/nvme")).unwrap();

    // Root port: PCIe root port + ACS with RR|CR enabled.
    let mut rp = ConfigBuilder::new(4096, 0x8086, 0x7a38, 0x060400, 0x01);
    rp.revision(0x11)
        .buses(0, 1, 3)
        .cap(0x40, 0x01)
        .pcie(0x60, 4);
    rp.ext_cap(0x100, 0x0001).acs(0x220, 0x005f, 0x000c);
    let bridge_res = res(&[], 13)
        + &res(
            &[(0xe000, 0xefff, 0x101), (0xfe00_0000, 0xfe1f_ffff, 0x200)],
            4,
        );
    add(
        root,
        &Dev {
            chain: RP,
            vendor: 0x8086,
            device: 0x7a38,
            class: 0x060400,
            config: rp.build(),
            resource: bridge_res.clone(),
        },
    );

    // Switch upstream port with one 32-bit BAR.
    let mut usp = ConfigBuilder::new(4096, 0x10b5, 0x8747, 0x060400, 0x01);
    usp.buses(1, 2, 3).bar(0, 0xfe10_0000).pcie(0x68, 5);
    let usp_res = res(&[(0xfe10_0000, 0xfe13_ffff, 0x40200)], 17);
    add(
        root,
        &Dev {
            chain: USP,
            vendor: 0x10b5,
            device: 0x8747,
            class: 0x060400,
            config: usp.build(),
            resource: usp_res,
        },
    );

    // Switch downstream port: ACS capable, nothing enabled.
    let mut dsp = ConfigBuilder::new(4096, 0x10b5, 0x8747, 0x060400, 0x01);
    dsp.buses(2, 3, 3).pcie(0x68, 6).acs(0x100, 0x007f, 0x0000);
    add(
        root,
        &Dev {
            chain: DSP,
            vendor: 0x10b5,
            device: 0x8747,
            class: 0x060400,
            config: dsp.build(),
            resource: bridge_res,
        },
    );

    // Two functions of one multifunction endpoint (NVMe), 64-bit BARs.
    for (chain, f, base) in [(EP0, 0u8, 0x60_0000_0000u64), (EP1, 1, 0x60_0010_0000)] {
        let mut ep = ConfigBuilder::new(4096, 0x144d, 0xa808, 0x010802, 0x80);
        ep.revision(f)
            .bar(0, (base as u32) | 0xc)
            .bar(1, (base >> 32) as u32)
            .pcie(0x70, 0);
        let r = res(&[(base, base + 0x3fff, 0x14220c)], 13);
        let dir = add(
            root,
            &Dev {
                chain,
                vendor: 0x144d,
                device: 0xa808,
                class: 0x010802,
                config: ep.build(),
                resource: r,
            },
        );
        fs::write(dir.join("revision"), format!("0x{f:02x}\n")).unwrap();
        fs::write(dir.join("numa_node"), "1\n").unwrap();
        fs::write(dir.join("dma_mask_bits"), "64\n").unwrap();
        symlink(
            "../../../../../../../kernel/iommu_groups/7",
            dir.join("iommu_group"),
        )
        .unwrap();
        symlink(
            "../../../../../../../bus/pci/drivers/nvme",
            dir.join("driver"),
        )
        .unwrap();
    }

    // RCiEP whose config read stopped at 64 bytes (non-root reader).
    let mut t = ConfigBuilder::new(4096, 0x8086, 0x9a49, 0x030000, 0x00);
    t.bar(0, 0xa000_0004).pcie(0x40, 9);
    let dir = add(
        root,
        &Dev {
            chain: TRUNC,
            vendor: 0x8086,
            device: 0x9a49,
            class: 0x030000,
            config: t.bytes()[..64].to_vec(),
            resource: res(&[(0xa000_0000, 0xa0ff_ffff, 0x140204)], 13),
        },
    );
    fs::write(dir.join("numa_node"), "-1\n").unwrap();

    // Second host bridge: a device with a garbage resource file and a bad
    // numa_node, and one whose resource file cannot be read.
    let conv = ConfigBuilder::new(256, 0x1af4, 0x1000, 0x020000, 0x00);
    let dir = add(
        root,
        &Dev {
            chain: GARBAGE,
            vendor: 0x1af4,
            device: 0x1000,
            class: 0x020000,
            config: conv.build(),
            resource: "0x1000 0x1fff\n".into(),
        },
    );
    fs::write(dir.join("numa_node"), "zero\n").unwrap();
    let dir = add(
        root,
        &Dev {
            chain: DIRRES,
            vendor: 0x1af4,
            device: 0x1001,
            class: 0x010000,
            config: conv.build(),
            resource: String::new(),
        },
    );
    fs::remove_file(dir.join("resource")).unwrap();
    fs::create_dir(dir.join("resource")).unwrap();

    // Not a PCI address.
    fs::create_dir(root.join("bus/pci/devices/not-a-device")).unwrap();
}

fn bar(index: usize, start: u64, size: u64, io: bool, is_64: bool, prefetch: bool) -> RawBar {
    RawBar {
        index,
        start: PhysAddr::new(start),
        size,
        is_mem: !io,
        is_io: io,
        is_64,
        prefetch,
    }
}

#[test]
fn synthetic_tree_decodes_every_field() {
    let tmp = TempDir::new("sysfs-tree");
    let root = tmp.path();
    build(root);
    let scan = read_tree(root);
    let devs = &scan.devices;
    let names: Vec<String> = devs.iter().map(|d| d.bdf.to_string()).collect();
    assert_eq!(
        names,
        [
            "0000:00:01.0",
            "0000:00:02.0",
            "0000:01:00.0",
            "0000:02:00.0",
            "0000:03:00.0",
            "0000:03:00.1",
            "0000:40:00.0",
            "0000:40:01.0"
        ]
    );
    let hb0 = Some(HostBridgeId { domain: 0, bus: 0 });
    let windows = vec![
        bar(13, 0xe000, 0x1000, true, false, false),
        bar(14, 0xfe00_0000, 0x20_0000, false, false, false),
    ];

    assert_eq!(
        devs[0],
        RawPciDevice {
            bdf: bdf("0000:00:01.0"),
            parent: None,
            host_bridge: hb0,
            sysfs_path: root.join("devices").join(RP),
            vendor: 0x8086,
            device: 0x7a38,
            class: 0x060400,
            revision: Some(0x11),
            header_type: Some(HeaderType::Bridge),
            multifunction: Some(false),
            bridge_buses: Some(BridgeBuses {
                primary: 0,
                secondary: 1,
                subordinate: 3
            }),
            pcie_type: Some(PcieType::RootPort),
            acs: Some(AcsRegs {
                offset: 0x220,
                cap: AcsBits::SV
                    | AcsBits::TB
                    | AcsBits::RR
                    | AcsBits::CR
                    | AcsBits::UF
                    | AcsBits::DT,
                ctrl: AcsBits::RR | AcsBits::CR,
                egress_vector_bits: 0,
                cap_raw: 0x005f,
                ctrl_raw: 0x000c,
            }),
            config_len: 4096,
            bars: windows.clone(),
            numa_node: None,
            iommu_group: None,
            driver: None,
            dma_mask_bits: None,
        }
    );
    assert!(devs[0].acs.unwrap().redirects());

    let t = &devs[1];
    assert_eq!(
        (t.parent, t.host_bridge, t.vendor, t.device, t.class),
        (None, hb0, 0x8086, 0x9a49, 0x030000)
    );
    assert_eq!(
        (t.revision, t.header_type, t.multifunction),
        (Some(0), Some(HeaderType::Normal), Some(false))
    );
    assert_eq!(
        (t.pcie_type, t.acs, t.config_len, t.numa_node),
        (None, None, 64, None)
    );
    assert_eq!(
        t.bars,
        vec![bar(0, 0xa000_0000, 0x100_0000, false, true, false)]
    );

    let usp = &devs[2];
    assert_eq!(
        (usp.parent, usp.host_bridge),
        (Some(bdf("0000:00:01.0")), hb0)
    );
    assert_eq!(usp.pcie_type, Some(PcieType::UpstreamPort));
    assert_eq!(
        usp.bridge_buses,
        Some(BridgeBuses {
            primary: 1,
            secondary: 2,
            subordinate: 3
        })
    );
    assert_eq!((usp.vendor, usp.device, usp.acs), (0x10b5, 0x8747, None));
    assert_eq!(
        usp.bars,
        vec![bar(0, 0xfe10_0000, 0x4_0000, false, false, false)]
    );
    assert_eq!(usp.sysfs_path, root.join("devices").join(USP));

    let dsp = &devs[3];
    assert_eq!(dsp.parent, Some(bdf("0000:01:00.0")));
    assert_eq!(dsp.pcie_type, Some(PcieType::DownstreamPort));
    let acs = dsp.acs.unwrap();
    assert_eq!(
        (acs.offset, acs.cap, acs.ctrl),
        (0x100, AcsBits::all(), AcsBits::empty())
    );
    assert!(!acs.redirects());
    assert_eq!(dsp.bars, windows);

    for (i, f) in [(4usize, 0u8), (5, 1)] {
        let ep = &devs[i];
        let base = 0x60_0000_0000 + u64::from(f) * 0x10_0000;
        assert_eq!(
            *ep,
            RawPciDevice {
                bdf: Bdf::new(0, 3, 0, f).unwrap(),
                parent: Some(bdf("0000:02:00.0")),
                host_bridge: hb0,
                sysfs_path: root.join("devices").join(if f == 0 { EP0 } else { EP1 }),
                vendor: 0x144d,
                device: 0xa808,
                class: 0x010802,
                revision: Some(f),
                header_type: Some(HeaderType::Normal),
                multifunction: Some(true),
                bridge_buses: None,
                pcie_type: Some(PcieType::Endpoint),
                acs: None,
                config_len: 4096,
                bars: vec![bar(0, base, 0x4000, false, true, true)],
                numa_node: Some(1),
                iommu_group: Some(7),
                driver: Some("nvme".into()),
                dma_mask_bits: Some(64),
            }
        );
    }

    let hb40 = Some(HostBridgeId {
        domain: 0,
        bus: 0x40,
    });
    let g = &devs[6];
    assert_eq!(
        (g.parent, g.host_bridge, g.vendor, g.device, g.class),
        (None, hb40, 0x1af4, 0x1000, 0x020000)
    );
    assert_eq!(
        (g.config_len, g.pcie_type, g.numa_node, g.multifunction),
        (256, None, None, Some(false))
    );
    assert!(g.bars.is_empty());
    let d = &devs[7];
    assert_eq!((d.host_bridge, d.device, d.class), (hb40, 0x1001, 0x010000));
    assert!(d.bars.is_empty());

    // Exactly the expected warnings, each naming the file at fault.
    let dev_dir = |chain: &str| {
        root.join("bus/pci/devices")
            .join(Path::new(chain).file_name().unwrap())
    };
    let w: Vec<(PathBuf, String)> = scan
        .warnings
        .iter()
        .map(|w| (w.path.clone(), format!("{:?}", w.what)))
        .collect();
    assert_eq!(scan.warnings.len(), 5, "{w:#?}");
    assert_eq!(
        scan.warnings[0].path,
        root.join("bus/pci/devices/not-a-device")
    );
    assert!(matches!(&scan.warnings[0].what, Problem::BadName(e) if e.input == "not-a-device"));
    assert_eq!(scan.warnings[1].path, dev_dir(TRUNC).join("config"));
    assert_eq!(
        scan.warnings[1].what,
        Problem::Config(ConfigError::Truncated {
            needed: 0x42,
            len: 64
        })
    );
    assert_eq!(scan.warnings[2].path, dev_dir(GARBAGE).join("resource"));
    assert!(
        matches!(&scan.warnings[2].what, Problem::Resource(e) if e.line == 0 && e.text == "0x1000 0x1fff" && e.reason == "flags are not 0x-prefixed hex")
    );
    assert_eq!(scan.warnings[3].path, dev_dir(GARBAGE).join("numa_node"));
    assert!(matches!(&scan.warnings[3].what, Problem::BadNumber { text, .. } if text == "zero"));
    assert_eq!(scan.warnings[4].path, dev_dir(DIRRES).join("resource"));
    assert!(matches!(
        &scan.warnings[4].what,
        Problem::Io {
            kind: std::io::ErrorKind::IsADirectory,
            ..
        }
    ));

    // The devices directory itself gives the same result.
    let again = read_tree(&root.join("bus/pci/devices"));
    assert_eq!(again, scan);
}

#[test]
fn sysfs_root_without_pci_is_one_warning() {
    let tmp = TempDir::new("sysfs-nopci");
    fs::create_dir_all(tmp.path().join("bus/usb")).unwrap();
    let scan = read_tree(tmp.path());
    assert!(scan.devices.is_empty());
    assert_eq!(scan.warnings.len(), 1);
    assert_eq!(scan.warnings[0].path, tmp.path().join("bus/pci/devices"));
}

#[test]
fn missing_dir_is_one_warning() {
    let scan = read_tree(Path::new("/nonexistent/unidma/sys"));
    assert!(scan.devices.is_empty());
    assert_eq!(scan.warnings.len(), 1);
    assert!(matches!(
        scan.warnings[0].what,
        Problem::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
}

#[test]
fn ids_fall_back_to_config_and_no_ids_skips() {
    let tmp = TempDir::new("sysfs-ids");
    let root = tmp.path();
    fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    let cfg = ConfigBuilder::new(256, 0x15b3, 0x101b, 0x020700, 0x80);
    let dir = add(
        root,
        &Dev {
            chain: "pci0000:00/0000:00:05.0",
            vendor: 0,
            device: 0,
            class: 0,
            config: cfg.build(),
            resource: String::new(),
        },
    );
    for f in ["vendor", "device", "class"] {
        fs::remove_file(dir.join(f)).unwrap();
    }
    let dir2 = add(
        root,
        &Dev {
            chain: "pci0000:00/0000:00:06.0",
            vendor: 0,
            device: 0,
            class: 0,
            config: vec![0xff; 64],
            resource: String::new(),
        },
    );
    for f in ["vendor", "device", "class"] {
        fs::write(dir2.join(f), "bogus").unwrap();
    }
    let scan = read_tree(root);
    assert_eq!(scan.devices.len(), 1);
    let d = &scan.devices[0];
    assert_eq!(
        (d.vendor, d.device, d.class, d.revision, d.multifunction),
        (0x15b3, 0x101b, 0x020700, Some(0), Some(true))
    );
    assert!(scan.warnings.iter().any(|w| w.what == Problem::NoIds));
    assert!(scan
        .warnings
        .iter()
        .any(|w| w.what == Problem::Config(ConfigError::NoDevice { id: 0xffff_ffff })));
    // Missing ID files are reported, not silently filled in.
    assert_eq!(
        scan.warnings
            .iter()
            .filter(|w| w
                .path
                .starts_with(root.join("bus/pci/devices/0000:00:05.0")))
            .count(),
        3
    );
}
