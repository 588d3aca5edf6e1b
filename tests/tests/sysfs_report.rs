//! `unidma report --sysfs DIR` over a synthetic sysfs tree (real config
//! bytes from `ConfigBuilder`, real symlinks), and over the live `/sys`.
#![cfg(unix)]

use dma_pci::config::ConfigBuilder;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use unidma_tests::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    unidma_tests::run_cli(args)
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `resource` text: `(index, start, size, flags)` rows, 17 slots.
fn res(rows: &[(usize, u64, u64, u64)]) -> String {
    (0..17)
        .map(|i| match rows.iter().find(|r| r.0 == i) {
            Some(&(_, s, n, f)) => format!("0x{s:016x} 0x{:016x} 0x{f:016x}\n", s + n - 1),
            None => format!("0x{0:016x} 0x{0:016x} 0x{0:016x}\n", 0),
        })
        .collect()
}

/// One function at `chain` (path below `devices/`), linked from
/// `bus/pci/devices` unless `listed` is false.
fn add(root: &Path, chain: &str, cfg: &ConfigBuilder, resource: &str, listed: bool) -> PathBuf {
    let dir = root.join("devices").join(chain);
    fs::create_dir_all(&dir).unwrap();
    let b = cfg.bytes();
    let id = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let class = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) >> 8;
    fs::write(dir.join("vendor"), format!("0x{:04x}\n", id(0))).unwrap();
    fs::write(dir.join("device"), format!("0x{:04x}\n", id(2))).unwrap();
    fs::write(dir.join("class"), format!("0x{class:06x}\n")).unwrap();
    fs::write(dir.join("config"), cfg.build()).unwrap();
    fs::write(dir.join("resource"), resource).unwrap();
    if listed {
        let name = dir.file_name().unwrap().to_owned();
        symlink(
            Path::new("../../../devices").join(chain),
            root.join("bus/pci/devices").join(name),
        )
        .unwrap();
    }
    dir
}

const RP: &str = "pci0000:00/0000:00:01.0";
const USP: &str = "pci0000:00/0000:00:01.0/0000:01:00.0";
const DSP_RR: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0";
const DSP: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0";
const GPU: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0";
const NVME: &str = "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:04:00.0";
const HIDDEN_PORT: &str = "pci0000:00/0000:00:1c.0";
const ORPHAN: &str = "pci0000:00/0000:00:1c.0/0000:06:00.0";
const CLASH: &str = "pci0000:40/0000:40:00.0";

/// Root port (Intel 2f01, on the host-bridge allow-list) with isolating ACS;
/// a switch whose first downstream port has ACS RR on (the second has ACS
/// but nothing enabled); a GPU below the RR port, an NVMe below the other;
/// an orphan whose port is not listed; a function on a second host bridge
/// whose BAR overlaps the NVMe's.
fn build(root: &Path) {
    fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    fs::create_dir_all(root.join("kernel/iommu_groups/1")).unwrap();
    fs::create_dir_all(root.join("bus/pci/drivers/nvme")).unwrap();

    let mut rp = ConfigBuilder::new(4096, 0x8086, 0x2f01, 0x060400, 0x01);
    rp.buses(0, 1, 4).pcie(0x40, 4);
    rp.acs(0x100, 0x001f, 0x001d); // SV|RR|CR|UF (cap has TB too)
    let dir = add(root, RP, &rp, &res(&[]), true);
    symlink("../../../kernel/iommu_groups/1", dir.join("iommu_group")).unwrap();

    let mut usp = ConfigBuilder::new(4096, 0x10b5, 0x8747, 0x060400, 0x01);
    usp.buses(1, 2, 4).pcie(0x68, 5);
    add(root, USP, &usp, &res(&[]), true);

    let mut d0 = ConfigBuilder::new(4096, 0x10b5, 0x8747, 0x060400, 0x01);
    d0.buses(2, 3, 3).pcie(0x68, 6).acs(0x100, 0x007f, 0x0004); // RR
    add(root, DSP_RR, &d0, &res(&[]), true);
    let mut d1 = ConfigBuilder::new(4096, 0x10b5, 0x8747, 0x060400, 0x01);
    d1.buses(2, 4, 4).pcie(0x68, 6).acs(0x100, 0x007f, 0x0000);
    add(root, DSP, &d1, &res(&[]), true);

    // GPU: 256M prefetchable 64-bit BAR0, 16M BAR2, an I/O BAR (left out).
    let mut gpu = ConfigBuilder::new(4096, 0x10de, 0x2330, 0x030200, 0x80);
    gpu.bar(0, 0x0000_000c).bar(1, 0x60).pcie(0x60, 0);
    let dir = add(
        root,
        GPU,
        &gpu,
        &res(&[
            (0, 0x60_0000_0000, 0x1000_0000, 0x14220c),
            (2, 0x60_1000_0000, 0x100_0000, 0x140204),
            (4, 0xe000, 0x80, 0x40101),
        ]),
        true,
    );
    fs::write(dir.join("dma_mask_bits"), "48\n").unwrap();

    // NVMe: 16K BAR0 and a 1M prefetchable BAR2 (p2pmem-capable).
    let mut nvme = ConfigBuilder::new(4096, 0x144d, 0xa808, 0x010802, 0x00);
    nvme.pcie(0x70, 0);
    let dir = add(
        root,
        NVME,
        &nvme,
        &res(&[
            (0, 0x60_2000_0000, 0x4000, 0x140204),
            (2, 0x60_2010_0000, 0x10_0000, 0x14220c),
        ]),
        true,
    );
    fs::write(dir.join("dma_mask_bits"), "64\n").unwrap();
    fs::write(dir.join("numa_node"), "zero\n").unwrap(); // a scan warning
    symlink(
        "../../../../../../../bus/pci/drivers/nvme",
        dir.join("driver"),
    )
    .unwrap();

    // The orphan's port exists as a directory but is not listed.
    let mut hp = ConfigBuilder::new(4096, 0x8086, 0x7ab8, 0x060400, 0x01);
    hp.buses(0, 6, 6).pcie(0x40, 4);
    add(root, HIDDEN_PORT, &hp, &res(&[]), false);
    let mut orphan = ConfigBuilder::new(4096, 0x8086, 0x15f3, 0x020000, 0x00);
    orphan.pcie(0x40, 0);
    add(
        root,
        ORPHAN,
        &orphan,
        &res(&[(0, 0x60_3000_0000, 0x2_0000, 0x140204)]),
        true,
    );

    let mut clash = ConfigBuilder::new(4096, 0x1af4, 0x1000, 0x020000, 0x00);
    clash.pcie(0x40, 9);
    add(
        root,
        CLASH,
        &clash,
        &res(&[(0, 0x60_2000_0000, 0x1000, 0x140204)]),
        true,
    );
}

fn by_bdf<'a>(v: &'a Value, bdf: &str) -> &'a Value {
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["bdf"] == bdf)
        .unwrap_or_else(|| panic!("no {bdf}"))
}

fn route<'a>(v: &'a Value, p: &str, c: &str) -> &'a Value {
    v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == p && e["client"] == c)
        .unwrap_or_else(|| panic!("no route {p} -> {c}"))
}

#[test]
fn synthetic_sysfs_report() {
    let tmp = TempDir::new("sysfs-report");
    let root = tmp.path();
    build(root);
    let dir = root.to_str().unwrap();
    let v = json(&["report", "--sysfs", dir, "--json"]);

    // Devices: the overlapping function is dropped, the orphan attached to
    // a root bus of its own.
    let bdfs: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bdf"].as_str().unwrap())
        .collect();
    assert_eq!(
        bdfs,
        [
            "0000:00:01.0",
            "0000:01:00.0",
            "0000:02:00.0",
            "0000:02:01.0",
            "0000:03:00.0",
            "0000:04:00.0",
            "0000:06:00.0"
        ]
    );
    let expect = [
        ("0000:00:01.0", "root_port", Value::Null, "pci0000:00"),
        (
            "0000:01:00.0",
            "switch_upstream",
            "0000:00:01.0".into(),
            "pci0000:00",
        ),
        (
            "0000:02:00.0",
            "switch_downstream",
            "0000:01:00.0".into(),
            "pci0000:00",
        ),
        (
            "0000:02:01.0",
            "switch_downstream",
            "0000:01:00.0".into(),
            "pci0000:00",
        ),
        (
            "0000:03:00.0",
            "endpoint",
            "0000:02:00.0".into(),
            "pci0000:00",
        ),
        (
            "0000:04:00.0",
            "endpoint",
            "0000:02:01.0".into(),
            "pci0000:00",
        ),
        ("0000:06:00.0", "endpoint", Value::Null, "pci0000:06"),
    ];
    for (bdf, kind, parent, hb) in expect {
        let d = by_bdf(&v, bdf);
        assert_eq!(d["kind"], kind, "{bdf}");
        assert_eq!(d["parent"], parent, "{bdf}");
        assert_eq!(d["host_bridge"], hb, "{bdf}");
    }
    let rp = by_bdf(&v, "0000:00:01.0");
    assert_eq!(rp["acs"]["cap"], "SV|TB|RR|CR|UF");
    assert_eq!(rp["acs"]["ctrl"], "SV|RR|CR|UF");
    assert_eq!(by_bdf(&v, "0000:02:00.0")["acs"]["ctrl"], "RR");
    assert_eq!(by_bdf(&v, "0000:02:01.0")["acs"]["ctrl"], "-");
    let gpu = by_bdf(&v, "0000:03:00.0");
    assert_eq!(
        (&gpu["vendor"], &gpu["device"], &gpu["class"]),
        (&"10de".into(), &"2330".into(), &"030200".into())
    );
    assert_eq!(gpu["multifunction"], true);
    assert_eq!(gpu["dma_mask_bits"], 48);
    let bars = gpu["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 2, "I/O BAR left out: {bars:?}");
    assert_eq!(bars[0]["start"], "0x6000000000");
    assert_eq!(bars[0]["size"], 0x1000_0000u64);
    assert_eq!(bars[0]["prefetchable"], true);
    assert_eq!(bars[0]["mem64"], true);
    assert_eq!(bars[1]["index"], 2);
    let nvme = by_bdf(&v, "0000:04:00.0");
    assert_eq!(nvme["name"], "nvme");
    assert_eq!(nvme["dma_mask_bits"], 64);
    assert_eq!(nvme["multifunction"], false);
    // Unknown dma_mask_bits: the pci_setup_device default.
    assert_eq!(by_bdf(&v, "0000:06:00.0")["dma_mask_bits"], 32);

    // Host bridges: identity windows over the BARs, IOMMU from iommu_group.
    let hbs = v["host_bridges"].as_array().unwrap();
    let names: Vec<&str> = hbs.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pci0000:00", "pci0000:06"]);
    assert_eq!(hbs[0]["iommu"], true);
    assert_eq!(hbs[1]["iommu"], false);
    assert_eq!(hbs[0]["ident"], "8086:2f01");
    assert_eq!(
        hbs[0]["mmio"],
        serde_json::json!([{"cpu": "0x6000000000", "bus": "0x6000000000", "size": 0x2020_0000u64}])
    );
    assert_eq!(
        hbs[1]["mmio"],
        serde_json::json!([{"cpu": "0x6030000000", "bus": "0x6030000000", "size": 0x2_0000u64}])
    );
    // Memory map: the four kept memory BARs and the orphan's, no RAM.
    let mm = v["memory_map"].as_array().unwrap();
    assert_eq!(mm.len(), 5);
    assert!(mm.iter().all(|r| r["kind"] != "ram"));
    assert!(v["notes"][0].as_str().unwrap().contains("RAM"));

    // P2P: the GPU's port redirects (ACS RR), so GPU <-> NVMe goes through
    // the (allow-listed) host bridge.
    let r = route(&v, "0000:03:00.0", "0000:04:00.0");
    assert_eq!(r["map_type"], "thru_host_bridge");
    assert_eq!(r["distance"], 4);
    assert_eq!(r["arch_allows"], true);
    assert_eq!(r["arch_veto"], Value::Null);
    assert!(
        r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains("ACS redirect")),
        "{r}"
    );
    assert_eq!(
        route(&v, "0000:04:00.0", "0000:03:00.0")["map_type"],
        "thru_host_bridge"
    );
    // The orphan is under another host bridge with no allow-listed ident.
    assert_eq!(
        route(&v, "0000:03:00.0", "0000:06:00.0")["map_type"],
        "not_supported"
    );

    // Groups (drivers/iommu/iommu.c `pci_device_group`): neither
    // downstream port has the isolation flags (SV|RR|CR|UF) enabled, so each
    // endpoint shares its port's group; the root port's ACS stops the walk.
    assert_eq!(
        v["groups"],
        serde_json::json!([
            ["0000:00:01.0"],
            ["0000:01:00.0"],
            ["0000:02:00.0", "0000:03:00.0"],
            ["0000:02:01.0", "0000:04:00.0"]
        ])
    );
    // The orphan's host bridge has no IOMMU (no `iommu_group` below it):
    // its group is an isolation group, not an IOMMU group.
    assert_eq!(v["isolation_groups"], serde_json::json!([["0000:06:00.0"]]));

    // Warnings: the scan's (numa_node) and the import's (orphan, overlap).
    let warns = v["warnings"].as_array().unwrap();
    let has = |path_end: &str, what: &str| {
        warns.iter().any(|w| {
            w["path"].as_str().unwrap().ends_with(path_end)
                && w["what"].as_str().unwrap().contains(what)
        })
    };
    assert!(has("0000:04:00.0/numa_node", "zero"), "{warns:?}");
    assert!(
        has("0000:06:00.0", "parent 0000:00:1c.0 is not in the scan"),
        "{warns:?}"
    );
    assert!(
        has(
            "0000:40:00.0",
            "BAR 0 overlaps BAR 0 of 0000:04:00.0; function dropped"
        ),
        "{warns:?}"
    );
    assert_eq!(warns.len(), 3, "{warns:?}");

    // Without the redirect the same pair takes the switch (bus address).
    let v2 = json(&[
        "report",
        "--sysfs",
        dir,
        "--json",
        "--disable-acs-redir",
        "0000:02:00.0",
    ]);
    let r = route(&v2, "0000:03:00.0", "0000:04:00.0");
    assert_eq!(r["map_type"], "bus_addr");
    assert_eq!(r["distance"], 4);

    // Text: the warnings section and the tree.
    let (code, out, err) = run(&["report", "--sysfs", dir]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Warnings (3):"), "{out}");
    assert!(out.contains("(no RAM ranges)"), "{out}");
    assert!(out.contains("\\-03:00.0 10de:2330"), "{out}");
    // Other commands mention the warnings on stderr.
    let (code, _, err) = run(&["p2p", "--sysfs", dir, "nvme", "0000:03:00.0"]);
    assert_eq!(code, 0);
    assert!(err.contains("3 warning(s)"), "{err}");
}

/// One `firmware/memmap/N` entry as drivers/firmware/memmap.c prints it.
fn memmap_entry(root: &Path, n: usize, start: &str, end: &str, ty: &str) {
    let d = root.join("firmware/memmap").join(n.to_string());
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("start"), format!("{start}\n")).unwrap();
    fs::write(d.join("end"), format!("{end}\n")).unwrap();
    fs::write(d.join("type"), format!("{ty}\n")).unwrap();
}

#[test]
fn synthetic_sysfs_ram_from_firmware_memmap() {
    let tmp = TempDir::new("sysfs-memmap");
    let root = tmp.path();
    build(root);
    let dir = root.to_str().unwrap();

    // Without RAM, mapping RAM on this machine is refused (and the assembly
    // has no low RAM to carve from).
    let map_args = [
        "map",
        "--sysfs",
        dir,
        "nvme",
        "--phys",
        "0x20000000",
        "--len",
        "0x1000",
        "--dir",
        "to-device",
        "--json",
    ];
    let (code, _, err) = run(&map_args);
    assert_eq!(code, 2);
    assert!(err.contains("no RAM range below 4 GiB"), "{err}");

    memmap_entry(root, 0, "0x0", "0x9fbff", "System RAM");
    memmap_entry(root, 1, "0x9fc00", "0xfffff", "Reserved");
    memmap_entry(root, 2, "0x100000", "0x7fffffff", "System RAM");
    memmap_entry(root, 3, "0x80000000", "0xbfffffff", "System RAM"); // adjacent
    memmap_entry(root, 4, "0xc0000000", "0xc00fffff", "ACPI Tables");
    memmap_entry(root, 5, "0xzz", "0x1000", "System RAM"); // odd text
    memmap_entry(root, 6, "0x200000000", "0x1ffffffff", "System RAM"); // end < start
                                                                       // Overlaps the GPU's BAR0 (0x6000000000 +256M): the BAR wins.
    memmap_entry(root, 7, "0x5ff0000000", "0x600fffffff", "System RAM");

    let v = json(&["report", "--sysfs", dir, "--json"]);
    let ram: Vec<(String, u64, Value)> = v["memory_map"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ram")
        .map(|r| {
            (
                r["start"].as_str().unwrap().to_string(),
                r["size"].as_u64().unwrap(),
                r["owner"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ram,
        [
            ("0x0".to_string(), 0x9_fc00, Value::Null),
            ("0x100000".to_string(), 0xbff0_0000, Value::Null),
            ("0x5ff0000000".to_string(), 0x1000_0000, Value::Null),
        ]
    );
    // The five BARs are still there.
    assert_eq!(v["memory_map"].as_array().unwrap().len(), 8);
    let note = v["notes"][0].as_str().unwrap();
    assert!(
        note.contains("RAM: 3 range(s)") && note.contains("firmware/memmap"),
        "{note}"
    );
    let warns = v["warnings"].as_array().unwrap();
    let has = |path_end: &str, what: &str| {
        warns.iter().any(|w| {
            w["path"].as_str().unwrap().ends_with(path_end)
                && w["what"].as_str().unwrap().contains(what)
        })
    };
    assert!(
        has("firmware/memmap/5", "start is not 0x-prefixed hex"),
        "{warns:?}"
    );
    assert!(has("firmware/memmap/6", "end is below start"), "{warns:?}");
    assert!(
        has("0000:03:00.0", "overlaps BAR 0 [0x6000000000 +0x10000000]"),
        "{warns:?}"
    );
    assert_eq!(warns.len(), 6, "{warns:?}");

    // Text: the RAM lines, no "(no RAM ranges)".
    let (code, out, err) = run(&["report", "--sysfs", dir]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("(no RAM ranges)"), "{out}");
    assert!(out.contains("0x100000 +3071M  ram"), "{out}");
    assert!(out.contains("0x5ff0000000 +256M   ram"), "{out}");

    // Mapping RAM now works for the NVMe (64-bit mask, behind the IOMMU).
    let (code, out, err) = run(&map_args);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["kind"]["type"], "ram", "{m}");
    assert_eq!(m["target"]["type"], "ram", "{m}");
    assert_eq!(m["target"]["phys"], "0x20000000", "{m}");
    assert_eq!(m["mapped"], true, "{m}");
    assert_eq!(m["error"], Value::Null, "{m}");
    // Reserved firmware memory is not RAM: still refused.
    let mut reserved = map_args;
    reserved[5] = "0xc0000000";
    let (code, _, err) = run(&reserved);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn sysfs_not_a_directory_is_bad_input() {
    let (code, out, err) = run(&["report", "--sysfs", "/nonexistent/sys"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("--sysfs /nonexistent/sys"), "{err}");
}

#[test]
fn live_sysfs_report() {
    // A container may show the directory empty: `--sysfs` refuses a tree
    // without PCI devices (exit 2), tested on a synthetic tree.
    if fs::read_dir("/sys/bus/pci/devices").map_or(true, |mut d| d.next().is_none()) {
        println!("skipping: no PCI device under /sys/bus/pci/devices");
        return;
    }
    let (code, out, err) = run(&["report", "--sysfs", "/sys"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PCI tree:"), "{out}");
    let v = json(&["report", "--sysfs", "/sys", "--json"]);
    let listed = fs::read_dir("/sys/bus/pci/devices").unwrap().count();
    let devs = v["devices"].as_array().unwrap().len();
    let warns = v["warnings"].as_array().unwrap();
    for w in warns {
        println!("warning: {}: {}", w["path"], w["what"]);
    }
    // Every listed function is in the machine, or a warning says why not.
    assert!(devs + warns.len() >= listed, "{devs} devices of {listed}");
    assert_eq!(v["arch"]["name"], v["machine"]["arch"]);
    // RAM from /sys/firmware/memmap when this machine has one.
    let ram = v["memory_map"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ram")
        .count();
    if Path::new("/sys/firmware/memmap").is_dir() {
        assert!(ram >= 1, "no RAM range: {}", v["notes"]);
        assert!(
            v["notes"][0].as_str().unwrap().contains("firmware/memmap"),
            "{}",
            v["notes"]
        );
    } else {
        println!("no /sys/firmware/memmap: {ram} RAM range(s) via /proc/iomem");
    }
}

#[test]
fn synthetic_sysfs_providers_are_candidates() {
    let tmp = TempDir::new("sysfs-candidates");
    let root = tmp.path();
    build(root);
    let dir = root.to_str().unwrap();
    let v = json(&["report", "--sysfs", dir, "--json"]);

    // sysfs shows no registrations: the providers are the candidates, the
    // endpoints with a memory BAR (ports and the dropped function are not).
    assert_eq!(v["providers"], "candidates");
    assert_eq!(v["p2pmem"], serde_json::json!([]));
    let cands: Vec<(&str, Value)> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["bdf"].as_str().unwrap(), c["bars"].clone()))
        .collect();
    assert_eq!(
        cands,
        [
            ("0000:03:00.0", serde_json::json!([0, 2])),
            ("0000:04:00.0", serde_json::json!([0, 2])),
            ("0000:06:00.0", serde_json::json!([0])),
        ]
    );
    let mut providers: Vec<&str> = v["p2p"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["provider"].as_str().unwrap())
        .collect();
    providers.dedup();
    assert_eq!(providers, ["0000:03:00.0", "0000:04:00.0", "0000:06:00.0"]);
    assert_eq!(v["p2p_empty"], Value::Null);
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("p2pmem registrations are not imported")
                && n.contains("candidates, the endpoints with a memory BAR")),
        "{notes:?}"
    );

    // Text: the candidates are listed and the matrix is labelled.
    let (code, out, err) = run(&["report", "--sysfs", dir]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "p2pmem providers:\n  (none known: sysfs shows no registrations; see the candidates below)\n",
        "Candidate providers (endpoints with a memory BAR; not registered p2pmem):\n",
        "  0000:03:00.0: BAR0 0x6000000000 +256M (pf), BAR2 0x6010000000 +16M\n",
        "  0000:04:00.0 (nvme): BAR0 0x6020000000 +16K, BAR2 0x6020100000 +1M (pf)\n",
        "P2P matrix (candidate provider -> client; candidates are not registered p2pmem; oracle linux):\n  provider ",
        "p2pmem registrations are not imported",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }

    // `p2p` takes the same set: a candidate is a provider, a port is not.
    let (code, _, err) = run(&["p2p", "--sysfs", dir, "0000:03:00.0", "nvme"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["p2p", "--sysfs", dir, "0000:02:00.0", "nvme"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "provider 0000:02:00.0 cannot be a P2P provider: it is a bridge (switch_downstream), not an endpoint (sysfs shows no p2pmem registrations"
        ),
        "{err}"
    );
    let (code, _, err) = run(&["p2p", "--sysfs", dir, "nvme", "0000:01:00.0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("client 0000:01:00.0 is a bridge (switch_upstream), not an endpoint"),
        "{err}"
    );

    // Mapping needs a registration: with RAM the machine assembles, and
    // every P2P scenario is skipped for want of a registered provider.
    memmap_entry(root, 0, "0x0", "0x7fffffff", "System RAM");
    let (code, out, err) = run(&["scenarios", "--sysfs", dir, "--json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    for name in ["switch-p2p", "host-bridge-p2p", "refused-read", "fallback"] {
        let r = s
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap();
        assert_eq!(r["status"], "skip", "{r}");
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .contains("no registered p2pmem provider fits"),
            "{r}"
        );
    }
}

#[test]
fn synthetic_sysfs_without_candidates_says_why_the_matrix_is_empty() {
    let tmp = TempDir::new("sysfs-no-candidates");
    let root = tmp.path();
    fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    // A root port and a function below it with an I/O BAR only.
    let mut rp = ConfigBuilder::new(4096, 0x8086, 0x2f01, 0x060400, 0x01);
    rp.buses(0, 1, 1).pcie(0x40, 4);
    add(root, RP, &rp, &res(&[]), true);
    let mut nic = ConfigBuilder::new(4096, 0x8086, 0x15f3, 0x020000, 0x00);
    nic.pcie(0x40, 0);
    add(
        root,
        "pci0000:00/0000:00:01.0/0000:01:00.0",
        &nic,
        &res(&[(4, 0xe000, 0x20, 0x40101)]),
        true,
    );
    let dir = root.to_str().unwrap();
    let (code, out, err) = run(&["report", "--sysfs", dir]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "Candidate providers (endpoints with a memory BAR; not registered p2pmem):\n  (none: no endpoint has a memory BAR)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "P2P matrix (candidate provider -> client; candidates are not registered p2pmem; oracle linux):\n  (empty: no candidate provider: no endpoint has a memory BAR)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("provider       client"), "bare header: {out}");
    let v = json(&["report", "--sysfs", dir, "--json"]);
    assert_eq!(v["providers"], "candidates");
    assert_eq!(v["candidates"], serde_json::json!([]));
    assert_eq!(v["p2p"], serde_json::json!([]));
    assert_eq!(
        v["p2p_empty"],
        "no candidate provider: no endpoint has a memory BAR"
    );
}
